import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { chainMount } from '../../src/chain/mount.ts'
import { postgresBackend } from '../../src/chain/postgres.ts'
import { Chain } from '../../src/chain/store.ts'
import { generateIdentity, identityFromSeeds } from '../../src/crypto/identity.ts'
import { lazyUnmount, listFuseMounts } from '../../src/fuse/index.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { fuseSkip, run, sh, testMountDir } from '../helpers/fuse.ts'
import { reachPostgres } from '../helpers/pg.ts'

const PG_URL = process.env.FACET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const NODE = new URL('./lock-node.ts', import.meta.url).pathname

const { admin, reason } = await reachPostgres(PG_URL)
const skip = fuseSkip ?? (admin ? undefined : `PostgreSQL unavailable at ${PG_URL}: ${reason}`)

/** A FacetFS node in a child process, serving the chain at `dir`. */
interface LockNode {
  readonly dir: string
  readonly child: ChildProcess
  readonly exited: Promise<void>
}

/** Starts a node and resolves once its mount is up. */
function startNode(args: { table: string; home: string; seeds: string; role: 'writer' | 'follower'; dir: string }): Promise<LockNode> {
  const child = spawn(process.execPath, ['--import', 'tsx', NODE, PG_URL, args.table, args.home, args.seeds, args.role, args.dir], { stdio: ['pipe', 'pipe', 'pipe'] })
  const exited = new Promise<void>(done => child.on('exit', () => done()))
  let err = ''
  child.stderr!.on('data', d => (err += d))
  return new Promise((done, fail) => {
    child.stdout!.on('data', d => {
      if (String(d).includes('mounted')) done({ dir: args.dir, child, exited })
    })
    void exited.then(() => fail(new Error(`node ${args.role} ended before mounting: ${err}`)))
  })
}

/** Ends a node: closes its stdin (it unmounts), SIGKILL after 10 s; lazily unmounts whatever it left. */
async function stopNode(node: LockNode | undefined): Promise<void> {
  if (!node) return
  if (node.child.exitCode === null && node.child.signalCode === null) {
    node.child.stdin!.end()
    const timer = setTimeout(() => node.child.kill('SIGKILL'), 10_000)
    await node.exited
    clearTimeout(timer)
  }
  if ((await listFuseMounts()).some(m => m.mountpoint === node.dir)) await lazyUnmount(node.dir)
  await rm(node.dir, { recursive: true, force: true }).catch(() => {})
}

/** A shell command that holds a lock: resolves once it printed `locked`; `release` ends it (stdin closed) and resolves its exit code. */
function holdLock(script: string): Promise<{ release(): Promise<number>; child: ChildProcess }> {
  return new Promise((done, fail) => {
    const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
    const exited = new Promise<number>(ended => child.on('exit', code => ended(code ?? 128)))
    child.on('error', fail)
    child.stdout.on('data', d => {
      if (String(d).includes('locked')) done({ child, release: () => (child.stdin.end('\n'), exited) })
    })
    void exited.then(code => fail(new Error(`lock holder ended (${code}) before it locked`)))
  })
}

/** Starts `cmd` and resolves how it ended and when (ms since the epoch). */
function started(cmd: string): { ended: Promise<{ code: number; stdout: string; at: number }>; child: ChildProcess } {
  const child = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout!.on('data', d => (stdout += d))
  return { child, ended: new Promise(done => child.on('exit', code => done({ code: code ?? 128, stdout, at: Date.now() }))) }
}

const py = (file: string, code: string) => `python3 -c "import fcntl,os,sys; fd=os.open('${file}', os.O_RDWR); ${code}"`

describe.skipIf(skip)(`flock and POSIX locks shared by two nodes through PostgreSQL${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const schema = `facet_locks_test_${randomBytes(5).toString('hex')}`
  const table = `${schema}.blocks`
  const homes: string[] = []
  let a: LockNode | undefined
  let b: LockNode | undefined
  let fa = ''
  let fb = ''
  /** Lock holders a test started; whatever a failed test left holding is killed after it. */
  const holders: ChildProcess[] = []
  const hold = async (script: string) => {
    const h = await holdLock(script)
    holders.push(h.child)
    return h
  }
  afterEach(() => {
    for (const c of holders.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  })

  beforeAll(async () => {
    await admin!.query(`CREATE SCHEMA ${schema}`)
    const { seeds } = generateIdentity('tester')
    const seedHex = Buffer.from(seeds).toString('hex')
    // one FacetFS home for both nodes: the trust store pins the chain once for the identity
    homes.push(await mkdtemp(join(tmpdir(), 'facet-locks-')))
    const chain = await Chain.openOrCreate(postgresBackend({ url: PG_URL, table }), { identity: identityFromSeeds('tester', seeds), home: homes[0]! })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    await vfs.writeFile('/c/f.txt', 'shared data\n')
    await vfs.close()
    a = await startNode({ table, home: homes[0]!, seeds: seedHex, role: 'writer', dir: await testMountDir() })
    b = await startNode({ table, home: homes[0]!, seeds: seedHex, role: 'follower', dir: await testMountDir() })
    fa = `${a.dir}/c/f.txt`
    fb = `${b.dir}/c/f.txt`
  }, 60_000)

  afterAll(async () => {
    await Promise.all([stopNode(a), stopNode(b)])
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin?.end()
    for (const h of homes) await rm(h, { recursive: true, force: true })
  }, 60_000)

  it('refuses flock -n on node B while node A holds the file, and grants it once A lets go', async () => {
    const holder = await hold(`flock -x ${fa} -c 'echo locked; read line'`)
    expect((await run('flock', ['-n', fb, 'true'])).code).toBe(1)
    // a shared lock conflicts with the exclusive one as well; the lock is held on A's node, not in B's kernel
    expect((await run('flock', ['-n', '-s', fb, 'true'])).code).toBe(1)
    expect(await holder.release()).toBe(0)
    expect((await run('flock', ['-n', fb, 'true'])).code).toBe(0)
  })

  it('wakes a blocking flock on node B as soon as A lets go, while B keeps answering other calls', async () => {
    const holder = await hold(`flock -x ${fa} -c 'echo locked; read line'`)
    const waiter = started(`flock ${fb} -c 'echo got'`)
    holders.push(waiter.child)
    // the wait holds a worker of its own: listings and reads on B still get answered
    expect((await sh(`ls ${b!.dir}/c`)).stdout).toBe('f.txt\n')
    expect((await sh(`cat ${fb}`)).stdout).toBe('shared data\n')
    expect((await run('flock', ['-n', fb, 'true'])).code).toBe(1)
    expect(waiter.child.exitCode).toBe(null)
    const releasedAt = Date.now()
    expect(await holder.release()).toBe(0)
    const { code, stdout, at } = await waiter.ended
    expect({ code, stdout }).toEqual({ code: 0, stdout: 'got\n' })
    console.log(`blocking flock on B granted ${at - releasedAt} ms after A released`)
    expect(at - releasedAt).toBeLessThan(2000)
  })

  it('keeps POSIX record locks by byte range across nodes: disjoint ranges both lock, overlapping ones conflict with EAGAIN', async () => {
    // B follows read-only, so it opens for reading and takes read locks; A, the writer, takes write locks.
    // One process tries every range in turn (a process never conflicts with its own locks) and prints
    // `got` or the errno for each.
    const tries = (file: string, flags: 'O_RDONLY' | 'O_RDWR', ranges: Array<['LOCK_SH' | 'LOCK_EX', number, number]>) =>
      sh(py(file, `\nfor k, n, s in [${ranges.map(([k, n, at]) => `('${k}', ${n}, ${at})`).join(', ')}]:\n  try:\n    fcntl.lockf(fd, getattr(fcntl, k) | fcntl.LOCK_NB, n, s); print('got')\n  except OSError as e: print(e.errno)`).replace('os.O_RDWR', `os.${flags}`)).then(r => r.stdout)

    const writer = await hold(py(fa, "fcntl.lockf(fd, fcntl.LOCK_EX, 4, 0); print('locked', flush=True); sys.stdin.readline()"))
    expect(await tries(fb, 'O_RDONLY', [['LOCK_SH', 4, 0], ['LOCK_SH', 2, 3], ['LOCK_SH', 4, 4], ['LOCK_SH', 1, 100]])).toBe('11\n11\ngot\ngot\n')
    // F_GETLK on B reports A's range (type, whence, start, length)
    const probe = await sh(py(fb, "import struct; r = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack('hhqqi', fcntl.F_RDLCK, 0, 0, 0, 0)); print(struct.unpack('hhqqi', r)[:4])").replace('os.O_RDWR', 'os.O_RDONLY'))
    expect(probe.stdout).toBe('(1, 0, 0, 4)\n')
    // two processes on one node go through the shared table as well: overlapping write locks conflict
    expect(await tries(fa, 'O_RDWR', [['LOCK_EX', 4, 2], ['LOCK_EX', 4, 4]])).toBe('11\ngot\n')
    expect(await writer.release()).toBe(0)
    expect(await tries(fb, 'O_RDONLY', [['LOCK_SH', 4, 0]])).toBe('got\n')

    const reader = await hold(py(fb, "fcntl.lockf(fd, fcntl.LOCK_SH, 8, 0); print('locked', flush=True); sys.stdin.readline()").replace('os.O_RDWR', 'os.O_RDONLY'))
    expect(await tries(fa, 'O_RDWR', [['LOCK_EX', 4, 6], ['LOCK_SH', 4, 6], ['LOCK_EX', 4, 8]])).toBe('11\ngot\ngot\n')
    expect(await reader.release()).toBe(0)
    expect(await tries(fa, 'O_RDWR', [['LOCK_EX', 0, 0]])).toBe('got\n')
  }, 120_000)

  it('wakes a blocking POSIX lock (F_SETLKW) on node B when A unlocks the range', async () => {
    const holder = await hold(py(fa, "fcntl.lockf(fd, fcntl.LOCK_EX, 4, 0); print('locked', flush=True); sys.stdin.readline()"))
    const waiter = started(py(fb, "print('trying', flush=True); fcntl.lockf(fd, fcntl.LOCK_SH, 1, 2); print('got')").replace('os.O_RDWR', 'os.O_RDONLY'))
    holders.push(waiter.child)
    await new Promise<void>(done => waiter.child.stdout!.on('data', d => String(d).includes('trying') && done()))
    // a lock on a range A does not hold is granted at once meanwhile
    expect((await sh(py(fb, "fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 4, 4); print('got')").replace('os.O_RDWR', 'os.O_RDONLY'))).stdout).toBe('got\n')
    expect(waiter.child.exitCode).toBe(null)
    const releasedAt = Date.now()
    expect(await holder.release()).toBe(0)
    const { code, stdout, at } = await waiter.ended
    expect({ code, stdout }).toEqual({ code: 0, stdout: 'trying\ngot\n' })
    console.log(`blocking lockf on B granted ${at - releasedAt} ms after A released (python's exit included)`)
  }, 60_000)

  it('keeps flock and POSIX locks apart, as Linux does: a flock on A does not block a lockf on B', async () => {
    const holder = await hold(`flock -x ${fa} -c 'echo locked; read line'`)
    const other = await sh(py(fb, "fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 0, 0); print('got')").replace('os.O_RDWR', 'os.O_RDONLY'))
    expect(other.stdout).toBe('got\n')
    expect(await holder.release()).toBe(0)
  })

  it('frees the locks of node A when its FacetFS process is SIGKILLed, waking a waiter on B', async () => {
    const holder = await hold(`flock -x ${fa} -c 'echo locked; read line'`)
    const waiter = started(`flock ${fb} -c 'echo got'`)
    holders.push(waiter.child)
    expect((await run('flock', ['-n', fb, 'true'])).code).toBe(1)
    const killedAt = Date.now()
    a!.child.kill('SIGKILL')
    await a!.exited
    const { code, stdout, at } = await waiter.ended
    expect({ code, stdout }).toEqual({ code: 0, stdout: 'got\n' })
    console.log(`blocking flock on B granted ${at - killedAt} ms after A was SIGKILLed`)
    expect(at - killedAt).toBeLessThan(5000)
    holder.child.kill('SIGKILL')
    expect((await run('flock', ['-n', fb, 'true'])).code).toBe(0)
  })
})
