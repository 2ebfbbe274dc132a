import { execFile } from 'node:child_process'
import { access, appendFile, chown, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { serverPort } from './ports.ts'

const exec = promisify(execFile)
/** Where the PostgreSQL server programs (initdb, pg_ctl) are. */
export const PG_BIN = process.env.FACET_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin'

const sh = (cmd: string, args: string[]) => exec(cmd, args, { timeout: 60_000 })

/** Why this machine cannot run a PostgreSQL cluster of a test's own (initdb, pg_ctl, a `postgres` user, root), else undefined. */
export async function cannotRunCluster(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root to run PostgreSQL as its own user'
  try {
    await access(`${PG_BIN}/initdb`)
    await exec('id', ['postgres'])
  } catch (err) {
    return `needs initdb and a postgres user: ${(err as Error).message}`
  }
  return undefined
}

/** A throwaway PostgreSQL cluster in a temp folder, on a random port, trust auth, `fsync=off`. */
export interface PgCluster {
  readonly port: number
  /** True while the server runs (as far as this handle knows). */
  readonly running: boolean
  /** `postgres://postgres@HOST:PORT/postgres`, on 127.0.0.1 unless `host` is given. */
  url(host?: string): string
  /** Stops the server (fast shutdown: sessions are terminated); resolves once it is down. */
  stop(): Promise<void>
  /** Starts it again on the same port; resolves once it accepts connections on every address. */
  start(): Promise<void>
  /** Stops it for good (immediate shutdown) and removes its folder; never throws. */
  destroy(): Promise<void>
}

/** Tries this many ports before giving up on starting a cluster. */
const PORT_TRIES = 5

/**
 * Makes and starts a cluster of the test's own: `listen` the addresses it listens on
 * (127.0.0.1 by default), `clients` the extra CIDRs let in with trust auth.
 * PostgreSQL starts when it binds any one of its addresses; a first start that missed
 * one (the port was taken there) is stopped and tried again on another port. A start
 * after `stop` keeps the port, as its clients expect.
 */
export async function startPgCluster(options: { listen?: string[]; clients?: string[] } = {}): Promise<PgCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'facet-pg-'))
  let port = await serverPort()
  const listen = ['127.0.0.1', ...(options.listen ?? [])].join(',')
  let running = false
  const ctl = (args: string[]) => sh('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', `${dir}/data`, ...args])
  const log = `${dir}/log`
  const startOnce = async (): Promise<boolean> => {
    const from = (await readFile(log).catch(() => Buffer.alloc(0))).length
    await ctl(['-l', log, '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=${listen} -c fsync=off`, 'start'])
    running = true
    const said = (await readFile(log)).subarray(from).toString()
    if (!/could not bind|could not create listen socket/.test(said)) return true
    await ctl(['-m', 'immediate', '-w', 'stop'])
    running = false
    return false
  }
  const cluster: PgCluster = {
    get port() {
      return port
    },
    get running() {
      return running
    },
    url: (host = '127.0.0.1') => `postgres://postgres@${host}:${port}/postgres`,
    async start() {
      if (!(await startOnce())) throw new Error(`PostgreSQL did not start again on port ${port} of every address in ${listen} (see ${log})`)
    },
    async stop() {
      await ctl(['-m', 'fast', '-w', 'stop'])
      running = false
    },
    async destroy() {
      if (running) await ctl(['-m', 'immediate', '-w', 'stop']).catch(() => {})
      running = false
      await rm(dir, { recursive: true, force: true }).catch(() => {})
    },
  }
  try {
    const { stdout: uid } = await sh('id', ['-u', 'postgres'])
    await chown(dir, Number(uid.trim()), -1)
    await sh('runuser', ['-u', 'postgres', '--', `${PG_BIN}/initdb`, '-D', `${dir}/data`, '-A', 'trust', '-U', 'postgres', '--no-sync'])
    for (const cidr of options.clients ?? []) await appendFile(`${dir}/data/pg_hba.conf`, `host all all ${cidr} trust\n`)
    for (let tries = 1; !(await startOnce()); tries++) {
      if (tries === PORT_TRIES) throw new Error(`no port free on every address in ${listen} for a PostgreSQL cluster after ${PORT_TRIES} tries (see ${log})`)
      port = await serverPort()
    }
  } catch (err) {
    await cluster.destroy()
    throw err
  }
  return cluster
}
