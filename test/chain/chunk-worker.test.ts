import { constants as fsc } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { DEFAULT_CHUNK_SIZE } from '../../src/chain/format.ts'
import { SealSlots, SlabCache } from '../../src/chain/slab.ts'
import { acquireChunkPool } from '../../src/crypto/chunk-pool.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { chainVfs, tempHomeEach } from './helpers.ts'

const CS = DEFAULT_CHUNK_SIZE

async function readRange(vfs: Vfs, path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await vfs.open(path, fsc.O_RDONLY)
  try {
    return Buffer.from(await vfs.read(fh, offset, length))
  } finally {
    await vfs.release(fh)
  }
}

describe('the chunk worker', () => {
  const t = tempHomeEach()

  it('serves a read whose chunks the worker died opening, opening them on the main thread', async () => {
    let { vfs } = await chainVfs(t.path, t.home)
    const want = randomBytes(6 * CS + 77)
    await vfs.writeFile('/c/f.bin', want)
    await vfs.close()
    ;({ vfs } = await chainVfs(t.path, t.home))
    const lease = acquireChunkPool()
    try {
      lease.pool.crashNextJob()
      expect((await readRange(vfs, '/c/f.bin', 0, want.length)).equals(want)).toBe(true)
      // and the next reads go to a new worker
      expect((await readRange(vfs, '/c/f.bin', 3 * CS + 5, 2 * CS)).equals(want.subarray(3 * CS + 5, 5 * CS + 5))).toBe(true)
    } finally {
      await vfs.close()
      await lease.release()
    }
  })

  it('keeps every byte of chunks the worker died sealing', async () => {
    let { vfs } = await chainVfs(t.path, t.home)
    const lease = acquireChunkPool()
    const want = randomBytes(4 * CS)
    try {
      const fh = await vfs.create('/c/s.bin', 0o644, fsc.O_RDWR)
      await vfs.write(fh, 0, want.subarray(0, CS))
      lease.pool.crashNextJob()
      for (let o = CS; o < want.length; o += CS) await vfs.write(fh, o, want.subarray(o, o + CS))
      await vfs.fsync(fh)
      await vfs.release(fh)
      await vfs.close()
    } finally {
      await lease.release()
    }
    ;({ vfs } = await chainVfs(t.path, t.home))
    expect((await vfs.readFile('/c/s.bin')).equals(want)).toBe(true)
    await vfs.close()
  })

  it('reads back a whole chunk while the worker is still sealing it, and after', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    const want = randomBytes(2 * CS)
    const fh = await vfs.create('/c/w.bin', 0o644, fsc.O_RDWR)
    await vfs.write(fh, 0, want)
    const n = chain.lookup(chain.root, 'w.bin')!
    expect(n.chunks.get(0)!.sealing).toBeInstanceOf(Promise)
    expect(Buffer.from(await vfs.read(fh, 0, 2 * CS)).equals(want)).toBe(true)
    await vfs.fsync(fh)
    expect(n.chunks.get(0)!.sealing).toBeUndefined()
    expect(Buffer.from(await vfs.read(fh, CS - 10, 20)).equals(want.subarray(CS - 10, CS + 10))).toBe(true)
    await vfs.release(fh)
    await vfs.close()
  })

  it('serves many concurrent random reads right through a cache far smaller than the file', async () => {
    let { vfs } = await chainVfs(t.path, t.home)
    const want = randomBytes(64 * CS)
    await vfs.writeFile('/c/big.bin', want)
    await vfs.close()
    // the smallest cache: 32 slots for 64 chunks, so reads evict each other's chunks
    ;({ vfs } = await chainVfs(t.path, t.home, { cacheBytes: 1 }))
    const reads = Array.from({ length: 200 }, (_, i) => {
      const offset = (i * 7919 * 4099) % (want.length - 1)
      const length = 1 + ((i * 104729) % (3 * CS))
      return { offset, length }
    })
    const got = await Promise.all(reads.map(r => readRange(vfs, '/c/big.bin', r.offset, r.length)))
    got.forEach((g, i) => {
      const { offset, length } = reads[i]!
      expect(g.equals(want.subarray(offset, offset + length))).toBe(true)
    })
    await vfs.close()
  })
})

describe('SlabCache', () => {
  it('copies a chunk out with zeros past its length, and says when it is not there', () => {
    const c = new SlabCache(2, 8)
    expect(c.put('a', Buffer.from('abc'))).toBe(true)
    const dest = Buffer.alloc(6, 0x2e)
    expect(c.copy('a', 1, 6, dest, 1)).toBe(true)
    expect(dest.toString('latin1')).toBe('.bc\0\0\0')
    expect(c.copy('b', 0, 1, dest, 0)).toBe(false)
  })

  it('evicts the least recently used ready slot, never one being filled', () => {
    const c = new SlabCache(3, 4)
    const filling = c.reserve('loading')!
    c.put('old', Buffer.from('1'))
    c.put('new', Buffer.from('2'))
    c.copy('old', 0, 1, Buffer.alloc(1), 0)
    // every slot taken: 'new' is the least recently used ready one
    c.put('next', Buffer.from('3'))
    expect(c.has('new')).toBe(false)
    expect(c.has('old')).toBe(true)
    expect(c.holds('loading')).toBe(true)
    // a second reservation of a chunk being filled is refused; with every other slot being filled, so is a new one
    expect(c.reserve('loading')).toBeUndefined()
    c.reserve('x')
    c.reserve('y')
    expect(c.reserve('z')).toBeUndefined()
    c.ready(filling, 4)
    expect(c.has('loading')).toBe(true)
  })

  it('takes the slot of a used-up chunk before a slot never used, and keeps a chunk read again', () => {
    const c = new SlabCache(4, 4)
    const a = c.reserve('a')!
    c.ready(a, 4)
    const b = c.reserve('b')!
    c.ready(b, 4)
    c.usedUp('a')
    // 'a' goes first, though two slots were never used
    expect(c.reserve('c')).toBe(a)
    expect(c.has('a')).toBe(false)
    expect(c.has('b')).toBe(true)
    // a used-up chunk read again is live again: its slot is not taken
    c.usedUp('b')
    expect(c.copy('b', 0, 1, Buffer.alloc(1), 0)).toBe(true)
    const d = c.reserve('d')!
    expect(d).not.toBe(b)
    expect(c.has('b')).toBe(true)
    // one being filled is never used up
    c.usedUp('c')
    expect(c.reserve('e')).not.toBe(a)
  })

  it('keeps its list of used-up slots bounded when the same chunks are used up over and over', () => {
    const c = new SlabCache(2, 4)
    c.put('a', Buffer.from('1'))
    for (let i = 0; i < 1000; i++) {
      c.usedUp('a')
      c.copy('a', 0, 1, Buffer.alloc(1), 0)
    }
    c.usedUp('a')
    expect((c as unknown as { spent: number[] }).spent.length).toBeLessThanOrEqual(4)
    c.put('b', Buffer.from('2'))
    // 'a', used up last, was taken for 'b'
    expect(c.has('a')).toBe(false)
    expect(c.has('b')).toBe(true)
  })
})

describe('SealSlots', () => {
  it('hands out each slot once until it is given back, plaintext and sealed parts apart', () => {
    const s = new SealSlots(2, 1024, 28)
    const a = s.take()!
    const b = s.take()!
    expect(a).not.toBe(b)
    expect(s.take()).toBeUndefined()
    expect(s.sealedAt(a) - s.plainAt(a)).toBe(1024)
    expect(Math.abs(s.plainAt(b) - s.plainAt(a))).toBeGreaterThanOrEqual(2 * 1024 + 28)
    s.give(a)
    expect(s.take()).toBe(a)
  })
})
