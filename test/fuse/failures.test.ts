import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/vfs/log.ts'
import type { Attr, FileHandle, VNode } from '../../src/vfs/node.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { dir } from '../../src/views/view.ts'
import { fuseSkip, mountForTest, run, type TestMount } from '../helpers/fuse.ts'

const never = (): Promise<never> => new Promise(() => {})
const after = <T>(ms: number, value: T): Promise<T> => new Promise(done => setTimeout(done, ms, value))
const attr = (size: number): Attr => ({ mode: 0o444, size, uid: 0, gid: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 })

/** A file node with the given getattr and open; reads come from the handle open returns. */
function node(getattr: () => Attr | Promise<Attr>, open: () => FileHandle | Promise<FileHandle> = () => ({})): VNode {
  return { kind: 'file', getattr, open } as VNode
}

const GUARD_MS = 400

describe.skipIf(fuseSkip)('handlers that hang or throw, through FUSE', () => {
  let vfs: Vfs
  let mount: TestMount
  let m: string
  let lateOpens = 0

  beforeAll(async () => {
    vfs = createVfs({
      logger: silentLogger,
      mounts: {
        '/hang': { name: 'hang', root: dir({ 'read.txt': node(() => attr(5), () => ({ read: never })) }) },
        '/hangstat': { name: 'hangstat', root: dir({ 'x.txt': node(never) }) },
        '/late': {
          name: 'late',
          root: dir({
            'open.txt': node(() => attr(5), () => {
              lateOpens++
              return after(GUARD_MS * 2, { read: () => Buffer.from('late!') })
            }),
            'read.txt': node(() => attr(5), () => ({ read: () => after(GUARD_MS * 2, Buffer.from('late!')) })),
          }),
        },
        '/boom': {
          name: 'boom',
          root: dir({
            'read.txt': node(() => attr(5), () => ({
              read: () => {
                throw new Error('read exploded')
              },
            })),
            'stat.txt': node(() => Promise.reject(new Error('getattr exploded'))),
          }),
        },
        '/fine': { name: 'fine', root: dir({ 'ok.txt': node(() => attr(3), () => ({ read: (o: number) => Buffer.from('ok\n').subarray(o) })) }) },
      },
    })
    mount = await mountForTest(vfs, { timeoutMs: GUARD_MS })
    m = mount.dir
  })

  /** The open handle count once it reaches 0, or what it still is after `ms`. */
  const noHandlesWithin = async (ms: number): Promise<number> => {
    for (const end = Date.now() + ms; vfs.openHandles > 0 && Date.now() < end; ) await after(20, null)
    return vfs.openHandles
  }

  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
  })

  it('answers a read that never settles with ETIMEDOUT "Connection timed out" instead of hanging', async () => {
    expect(await run('cat', [`${m}/hang/read.txt`])).toMatchObject({ code: 1, stdout: '', stderr: `cat: ${m}/hang/read.txt: Connection timed out\n` })
  })

  it('answers a getattr that never settles with ETIMEDOUT', async () => {
    expect(await run('stat', ['-c', '%s', `${m}/hangstat/x.txt`])).toMatchObject({ code: 1, stderr: `stat: cannot statx '${m}/hangstat/x.txt': Connection timed out\n` })
  })

  it('answers a read that throws with EIO "Input/output error"', async () => {
    expect(await run('cat', [`${m}/boom/read.txt`])).toMatchObject({ code: 1, stdout: '', stderr: `cat: ${m}/boom/read.txt: Input/output error\n` })
  })

  it('answers a getattr that rejects with EIO', async () => {
    expect(await run('stat', ['-c', '%s', `${m}/boom/stat.txt`])).toMatchObject({ code: 1, stderr: `stat: cannot statx '${m}/boom/stat.txt': Input/output error\n` })
  })

  it('drops a read that answers after the guard, and the mount keeps serving', async () => {
    expect(await run('cat', [`${m}/late/read.txt`])).toMatchObject({ code: 1, stderr: `cat: ${m}/late/read.txt: Connection timed out\n` })
    await after(GUARD_MS * 2, null)
    expect(await run('cat', [`${m}/fine/ok.txt`])).toMatchObject({ code: 0, stdout: 'ok\n' })
  })

  it('releases a handle whose open finished after the guard answered ETIMEDOUT', async () => {
    // RELEASE reaches the server after close(2) has returned, so the earlier cases' handles may still be closing.
    expect(await noHandlesWithin(2_000)).toBe(0)
    expect(await run('cat', [`${m}/late/open.txt`])).toMatchObject({ code: 1, stderr: `cat: ${m}/late/open.txt: Connection timed out\n` })
    expect(lateOpens).toBe(1)
    await after(GUARD_MS * 2, null)
    expect(await noHandlesWithin(2_000)).toBe(0)
  })

  it('still lists and reads after every failure above', async () => {
    expect(await run('ls', [m])).toMatchObject({ code: 0, stdout: 'boom\nfine\nhang\nhangstat\nlate\n' })
    expect(await run('cat', [`${m}/fine/ok.txt`])).toMatchObject({ code: 0, stdout: 'ok\n' })
  })
})
