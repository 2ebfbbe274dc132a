import { execFile } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { access, appendFile, chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

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
  /** Starts it again; resolves once it accepts connections. */
  start(): Promise<void>
  /** Stops it for good (immediate shutdown) and removes its folder; never throws. */
  destroy(): Promise<void>
}

/**
 * Makes and starts a cluster of the test's own: `listen` the addresses it listens on
 * (127.0.0.1 by default), `clients` the extra CIDRs let in with trust auth.
 */
export async function startPgCluster(options: { listen?: string[]; clients?: string[] } = {}): Promise<PgCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'facet-pg-'))
  const port = randomInt(20_000, 60_000)
  const listen = ['127.0.0.1', ...(options.listen ?? [])].join(',')
  let running = false
  const ctl = (args: string[]) => sh('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', `${dir}/data`, ...args])
  const cluster: PgCluster = {
    port,
    get running() {
      return running
    },
    url: (host = '127.0.0.1') => `postgres://postgres@${host}:${port}/postgres`,
    async start() {
      await ctl(['-l', `${dir}/log`, '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=${listen} -c fsync=off`, 'start'])
      running = true
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
    await cluster.start()
  } catch (err) {
    await cluster.destroy()
    throw err
  }
  return cluster
}
