import { describe, expect, it } from 'vitest'
import { SEAL_OVERHEAD } from '../../src/crypto/primitives.ts'
import { chunkClass } from '../../src/crypto/padding.ts'
import { chainVfs, tempHomeEach } from './helpers.ts'

describe('padded sizes (issue 12, case 6)', () => {
  const t = tempHomeEach()

  it('rounds a chunk up to 512 B, 1, 2 or 4 KiB, then to a multiple of 4 KiB, never past the chunk size', () => {
    expect([1, 511, 512, 513, 1024, 1025, 4096, 4097, 70_000, 131_071, 131_072].map(n => chunkClass(n, 131_072))).toEqual([512, 512, 512, 1024, 1024, 2048, 4096, 8192, 73_728, 131_072, 131_072])
    expect([1000, 5000].map(n => chunkClass(n, 1000))).toEqual([1000, 5000])
    expect(chunkClass(600, 1000)).toBe(1000)
  })

  it('seals the last chunk of a file as its size class, so files of one class look alike', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    const sizes = [1, 100, 512, 513, 1000, 1025, 5000, 70_000, 131_072 + 5, 3 * 131_072]
    for (const n of sizes) await vfs.writeFile(`/c/f${n}`, Buffer.alloc(n, 1))
    await chain.sync()
    const sealed = (n: number) => [...chain.lookup(chain.root, `f${n}`)!.chunks.values()].map(r => r.len - SEAL_OVERHEAD)
    expect(sizes.map(sealed)).toEqual([[512], [512], [512], [1024], [1024], [2048], [8192], [73_728], [131_072, 512], [131_072, 131_072, 131_072]])
    await vfs.close()
  })

  it('seals the metadata of any file with a name of up to 255 bytes to one size: a rename from s0 to s0_renamed changes no sealed length', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/s0', 'x')
    await chain.sync()
    const metaLength = (name: string) => chain.lookup(chain.root, name)!.sealedMeta!.length
    const before = metaLength('s0')
    await vfs.rename('/c/s0', '/c/s0_renamed')
    await chain.sync()
    expect(metaLength('s0_renamed')).toBe(before)
    await vfs.rename('/c/s0_renamed', `/c/${'é'.repeat(127)}`)
    await chain.sync()
    expect(metaLength('é'.repeat(127))).toBe(before)
    expect(before).toBe(512 + SEAL_OVERHEAD)
    await vfs.mkdir('/c/d')
    await vfs.link(`/c/${'é'.repeat(127)}`, '/c/d/a')
    await vfs.setxattr('/c/d/a', 'user.k', Buffer.from('v'))
    await chain.sync()
    const d = chain.lookup(chain.root, 'd')!
    expect(d.sealedMeta!.length).toBe(before)
    expect([...chain.tree.links.values()].map(l => l.sealed.length)).toEqual([512 + SEAL_OVERHEAD])
    expect(chain.lookup(chain.root, 'é'.repeat(127))!.sealedXattrs!.length).toBe(512 + SEAL_OVERHEAD)
    await vfs.close()
  })

  it('reads padded files back exactly, across reopen, truncation and extension (the padding reads as zeros past the size)', async () => {
    let { vfs, chain } = await chainVfs(t.path, t.home)
    const data = Buffer.from('0123456789'.repeat(10))
    await vfs.writeFile('/c/a', data)
    await vfs.close()
    ;({ vfs, chain } = await chainVfs(t.path, t.home))
    expect((await vfs.readFile('/c/a')).equals(data)).toBe(true)
    expect((await vfs.stat('/c/a')).size).toBe(100)
    await vfs.truncate('/c/a', 50)
    await vfs.truncate('/c/a', 300)
    await chain.sync()
    await vfs.close()
    ;({ vfs, chain } = await chainVfs(t.path, t.home))
    expect((await vfs.readFile('/c/a')).equals(Buffer.concat([data.subarray(0, 50), Buffer.alloc(250)]))).toBe(true)
    await vfs.close()
  })

  it('seals exact lengths with padding off (to measure what padding costs)', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home, { padding: false })
    await vfs.writeFile('/c/s0', 'abc')
    await chain.sync()
    const n = chain.lookup(chain.root, 's0')!
    expect(n.chunks.get(0)!.len).toBe(3 + SEAL_OVERHEAD)
    expect(n.sealedMeta!.length).toBeLessThan(512)
    await vfs.close()
  })
})
