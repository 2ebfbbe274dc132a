import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { access, appendFile, chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chainMount } from '../../src/chain/mount.ts'
import { postgresBackend } from '../../src/chain/postgres.ts'
import { Chain } from '../../src/chain/store.ts'
import { generateIdentity, identityFromSeeds } from '../../src/crypto/identity.ts'
import { lazyUnmount, listFuseMounts } from '../../src/fuse/index.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { fuseSkip, run, testMountDir } from '../helpers/fuse.ts'

const exec = promisify(execFile)
const NODE = new URL('./lock-node.ts', import.meta.url).pathname
const PG_BIN = '/usr/lib/postgresql/15/bin'

/** Why this machine cannot cut a node off from a PostgreSQL of the test's own, else undefined. */
async function cannotCut(): Promise<string | undefined> {
  if (fuseSkip) return fuseSkip
  if (process.getuid?.() !== 0) return 'needs root for network namespaces'
  try {
    await access(`${PG_BIN}/initdb`)
    await exec('id', ['postgres'])
    await exec('ip', ['netns', 'list'])
  } catch (err) {
    return `needs ip netns, initdb and a postgres user: ${(err as Error).message}`
  }
  return undefined
}
const skip = await cannotCut()

const sh = (cmd: string, args: string[]) => exec(cmd, args, { timeout: 60_000 })

/** A node in a child process; with `netns` it runs in that network namespace (its FUSE mount stays visible here). */
function startNode(args: { url: string; table: string; home: string; seeds: string; role: 'writer' | 'follower'; dir: string; netns?: string }): Promise<{ child: ChildProcess; exited: Promise<void>; dir: string }> {
  const argv = [process.execPath, '--import', 'tsx', NODE, args.url, args.table, args.home, args.seeds, args.role, args.dir]
  const child = args.netns ? spawn('nsenter', [`--net=/var/run/netns/${args.netns}`, '--', ...argv], { stdio: ['pipe', 'pipe', 'pipe'] }) : spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] })
  const exited = new Promise<void>(done => child.on('exit', () => done()))
  let err = ''
  child.stderr!.on('data', d => (err += d))
  return new Promise((done, fail) => {
    child.stdout!.on('data', d => {
      if (String(d).includes('mounted')) done({ child, exited, dir: args.dir })
    })
    void exited.then(() => fail(new Error(`node ${args.role} ended before mounting: ${err}`)))
  })
}

describe.skipIf(skip)(`locks of a node cut off from the network${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const ns = `facetlk${randomBytes(3).toString('hex')}`
  const hostIf = `${ns}h`
  const nodeIf = `${ns}n`
  const net = `10.${randomInt(200, 250)}.${randomInt(0, 250)}`
  const port = randomInt(20_000, 60_000)
  let pgDir = ''
  let home = ''
  let pgStarted = false
  let netMade = false
  const nodes: Array<{ child: ChildProcess; exited: Promise<void>; dir: string }> = []
  const others: ChildProcess[] = []

  beforeAll(async () => {
    await sh('ip', ['netns', 'add', ns])
    netMade = true
    await sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nodeIf])
    await sh('ip', ['link', 'set', nodeIf, 'netns', ns])
    await sh('ip', ['addr', 'add', `${net}.1/30`, 'dev', hostIf])
    await sh('ip', ['link', 'set', hostIf, 'up'])
    await sh('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${net}.2/30`, 'dev', nodeIf])
    await sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', nodeIf, 'up'])
    await sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'])

    // a PostgreSQL of the test's own, listening on the host's end of the link
    pgDir = await mkdtemp(join(tmpdir(), 'facet-netcut-pg-'))
    const { stdout: uid } = await sh('id', ['-u', 'postgres'])
    await chown(pgDir, Number(uid.trim()), -1)
    await sh('runuser', ['-u', 'postgres', '--', `${PG_BIN}/initdb`, '-D', `${pgDir}/data`, '-A', 'trust', '-U', 'postgres', '--no-sync'])
    await appendFile(`${pgDir}/data/pg_hba.conf`, `host all all ${net}.0/30 trust\n`)
    await sh('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', `${pgDir}/data`, '-l', `${pgDir}/log`, '-w', '-o', `-p ${port} -k ${pgDir} -c listen_addresses=127.0.0.1,${net}.1 -c fsync=off`, 'start'])
    pgStarted = true

    home = await mkdtemp(join(tmpdir(), 'facet-netcut-'))
    const { seeds } = generateIdentity('tester')
    const local = `postgres://postgres@127.0.0.1:${port}/postgres`
    const chain = await Chain.openOrCreate(postgresBackend({ url: local, table: 'blocks' }), { identity: identityFromSeeds('tester', seeds), home })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    await vfs.writeFile('/c/f.txt', 'data\n')
    await vfs.close()
    const seedHex = Buffer.from(seeds).toString('hex')
    nodes.push(await startNode({ url: `postgres://postgres@${net}.1:${port}/postgres`, table: 'blocks', home, seeds: seedHex, role: 'writer', dir: await testMountDir(), netns: ns }))
    nodes.push(await startNode({ url: local, table: 'blocks', home, seeds: seedHex, role: 'follower', dir: await testMountDir() }))
  }, 120_000)

  afterAll(async () => {
    for (const c of others) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    for (const n of nodes) {
      if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL')
      await n.exited
      // a killed node's mount may be going away on its own (auto_unmount) as this looks
      if ((await listFuseMounts()).some(m => m.mountpoint === n.dir)) await lazyUnmount(n.dir).catch(() => {})
      await rm(n.dir, { recursive: true, force: true }).catch(() => {})
    }
    if (pgStarted) await sh('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', `${pgDir}/data`, '-m', 'immediate', '-w', 'stop']).catch(() => {})
    if (pgDir) await rm(pgDir, { recursive: true, force: true }).catch(() => {})
    if (home) await rm(home, { recursive: true, force: true }).catch(() => {})
    if (netMade) {
      await sh('ip', ['link', 'del', hostIf]).catch(() => {})
      await sh('ip', ['netns', 'del', ns]).catch(() => {})
    }
  }, 60_000)

  it('frees the locks of a node whose network goes down within the 25 s keepalive bound, waking a waiter elsewhere', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    const fa = `${a.dir}/c/f.txt`
    const fb = `${b.dir}/c/f.txt`
    const holder = spawn('flock', ['-x', fa, '-c', 'echo locked; read line'], { stdio: ['pipe', 'pipe', 'inherit'] })
    others.push(holder)
    await new Promise<void>(done => holder.stdout.on('data', d => String(d).includes('locked') && done()))
    expect((await run('flock', ['-n', fb, 'true'])).code).toBe(1)
    const waiter = spawn('flock', [fb, '-c', 'echo got'], { stdio: ['ignore', 'pipe', 'inherit'] })
    others.push(waiter)
    let out = ''
    waiter.stdout.on('data', d => (out += d))
    const ended = new Promise<number>(done => waiter.on('exit', code => done(code ?? 128)))
    const cutAt = Date.now()
    await sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', nodeIf, 'down'])
    // a lock call on the cut-off node itself fails with EIO within the 10 s query bound instead of hanging
    const onA = await run('python3', ['-c', `import fcntl,os,time\nt=time.time()\ntry:\n  fcntl.flock(os.open('${a.dir}/c/f.txt', os.O_RDONLY), fcntl.LOCK_SH | fcntl.LOCK_NB); print('got')\nexcept OSError as e: print(e.errno, round(time.time()-t))`], { timeoutMs: 30_000 })
    const [errno, took] = onA.stdout.trim().split(' ')
    console.log(`a lock call on the cut-off node A failed with errno ${errno} after ${took} s`)
    expect(errno).toBe('5')
    expect(Number(took)).toBeLessThanOrEqual(12)
    expect(await ended).toBe(0)
    const seconds = (Date.now() - cutAt) / 1000
    console.log(`a waiter on B was granted the lock ${seconds.toFixed(1)} s after node A was cut off`)
    expect(out).toBe('got\n')
    // the bound, with room for a loaded machine
    expect(seconds).toBeLessThan(32)
  }, 90_000)
})
