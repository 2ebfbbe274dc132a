import { describe, expect, it } from 'vitest'
import { ROOT_INO, type ChainEvent, type ChunkPutEvent } from '../../src/chain/format.ts'
import { PendingChanges } from '../../src/chain/pending-changes.ts'
import { ChainTree, type ChunkRef, type Inode, type InodeMeta } from '../../src/chain/tree.ts'

/** A tree in memory: the root and the files `inos` in it, their metadata decrypted (as after a create). */
function treeWith(...inos: number[]): { tree: ChainTree; files: Inode[] } {
  const tree = new ChainTree(new Uint8Array(16).fill(7))
  tree.rootKey = ChainTree.newKey()
  const meta = (name: string, parent: number, kind: 'dir' | 'file'): InodeMeta => ({ name, parent, kind, mode: 0o644, uid: 0, gid: 0, atimeNs: 1n, mtimeNs: 1n, ctimeNs: 1n, size: 0, key: ChainTree.newKey() })
  const root = tree.inode(ROOT_INO)
  root.meta = { ...meta('', 0, 'dir'), key: tree.rootKey }
  const files = inos.map(ino => {
    const n = tree.inode(ino)
    n.keyParent = ROOT_INO
    n.meta = meta(`f${ino}`, ROOT_INO, 'file')
    return n
  })
  return { tree, files }
}

/** A chunk put of `index` in `ino`, sealed to `len` bytes, with its place. */
function chunk(ino: number, index: number, len: number): { e: ChunkPutEvent; ref: ChunkRef } {
  const sealed = Buffer.alloc(len)
  return { e: { type: 'chunkPut', ino, index, version: 1, sealed }, ref: { version: 1, pos: -1, len, sealed } }
}

const cut = (ino: number, from: number): ChainEvent => ({ type: 'chunksCut', ino, from })

describe('PendingChanges (what waits for the next block)', () => {
  it('has changes once metadata or an event waits, and counts the sealed bytes of its chunks', () => {
    const p = new PendingChanges(1)
    expect(p.hasChanges).toBe(false)
    const a = chunk(2, 0, 100)
    p.addChunk(a.e, a.ref)
    expect(p.hasChanges).toBe(true)
    expect(p.events).toEqual([a.e])
    expect(p.chunks).toEqual([a])
    expect(p.bytes).toBe(100)
  })

  it('takes the metadata of the changed inodes still named first, then the queued events, leaving nothing', () => {
    const { tree, files } = treeWith(2, 3)
    const [named, gone] = files as [Inode, Inode]
    gone.deleted = true
    const p = new PendingChanges(3)
    p.dirtyMeta.add(named).add(gone)
    const a = chunk(2, 0, 100)
    p.addChunk(a.e, a.ref)
    p.events.push(cut(2, 4))
    const queued = p.events
    const taken = p.take(tree)
    expect(taken.events.map(e => e.type)).toEqual(['inodePut', 'chunkPut', 'chunksCut'])
    expect(taken.events[0]).toMatchObject({ type: 'inodePut', ino: 2, version: 1, keyParent: ROOT_INO })
    expect(named.version).toBe(1)
    expect(gone.version).toBe(0)
    expect(taken.metaInodes).toEqual([named, gone])
    expect(taken.queued).toBe(queued)
    expect(taken.chunks).toEqual([a])
    expect(taken.bytes).toBe(100)
    expect(p.hasChanges).toBe(false)
    expect([p.events, p.chunks, p.bytes, p.dirtyMeta.size]).toEqual([[], [], 0, 0])
  })

  it('puts back what a commit took ahead of what was queued since, without the inodes removed meanwhile', () => {
    const { tree, files } = treeWith(2, 3)
    const [kept, removed] = files as [Inode, Inode]
    const p = new PendingChanges(3)
    p.dirtyMeta.add(kept).add(removed)
    const a = chunk(2, 0, 100)
    p.addChunk(a.e, a.ref)
    const taken = p.take(tree)
    removed.deleted = true
    const b = chunk(2, 1, 40)
    p.addChunk(b.e, b.ref)
    p.putBack(taken)
    expect(p.events).toEqual([a.e, b.e])
    expect(p.chunks).toEqual([a, b])
    expect(p.bytes).toBe(140)
    expect([...p.dirtyMeta]).toEqual([kept])
  })

  it('drops the chunks and cuts of removed files, freeing their slots, but keeps a chunk still being sealed', () => {
    const { files } = treeWith(2, 3)
    const [stays, goes] = files as [Inode, Inode]
    goes.deleted = true
    const p = new PendingChanges(3)
    p.dirtyMeta.add(stays).add(goes)
    const a = chunk(2, 0, 100)
    const b = chunk(3, 0, 60)
    const sealing = chunk(3, 1, 30)
    sealing.ref.sealing = new Promise(() => {})
    for (const c of [a, b, sealing]) p.addChunk(c.e, c.ref)
    p.events.push(cut(3, 0), cut(2, 1))
    const freed: ChunkPutEvent[] = []
    p.dropDeleted(ino => ino === 3, e => void freed.push(e))
    expect(freed).toEqual([b.e])
    expect(p.events).toEqual([a.e, sealing.e, cut(2, 1)])
    expect(p.chunks).toEqual([a, sealing])
    expect(p.bytes).toBe(130)
    expect([...p.dirtyMeta]).toEqual([stays])
  })

  it('keeps the content of kept blocks ahead of what waits, dropping queued events of inodes above the renewed mark', () => {
    const { files } = treeWith(2, 9)
    const p = new PendingChanges(5)
    const waiting = chunk(2, 1, 10)
    p.addChunk(waiting.e, waiting.ref)
    const group: ChainEvent = { type: 'group', name: 'g', epoch: 1, kemKey: new Uint8Array(0), wraps: [] }
    p.events.push(cut(9, 0), group)
    p.dirtyMeta.add(files[1]!)
    const kept = chunk(2, 0, 20)
    p.keep({ events: [kept.e], refs: [kept], meta: [files[0]!] }, 5)
    expect(p.events).toEqual([kept.e, waiting.e, group])
    expect(p.chunks).toEqual([kept, waiting])
    expect(p.bytes).toBe(30)
    expect([...p.dirtyMeta]).toEqual([files[0]])
  })

  it('counts the inodes of a signed block as landed only once it lands, and hands back the content of blocks that never did', () => {
    const p = new PendingChanges(4)
    const a = chunk(5, 0, 10)
    const b = chunk(7, 0, 10)
    p.signed(10, [a.e, cut(5, 3)], [a], 5)
    p.signed(11, [{ type: 'inodePut', ino: 7, keyParent: 1, version: 1, sealedMeta: Buffer.alloc(1) }, b.e], [b], 7)
    expect(p.landedMaxIno).toBe(4)
    p.landed(10)
    expect(p.landedMaxIno).toBe(5)
    p.landed(12)
    expect(p.landedMaxIno).toBe(5)
    expect(p.takeUnlanded(5)).toEqual([])
    p.signed(12, [a.e, cut(5, 3)], [a], 5)
    p.signed(13, [b.e], [b], 7)
    expect(p.takeUnlanded(Infinity)).toEqual([{ e: a.e, ref: a.ref }, { e: cut(5, 3), ref: undefined }, { e: b.e, ref: b.ref }])
    expect(p.takeUnlanded(Infinity)).toEqual([])
  })

  it('waits for the newest landing until it settles, then for nothing (its failure is told to its own block only)', async () => {
    const p = new PendingChanges(1)
    let fail!: (err: Error) => void
    const landing = new Promise<void>((_, reject) => (fail = reject))
    p.landing(landing)
    expect(p.lastLanded).toBe(landing)
    fail(new Error('EIO'))
    await expect(p.lastLanded).rejects.toThrow('EIO')
    await Promise.resolve()
    expect(p.lastLanded).not.toBe(landing)
    await expect(p.lastLanded).resolves.toBeUndefined()
  })

  it('gives catch-up its chunks and metadata by reference, and queues what catch-up emits', () => {
    const p = new PendingChanges(1)
    const local = p.local(4096)
    expect(local.dirtyMeta).toBe(p.dirtyMeta)
    expect(local.pendingRefs).toBe(p.chunks)
    expect(local.chunkSize).toBe(4096)
    local.emit(cut(2, 0))
    expect(p.events).toEqual([cut(2, 0)])
  })
})
