import { spawn, type ChildProcess } from 'node:child_process'
import { rmdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { mountFuse, listFuseMounts, type FuseMount } from '../../src/fuse/index.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { dir, file } from '../../src/views/view.ts'
import { fuseSkip, mountForTest, run, testMountDir } from '../helpers/fuse.ts'

const SERVE = fileURLToPath(new URL('./fixtures/serve.ts', import.meta.url))

function parentVfs() {
  return createVfs({ logger: silentLogger, mounts: { '/': { name: 'parent', root: dir({ 'who.txt': file('parent\n') }) } } })
}

async function isMounted(path: string): Promise<boolean> {
  return (await listFuseMounts()).some(m => m.mountpoint === path)
}

/** Starts a child process serving a mount at `where`; resolves once it is mounted. */
function serveInChild(where: string, autoUnmount: boolean, signals = false): Promise<ChildProcess> {
  const args = [SERVE, where, autoUnmount ? '1' : '0', signals ? '1' : '0']
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((done, fail) => {
    let err = ''
    child.stderr!.on('data', d => (err += d))
    child.stdout!.on('data', d => {
      if (String(d).includes('mounted')) done(child)
    })
    child.on('exit', code => fail(new Error(`the serving child exited with ${code}: ${err}`)))
  })
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise(done => {
    if (child.exitCode !== null || child.signalCode !== null) return done()
    child.once('exit', () => done())
    child.kill('SIGKILL')
  })
}

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await check()) return true
    if (Date.now() > end) return false
    await new Promise(done => setTimeout(done, 50))
  }
}

describe.skipIf(fuseSkip)('mounting, unmounting and recovering', () => {
  const cleanups: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
  })

  it('recovers a folder left mounted by a SIGKILLed process (ENOTCONN) and mounts on it', async () => {
    const where = await testMountDir()
    const child = await serveInChild(where, false)
    cleanups.push(() => killHard(child), () => rmdir(where))
    expect((await run('cat', [`${where}/who.txt`])).stdout).toBe('child\n')

    await killHard(child)
    expect(await run('ls', [where])).toMatchObject({ code: 2, stderr: `ls: cannot access '${where}': Transport endpoint is not connected\n` })

    const mount = await mountFuse(parentVfs(), where, { logger: silentLogger })
    cleanups.push(() => mount.unmount())
    expect(await run('cat', [`${where}/who.txt`])).toMatchObject({ code: 0, stdout: 'parent\n' })
    await mount.unmount()
    expect(await isMounted(where)).toBe(false)
  })

  it('leaves no mount behind when a process mounted with auto_unmount (the default) is SIGKILLed', async () => {
    const where = await testMountDir()
    const child = await serveInChild(where, true)
    cleanups.push(() => killHard(child), () => rmdir(where))
    expect(await isMounted(where)).toBe(true)
    await killHard(child)
    // fusermount3's auto_unmount helper unmounts once it sees the FUSE fd close; under a full
    // test run on 2 cores that took over 5 s once, so the wait allows 20 (it ends when the mount goes)
    expect(await until(async () => !(await isMounted(where)), 20_000)).toBe(true)
    expect(await run('ls', ['-A', where])).toMatchObject({ code: 0, stdout: '' })
  })

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('unmounts on %s through unmountOnSignals and exits with %i', async (signal, code) => {
    const where = await testMountDir()
    const child = await serveInChild(where, false, true)
    cleanups.push(() => killHard(child), () => rmdir(where))
    expect((await run('cat', [`${where}/who.txt`])).stdout).toBe('child\n')
    const exited = new Promise<number | null>(done => child.once('exit', c => done(c)))
    child.kill(signal)
    expect(await exited).toBe(code)
    expect(await isMounted(where)).toBe(false)
  })

  it('unmounts cleanly, and a second unmount resolves too', async () => {
    const mount = await mountForTest(parentVfs())
    cleanups.push(() => mount.unmount())
    expect(await isMounted(mount.dir)).toBe(true)
    await mount.unmount()
    await mount.unmount()
    expect(await isMounted(mount.dir)).toBe(false)
  })

  it('creates a missing mount folder', async () => {
    const base = await testMountDir()
    await rmdir(base)
    const mount: FuseMount = await mountFuse(parentVfs(), base, { logger: silentLogger })
    cleanups.push(() => rmdir(base), () => mount.unmount())
    expect((await run('cat', [`${base}/who.txt`])).stdout).toBe('parent\n')
  })

  it('refuses to mount over a live mount', async () => {
    const first = await mountForTest(parentVfs())
    cleanups.push(() => first.unmount())
    await expect(mountFuse(parentVfs(), first.dir, { logger: silentLogger })).rejects.toThrow(`cannot mount FUSE at ${first.dir}: Mountpoint in use`)
    expect((await run('cat', [`${first.dir}/who.txt`])).stdout).toBe('parent\n')
  })
})
