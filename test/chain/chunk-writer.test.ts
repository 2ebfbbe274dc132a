import { afterEach, describe, expect, it } from 'vitest'
import { open, SEAL_OVERHEAD } from '../../src/crypto/primitives.ts'
import { ChunkWriter, type ChunkWriterHooks } from '../../src/chain/chunk-writer.ts'
import { ROOT_INO } from '../../src/chain/format.ts'
import { chunkAad } from '../../src/chain/keys.ts'
import { PendingChanges } from '../../src/chain/pending-changes.ts'
import { ChunkReader } from '../../src/chain/reader.ts'
import { ChainTree, type Inode } from '../../src/chain/tree.ts'
import { vfsError } from '../../src/vfs/errors.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { MAX_FILE_SIZE } from '../../src/vfs/memory.ts'

const CHUNK = 4096

/** A chunk writer on a tree in memory holding one empty file (ino 2), with hooks that record what it asks of the chain. */
function writerOnEmptyFile(blockBytes = 1024 * 1024) {
  const tree = new ChainTree(new Uint8Array(16).fill(3))
  tree.rootKey = ChainTree.newKey()
  const meta = { parent: 0, mode: 0o644, uid: 0, gid: 0, atimeNs: 1n, mtimeNs: 1n, ctimeNs: 1n, size: 0 }
  tree.inode(ROOT_INO).meta = { ...meta, name: '', kind: 'dir', key: tree.rootKey }
  const file = tree.inode(2)
  file.keyParent = ROOT_INO
  file.meta = { ...meta, name: 'f', parent: ROOT_INO, kind: 'file', key: ChainTree.newKey() }
  // every write here goes to holes or whole chunks: nothing is read from a log
  const reader = new ChunkReader({ log: () => { throw new Error('no log') }, tree, chainId: tree.chainId, chunkSize: CHUNK, logger: silentLogger, path: 'memory' }, 1024 * 1024)
  const pending = new PendingChanges(2)
  const calls: string[] = []
  let refuse: Error | undefined
  let landing: Promise<void> = Promise.resolve()
  const hooks: ChunkWriterHooks = {
    writable: () => {
      if (refuse) throw refuse
    },
    touch: n => void calls.push(`touch ${n.ino}`),
    schedule: () => void calls.push('schedule'),
    commit: () => (calls.push('commit'), landing),
  }
  const writer = new ChunkWriter({ tree, chunkSize: CHUNK, reader, pending, blockBytes, logger: silentLogger, path: 'memory' }, hooks)
  readers.push(reader)
  return { tree, file, reader, pending, writer, calls, refuse: (err: Error) => (refuse = err), landWith: (p: Promise<void>) => (landing = p) }
}

const readers: ChunkReader[] = []
afterEach(async () => {
  for (const r of readers.splice(0)) await r.close()
})

/** The plaintext of the pending chunk put `i` of `pending`, opened with `n`'s chunk key. */
function openPending(tree: ChainTree, n: Inode, pending: PendingChanges, i: number): Buffer {
  const { e, ref } = pending.chunks[i]!
  expect(e.sealed).toBe(ref.sealed)
  return open(tree.chunkKey(n), ref.sealed!, chunkAad(tree.chainId, n.ino, e.index, e.version))
}

describe('ChunkWriter (file content into dirty chunks, sealed for the next block)', () => {
  it('keeps part of a chunk dirty, unsealed, until the file is flushed; then seals it padded to its size class', async () => {
    const { tree, file, reader, pending, writer, calls } = writerOnEmptyFile()
    expect(await writer.write(file, 10, Buffer.from('hello'))).toBe(5)
    expect(tree.meta(file).size).toBe(15)
    expect([...writer.dirtyInodes]).toEqual([file])
    expect(file.dirty?.get(0)?.subarray(0, 15)).toEqual(Buffer.from('\0'.repeat(10) + 'hello'))
    expect(pending.chunks).toEqual([])
    expect(calls).toEqual(['touch 2'])
    writer.flush(file)
    expect(file.dirty).toBeUndefined()
    expect(writer.dirtyInodes.size).toBe(0)
    expect(pending.chunks.map(c => [c.e.ino, c.e.index, c.e.version, c.ref.len, c.ref.pos])).toEqual([[2, 0, 1, 512 + SEAL_OVERHEAD, -1]])
    expect(pending.bytes).toBe(512 + SEAL_OVERHEAD)
    expect(file.chunks.get(0)).toBe(pending.chunks[0]!.ref)
    const plain = openPending(tree, file, pending, 0)
    expect(plain).toEqual(Buffer.concat([Buffer.alloc(10), Buffer.from('hello'), Buffer.alloc(512 - 15)]))
    expect(calls).toEqual(['touch 2', 'schedule'])
    // a small written chunk stays readable from the cache, with no log
    expect(Buffer.from(await reader.read(file, 0, 100))).toEqual(Buffer.concat([Buffer.alloc(10), Buffer.from('hello')]))
  })

  it('seals a whole chunk at once from the caller’s bytes, with no dirty copy', async () => {
    const { tree, file, pending, writer, calls } = writerOnEmptyFile()
    const data = Buffer.alloc(2 * CHUNK, 7)
    await writer.write(file, CHUNK, data)
    expect(file.dirty).toBeUndefined()
    expect(pending.chunks.map(c => [c.e.index, c.ref.len])).toEqual([
      [1, CHUNK + SEAL_OVERHEAD],
      [2, CHUNK + SEAL_OVERHEAD],
    ])
    expect(openPending(tree, file, pending, 1)).toEqual(Buffer.alloc(CHUNK, 7))
    expect(tree.meta(file).size).toBe(3 * CHUNK)
    expect(calls).toEqual(['schedule', 'schedule', 'touch 2'])
  })

  it('asks for a commit once a block’s worth of sealed content waits, and waits for it at two blocks', async () => {
    const { file, writer, calls, landWith } = writerOnEmptyFile(2 * CHUNK)
    let land!: () => void
    landWith(new Promise<void>(r => (land = r)))
    await writer.write(file, 0, Buffer.alloc(CHUNK))
    expect(calls).not.toContain('commit')
    // one block waits: a commit is asked for, and not waited for
    await writer.write(file, CHUNK, Buffer.alloc(CHUNK))
    expect(calls.filter(c => c === 'commit')).toEqual(['commit'])
    // two blocks wait: the write returns once the commit has landed
    let returned = false
    const third = writer.write(file, 2 * CHUNK, Buffer.alloc(2 * CHUNK)).then(() => (returned = true))
    await new Promise(r => setTimeout(r, 20))
    expect(calls.filter(c => c === 'commit')).toEqual(['commit', 'commit'])
    expect(returned).toBe(false)
    land()
    await third
    expect(returned).toBe(true)
  })

  it('rejects a write past the largest file size with EFBIG, and any change while the chain refuses them', async () => {
    const { file, writer, refuse } = writerOnEmptyFile()
    await expect(writer.write(file, MAX_FILE_SIZE, Buffer.from('x'))).rejects.toMatchObject({ code: 'EFBIG' })
    await expect(writer.truncate(file, MAX_FILE_SIZE + 1)).rejects.toMatchObject({ code: 'EFBIG' })
    refuse(vfsError('EROFS', 'the chain is open read-only'))
    await expect(writer.write(file, 0, Buffer.from('x'))).rejects.toMatchObject({ code: 'EROFS' })
    await expect(writer.truncate(file, 0)).rejects.toMatchObject({ code: 'EROFS' })
  })

  it('cuts the chunks past a shorter size (queuing the cut) and zeroes the rest of the chunk the new end lies in', async () => {
    const { tree, file, pending, writer } = writerOnEmptyFile()
    await writer.write(file, 0, Buffer.alloc(3 * CHUNK, 1))
    await writer.truncate(file, CHUNK + 10)
    expect([...file.chunks.keys()]).toEqual([0, 1])
    expect(pending.events.at(-1)).toEqual({ type: 'chunksCut', ino: 2, from: 2 })
    expect(tree.meta(file).size).toBe(CHUNK + 10)
    // chunk 1 was sealed: the chunk the new end lies in is dirty again (copied from the cache), zero past the end
    const dirty = file.dirty?.get(1)
    expect(dirty?.subarray(0, 10)).toEqual(Buffer.alloc(10, 1))
    expect(dirty?.subarray(10)).toEqual(Buffer.alloc(CHUNK - 10))
    expect([...writer.dirtyInodes]).toEqual([file])
  })

  it('never seals the dirty chunks of a file whose last name went, nor keeps those of files a rebuild removed', async () => {
    const { tree, file, pending, writer } = writerOnEmptyFile()
    await writer.write(file, 0, Buffer.from('kept for open handles'))
    // as the namespace drops an inode: deleted, then released
    file.deleted = true
    writer.released(file)
    expect(writer.dirtyInodes.size).toBe(0)
    writer.sealAll()
    expect(pending.chunks).toEqual([])
    expect(file.dirty?.get(0)?.subarray(0, 21).toString()).toBe('kept for open handles')
    const other = tree.inode(3)
    other.keyParent = ROOT_INO
    other.meta = { ...tree.meta(file), name: 'g', key: ChainTree.newKey() }
    await writer.write(other, 0, Buffer.from('x'))
    expect([...writer.dirtyInodes]).toEqual([other])
    other.deleted = true
    writer.dropDeleted()
    expect(writer.dirtyInodes.size).toBe(0)
    expect(other.dirty).toBeUndefined()
  })
})
