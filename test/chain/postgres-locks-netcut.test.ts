import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chainMount } from '../../src/chain/mount.ts'
import { postgresBackend } from '../../src/chain/postgres.ts'
import { Chain } from '../../src/chain/store.ts'
import { generateIdentity, identityFromSeeds } from '../../src/crypto/identity.ts'
import { lazyUnmount, listFuseMounts } from '../../src/fuse/index.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { fuseSkip, run, testMountDir } from '../helpers/fuse.ts'
import { cannotMakeNetns, makeNetns, type Netns } from '../helpers/netns.ts'
import { cannotRunCluster, startPgCluster, type PgCluster } from '../helpers/pg-cluster.ts'

const NODE = new URL('./lock-node.ts', import.meta.url).pathname

/** Why this machine cannot cut a node off from a PostgreSQL of the test's own, else undefined. */
async function cannotCut(): Promise<string | undefined> {
  return fuseSkip ?? (await cannotMakeNetns()) ?? (await cannotRunCluster())
}
const skip = await cannotCut()

/** A node in a child process; with `netns` it runs in that network namespace (its FUSE mount stays visible here). */
function startNode(args: { url: string; table: string; home: string; seeds: string; role: 'writer' | 'follower'; dir: string; netns?: Netns }): Promise<{ child: ChildProcess; exited: Promise<void>; dir: string }> {
  const argv = [process.execPath, '--import', 'tsx', NODE, args.url, args.table, args.home, args.seeds, args.role, args.dir]
  const [cmd, ...rest] = args.netns ? args.netns.wrap(argv) : argv
  const child = spawn(cmd!, rest, { stdio: ['pipe', 'pipe', 'pipe'] })
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
  let netns: Netns | undefined
  let cluster: PgCluster | undefined
  let home = ''
  const nodes: Array<{ child: ChildProcess; exited: Promise<void>; dir: string }> = []
  const others: ChildProcess[] = []

  beforeAll(async () => {
    netns = await makeNetns()
    // a PostgreSQL of the test's own, listening on the host's end of the link
    cluster = await startPgCluster({ listen: [netns.hostIp], clients: [netns.cidr] })
    home = await mkdtemp(join(tmpdir(), 'facet-netcut-'))
    const { seeds } = generateIdentity('tester')
    const local = cluster.url()
    const chain = await Chain.openOrCreate(postgresBackend({ url: local, table: 'blocks' }), { identity: identityFromSeeds('tester', seeds), home })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    await vfs.writeFile('/c/f.txt', 'data\n')
    await vfs.close()
    const seedHex = Buffer.from(seeds).toString('hex')
    nodes.push(await startNode({ url: cluster.url(netns.hostIp), table: 'blocks', home, seeds: seedHex, role: 'writer', dir: await testMountDir(), netns }))
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
    await cluster?.destroy()
    if (home) await rm(home, { recursive: true, force: true }).catch(() => {})
    await netns?.destroy()
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
    await netns!.down()
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
