import { constants as fsc } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { DEFAULT_CHUNK_SIZE } from '../../src/chain/format.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { chainVfs, tempHomeEach } from './helpers.ts'

const CS = DEFAULT_CHUNK_SIZE

async function readAll(vfs: Vfs, path: string, step: number, backwards = false): Promise<Buffer> {
  const size = (await vfs.stat(path)).size
  const fh = await vfs.open(path, fsc.O_RDONLY)
  const out = Buffer.alloc(size)
  const offsets: number[] = []
  for (let o = 0; o < size; o += step) offsets.push(o)
  if (backwards) offsets.reverse()
  for (const o of offsets) Buffer.from(await vfs.read(fh, o, step)).copy(out, o)
  await vfs.release(fh)
  return out
}

describe('sequential streams', () => {
  const t = tempHomeEach()

  it('reads back a file streamed in whole chunks, rewritten in place and across blocks, in order and backwards, before and after reopen', async () => {
    let { vfs } = await chainVfs(t.path, t.home, { blockBytes: 3 * CS })
    const want = randomBytes(12 * CS + 123)
    const fh = await vfs.create('/c/big.bin', 0o644, fsc.O_RDWR)
    for (let o = 0; o < want.length; o += CS) await vfs.write(fh, o, Buffer.from(want.subarray(o, o + CS)))
    // an unaligned overwrite across a chunk boundary, then a whole-chunk rewrite of a chunk already on disk
    const patch = randomBytes(CS / 2)
    patch.copy(want, 5 * CS - 1000)
    await vfs.write(fh, 5 * CS - 1000, patch)
    const whole = randomBytes(CS)
    whole.copy(want, 2 * CS)
    await vfs.write(fh, 2 * CS, whole)
    expect(Buffer.from(await readAll(vfs, '/c/big.bin', CS)).equals(want)).toBe(true)
    await vfs.fsync(fh)
    await vfs.release(fh)
    await vfs.close()
    ;({ vfs } = await chainVfs(t.path, t.home))
    expect((await readAll(vfs, '/c/big.bin', CS)).equals(want)).toBe(true)
    await vfs.close()
    ;({ vfs } = await chainVfs(t.path, t.home))
    expect((await readAll(vfs, '/c/big.bin', 100_000, true)).equals(want)).toBe(true)
    expect((await readAll(vfs, '/c/big.bin', 4096)).equals(want)).toBe(true)
    await vfs.close()
  })

  it('fails only the forged chunk of a read-ahead with EIO and still serves its neighbours', async () => {
    let { vfs } = await chainVfs(t.path, t.home)
    const want = randomBytes(4 * CS)
    await vfs.writeFile('/c/f.bin', want)
    await vfs.close()
    const opened = await chainVfs(t.path, t.home, { readOnly: true })
    vfs = opened.vfs
    const n = opened.chain.lookup(opened.chain.root, 'f.bin')!
    const ref = n.chunks.get(2)!
    n.chunks.set(2, { ...ref, version: ref.version + 1 })
    const fh = await vfs.open('/c/f.bin', fsc.O_RDONLY)
    expect(Buffer.from(await vfs.read(fh, 0, CS)).equals(want.subarray(0, CS))).toBe(true)
    expect(Buffer.from(await vfs.read(fh, CS, CS)).equals(want.subarray(CS, 2 * CS))).toBe(true)
    await expect(vfs.read(fh, 2 * CS, CS)).rejects.toMatchObject({ code: 'EIO' })
    expect(Buffer.from(await vfs.read(fh, 3 * CS, CS)).equals(want.subarray(3 * CS))).toBe(true)
    await vfs.release(fh)
    await vfs.close()
  })
})
