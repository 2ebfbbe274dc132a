import { spawn } from 'node:child_process'
import { setTimeout as delay } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/vfs/log.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { fuseSkip, mountForTest, run, sh, type TestMount } from '../helpers/fuse.ts'

/** Starts `script` in a shell that holds a lock, resolves once it printed `locked`, and returns how to let it go. */
function holdLock(script: string): Promise<{ release(): Promise<number> }> {
  return new Promise((done, fail) => {
    const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
    child.on('error', fail)
    child.stdout.on('data', d => {
      if (String(d).includes('locked')) {
        done({
          release: () =>
            new Promise(ended => {
              child.on('exit', code => ended(code ?? 1))
              child.stdin.end('\n')
            }),
        })
      }
    })
  })
}

describe.skipIf(fuseSkip)('locks on a FUSE mount of files no other machine sees, kept by the adapter in its process', () => {
  let vfs: Vfs
  let mount: TestMount
  let f: string

  beforeAll(async () => {
    vfs = createVfs({ logger: silentLogger, mounts: { '/mem': memoryMount() } })
    mount = await mountForTest(vfs)
    f = `${mount.dir}/mem/locked.txt`
    await sh(`echo data > ${f}`)
  })
  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
  })

  it('refuses flock -n while another process holds the file, and grants it once released', async () => {
    const holder = await holdLock(`flock -x ${f} -c 'echo locked; read line'`)
    expect((await run('flock', ['-n', f, 'true'])).code).toBe(1)
    expect(await holder.release()).toBe(0)
    expect((await run('flock', ['-n', f, 'true'])).code).toBe(0)
  })

  it('refuses a POSIX record lock (lockf) on a range another process holds with EAGAIN', async () => {
    const py = (code: string) => `python3 -c "import fcntl,os,sys; fd=os.open('${f}', os.O_RDWR); ${code}"`
    const holder = await holdLock(py("fcntl.lockf(fd, fcntl.LOCK_EX, 4, 0); print('locked', flush=True); sys.stdin.readline()"))
    const busy = await sh(py("\ntry:\n  fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 4, 0); print('got')\nexcept OSError as e: print(e.errno)"))
    expect(busy.stdout.trim()).toBe('11')
    const other = await sh(py('fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 4, 100); print(\'got\')'))
    expect(other.stdout.trim()).toBe('got')
    expect(await holder.release()).toBe(0)
  })
})

describe.skipIf(fuseSkip)('closing a file on a FUSE mount', () => {
  let vfs: Vfs
  let mount: TestMount

  beforeAll(async () => {
    vfs = createVfs({ logger: silentLogger, mounts: { '/mem': memoryMount() } })
    mount = await mountForTest(vfs)
    await sh(`echo data > ${mount.dir}/mem/a.txt; echo data > ${mount.dir}/mem/b.txt`)
  })
  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
  })

  it('releases a process\'s POSIX locks on a file when it closes any descriptor of that file, and only of that file', async () => {
    const a = `${mount.dir}/mem/a.txt`
    const b = `${mount.dir}/mem/b.txt`
    const script = [
      'import fcntl,os,sys,subprocess',
      `fa=os.open('${a}', os.O_RDWR); fb=os.open('${b}', os.O_RDWR)`,
      'fcntl.lockf(fa, fcntl.LOCK_EX); fcntl.lockf(fb, fcntl.LOCK_EX)',
      // another descriptor of a.txt, closed: POSIX drops the process's locks on a.txt, none on b.txt
      `os.close(os.open('${a}', os.O_RDONLY))`,
      "probe=lambda f: subprocess.run([sys.executable, '-c', 'import fcntl,os\\ntry:\\n  fcntl.lockf(os.open(%r, os.O_RDWR), fcntl.LOCK_EX | fcntl.LOCK_NB); print(\\'got\\')\\nexcept OSError as e: print(e.errno)' % f], capture_output=True, text=True).stdout.strip()",
      `print(probe('${a}'), probe('${b}'))`,
    ].join('\n')
    const r = await run('python3', ['-c', script], { timeoutMs: 30_000 })
    expect(r.stdout).toBe('got 11\n')
  })
})

describe.skipIf(fuseSkip)('blocking lock waits on a FUSE mount', () => {
  let vfs: Vfs
  let mount: TestMount
  let f: string

  beforeAll(async () => {
    vfs = createVfs({ logger: silentLogger, mounts: { '/mem': memoryMount() } })
    // a call guard far shorter than the waits below, and room for one wait only
    mount = await mountForTest(vfs, { timeoutMs: 300, lockWaits: 1 })
    f = `${mount.dir}/mem/locked.txt`
    await sh(`echo data > ${f}`)
  })
  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
  })

  it('waits past the call timeout for the holder, answers other calls meanwhile, and refuses a wait beyond lockWaits with ENOLCK', async () => {
    const holder = await holdLock(`flock -x ${f} -c 'echo locked; read line'`)
    const waiter = spawn('flock', [f, '-c', 'echo got'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    waiter.stdout.on('data', d => (out += d))
    const ended = new Promise<number>(done => waiter.on('exit', code => done(code ?? 128)))
    const started = Date.now()
    expect((await sh(`ls ${mount.dir}/mem`)).stdout).toBe('locked.txt\n')
    expect((await sh(`cat ${f}`)).stdout).toBe('data\n')
    const second = await sh(`python3 -c "import fcntl,os\ntry:\n  fcntl.flock(os.open('${f}', os.O_RDONLY), fcntl.LOCK_SH); print('got')\nexcept OSError as e: print(e.errno)"`)
    expect(second.stdout).toBe('37\n')
    // what is tested is time itself: the wait must outlast the 300 ms guard
    await delay(Math.max(0, 600 - (Date.now() - started)))
    expect(waiter.exitCode).toBe(null)
    expect(await holder.release()).toBe(0)
    expect(await ended).toBe(0)
    expect(out).toBe('got\n')
  })
})
