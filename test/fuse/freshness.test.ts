import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/vfs/log.ts'
import type { VNode } from '../../src/vfs/node.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { dir, file } from '../../src/views/view.ts'
import { fuseSkip, mountForTest, run, type TestMount } from '../helpers/fuse.ts'

describe.skipIf(fuseSkip)('records changed outside FacetFS, read through FUSE with the default cache settings', () => {
  let vfs: Vfs
  let mount: TestMount
  let m: string
  let text = 'v1\n'
  const records: Record<string, VNode> = { 'a.txt': file('a\n') }

  beforeAll(async () => {
    vfs = createVfs({
      logger: silentLogger,
      mounts: { '/live': { name: 'live', root: dir({ 'rec.txt': file(() => text, { version: () => text }), 'set': dir(() => records) }) } },
    })
    mount = await mountForTest(vfs)
    m = mount.dir
  })

  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
  })

  const cat = async (): Promise<string> => (await run('cat', [`${m}/live/rec.txt`])).stdout
  const size = async (): Promise<string> => (await run('stat', ['-c', '%s', `${m}/live/rec.txt`])).stdout

  /** Polls `stat` for up to a second and returns the sizes it saw, the last one first. */
  async function sizesWithinASecond(expected: string): Promise<string[]> {
    const seen: string[] = []
    const end = Date.now() + 1000
    do {
      seen.unshift(await size())
      if (seen[0] === expected) break
      await new Promise(done => setTimeout(done, 20))
    } while (Date.now() < end)
    return seen
  }

  it('reads a record that grew in full on the very next cat, and stat shows its exact size within a second', async () => {
    expect(await size()).toBe('3\n')
    expect(await cat()).toBe('v1\n')
    text = 'version two, much longer\n'
    expect(await cat()).toBe('version two, much longer\n')
    const seen = await sizesWithinASecond('25\n')
    expect(seen[0]).toBe('25\n')
    expect(seen.every(s => s === '3\n' || s === '25\n')).toBe(true)
  })

  it('reads a record that shrank without padding on the very next cat, and stat shows its exact size within a second', async () => {
    expect(await size()).toBe('25\n')
    text = 'v3\n'
    expect(await cat()).toBe('v3\n')
    expect((await sizesWithinASecond('3\n'))[0]).toBe('3\n')
  })

  it('reads a same-size change on the very next cat (no page cache kept across opens)', async () => {
    expect((await run('cat', [`${m}/live/rec.txt`])).stdout).toBe('v3\n')
    text = 'v4\n'
    expect((await run('cat', [`${m}/live/rec.txt`])).stdout).toBe('v4\n')
  })

  it('lists a record added outside on the next ls, and fails cat of a removed one with ENOENT', async () => {
    expect((await run('ls', [`${m}/live/set`])).stdout).toBe('a.txt\n')
    expect((await run('cat', [`${m}/live/set/a.txt`])).stdout).toBe('a\n')
    records['b.txt'] = file('b\n')
    delete records['a.txt']
    expect((await run('ls', [`${m}/live/set`])).stdout).toBe('b.txt\n')
    expect((await run('cat', [`${m}/live/set/b.txt`])).stdout).toBe('b\n')
    expect(await run('cat', [`${m}/live/set/a.txt`])).toMatchObject({ code: 1, stderr: `cat: ${m}/live/set/a.txt: No such file or directory\n` })
  })
})
