import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/vfs/log.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { fuseSkip, mountForTest, run, type TestMount } from '../helpers/fuse.ts'

describe.skipIf(fuseSkip)('kernel caches invalidated from the change bus', () => {
  let vfs: Vfs
  let mount: TestMount
  let m: string

  beforeAll(async () => {
    vfs = createVfs({ logger: silentLogger, mounts: { '/mem': memoryMount() } })
    // caches far longer than the test: only an invalidation can make the kernel ask again
    mount = await mountForTest(vfs, { attrTimeout: 60, entryTimeout: 60 })
    m = mount.dir
  })

  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
  })

  const size = async (name: string): Promise<string> => (await run('stat', ['-c', '%s', `${m}/mem/${name}`])).stdout

  it('shows the size of a file rewritten by another front door on the next stat, despite a 60 s attribute cache', async () => {
    await run('sh', ['-c', `printf ab > ${m}/mem/grow.txt`])
    expect(await size('grow.txt')).toBe('2\n')
    expect(await size('grow.txt')).toBe('2\n')
    await vfs.writeFile('/mem/grow.txt', 'a much longer text\n')
    await mount.invalidated()
    expect(await size('grow.txt')).toBe('19\n')
    expect((await run('cat', [`${m}/mem/grow.txt`])).stdout).toBe('a much longer text\n')
  })

  it('keeps serving from the cache what the kernel itself changed (no invalidation needed)', async () => {
    await run('sh', ['-c', `printf 12345 > ${m}/mem/own.txt`])
    expect(await size('own.txt')).toBe('5\n')
    await run('sh', ['-c', `printf 1234567 > ${m}/mem/own.txt`])
    expect(await size('own.txt')).toBe('7\n')
  })
})
