import { spawn } from 'node:child_process'
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

describe.skipIf(fuseSkip)('locks on a FUSE mount, kept by the kernel for this machine', () => {
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
