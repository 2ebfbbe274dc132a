import { chunkClass } from '../crypto/padding.ts'
import { seal, SEAL_OVERHEAD } from '../crypto/primitives.ts'
import type { ChunkCipherPool } from '../crypto/chunk-pool.ts'
import { vfsError } from '../vfs/errors.ts'
import type { Logger } from '../vfs/log.ts'
import { MAX_FILE_SIZE } from '../vfs/memory.ts'
import { copyBytes } from './copy-bytes.ts'
import type { ChunkPutEvent } from './format.ts'
import { chunkAad } from './keys.ts'
import type { PendingChanges, PendingChunk } from './pending-changes.ts'
import type { ChunkReader } from './reader.ts'
import { SealSlots } from './slab.ts'
import type { ChainTree, ChunkRef, Inode } from './tree.ts'

const EMPTY = new Uint8Array(0)
/** Written chunks this big or bigger are sealed by the chunk worker. */
const OFFLOAD_SEAL_BYTES = 64 * 1024
/** How many written chunks can wait in seal slots for their block (a block and a half of 128 KiB chunks). */
const SEAL_SLOTS = 96
/** A write waits for the commit once this many blocks' worth of sealed content is waiting. */
export const MAX_PENDING_BLOCKS = 2
/** How many sealed dirty-chunk buffers are kept for reuse. */
const MAX_SPARE_CHUNKS = 16
/** Written chunks up to this size stay in the cache (copied); bigger ones are decrypted again when read. */
const CACHE_WRITTEN_BYTES = 16 * 1024

/** What a {@link ChunkWriter} works on. */
export interface ChunkWriterOptions {
  /** The chain's tree: the files written, their metadata and chunk keys. */
  tree: ChainTree
  chunkSize: number
  /** Reads a chunk before part of it is written, and keeps small written chunks in its cache. */
  reader: ChunkReader
  /** Where sealed chunks go, for the next block. */
  pending: PendingChanges
  /** How much sealed content makes a block: a write asks for a commit then. */
  blockBytes: number
  logger: Logger
  /** Where the chain lives, for messages. */
  path: string
}

/** What the chain does for its {@link ChunkWriter}. */
export interface ChunkWriterHooks {
  /** Throws when the chain takes no change now (failed, read-only, closed). */
  writable(): void
  /** Sets the times of a file written to, and queues its metadata for the next block. */
  touch(n: Inode): void
  /** Asks for a commit within the group-commit delay. */
  schedule(): void
  /** Asks for a commit now; settles when its block has landed. */
  commit(): Promise<void>
}

/**
 * Writes file content: the chunks written in part wait in memory as plaintext dirty
 * buffers (reused once sealed), and are sealed (encrypted with the file's chunk key) as
 * they fill, when a file holds too many, or before a block is built; whole chunks are
 * sealed at once. A big chunk is sealed on the chunk worker in a seal slot. Each sealed
 * chunk goes to the {@link PendingChanges} for the next block.
 */
export class ChunkWriter {
  /** Where big written chunks are sealed by the chunk worker (made on the first one). */
  private seals: SealSlots | undefined
  private sealsId: number | undefined
  /** The seal slot each sealed, not yet encoded chunk event lies in. */
  private readonly sealSlotOf = new Map<ChunkPutEvent, number>()
  /** Buffers of sealed dirty chunks, reused for the next dirty chunks (a stream allocates none). */
  private readonly spare: Buffer[] = []
  private dirtyBytes = 0
  private readonly dirty = new Set<Inode>()

  /** Writes into `o.tree`'s files; `hooks` are the chain's. */
  constructor(
    private readonly o: ChunkWriterOptions,
    private readonly hooks: ChunkWriterHooks,
  ) {}

  /** The files holding dirty chunks not sealed yet (their names not removed). */
  get dirtyInodes(): ReadonlySet<Inode> {
    return this.dirty
  }

  /**
   * Writes `data` into file `n` at `offset`, growing it; `EFBIG` past {@link MAX_FILE_SIZE}.
   * A whole chunk is sealed at once from the caller's bytes; a part goes into the chunk's
   * dirty buffer (read from the log first). Waits for the commit when
   * {@link MAX_PENDING_BLOCKS} blocks' worth of sealed content waits.
   */
  async write(n: Inode, offset: number, data: Uint8Array): Promise<number> {
    this.hooks.writable()
    if (offset + data.length > MAX_FILE_SIZE) throw vfsError('EFBIG', `a file holds at most ${MAX_FILE_SIZE} bytes`)
    const cs = this.o.chunkSize
    const m = this.o.tree.meta(n)
    let done = 0
    let lastIndex = 0
    while (done < data.length) {
      const at = offset + done
      const index = Math.floor(at / cs)
      const within = at - index * cs
      const take = Math.min(cs - within, data.length - done)
      if (take === cs && !n.dirty?.has(index) && !n.deleted) {
        // a whole chunk (a sequential stream): sealed straight from the caller's bytes, no dirty copy
        if (at + take > m.size) m.size = at + take
        this.sealChunk(n, index, data.subarray(done, done + take))
      } else {
        let buf = this.dirtyChunkNow(n, index)
        // taken right after the await: a commit may seal dirty chunks (and reuse their buffers) meanwhile
        while (!buf) buf = (await this.dirtyChunk(n, index), n.dirty?.get(index))
        buf.set(data.subarray(done, done + take), within)
        // grow the size chunk by chunk: a commit that seals between two awaits keeps what was written
        if (at + take > m.size) m.size = at + take
      }
      done += take
      lastIndex = index
    }
    if (offset + data.length > m.size) m.size = offset + data.length
    if (!n.deleted) this.hooks.touch(n)
    if (n.dirty && n.dirty.size > 8) this.sealInode(n, lastIndex)
    if (this.dirtyBytes > 4 * this.o.blockBytes) this.sealAll()
    if (this.o.pending.bytes >= this.o.blockBytes) {
      const commit = this.hooks.commit()
      // back-pressure: a writer far ahead of the disk waits, which also bounds a block's size
      if (this.o.pending.bytes >= MAX_PENDING_BLOCKS * this.o.blockBytes) await commit
    }
    return data.length
  }

  /** The dirty buffer of chunk `index` when it can be had without reading the log: already dirty, or a hole. */
  private dirtyChunkNow(n: Inode, index: number): Buffer | undefined {
    const d = n.dirty?.get(index)
    if (d) return d
    if (n.chunks.has(index)) return undefined
    const buf = this.spare.pop()?.fill(0) ?? Buffer.alloc(this.o.chunkSize)
    n.dirty ??= new Map()
    n.dirty.set(index, buf)
    this.noteDirty(n)
    return buf
  }

  /** Counts a new dirty chunk of `n` towards sealing; a file without names keeps its dirty chunks unsealed, for its open handles. */
  private noteDirty(n: Inode): void {
    if (n.deleted) return
    this.dirtyBytes += this.o.chunkSize
    this.dirty.add(n)
  }

  /**
   * Makes chunk `index` dirty, reading it from the log first. Callers take the buffer from
   * `n.dirty` right after awaiting this, never from the result across another await.
   */
  private async dirtyChunk(n: Inode, index: number): Promise<Buffer> {
    let d = n.dirty?.get(index)
    if (d) return d
    const buf = this.spare.pop()?.fill(0) ?? Buffer.alloc(this.o.chunkSize)
    for (let tries = 0; !this.o.reader.copyChunk(n, index, 0, this.o.chunkSize, buf, 0); tries++) {
      if (tries > 64) throw vfsError('EIO', `chunk ${index} of inode ${n.ino} could not be kept in the cache`)
      await this.o.reader.ensure(n, index, this.o.tree, false)
      d = n.dirty?.get(index)
      if (d) {
        if (this.spare.length < MAX_SPARE_CHUNKS) this.spare.push(buf)
        return d
      }
    }
    n.dirty ??= new Map()
    n.dirty.set(index, buf)
    this.noteDirty(n)
    return buf
  }

  /** Sets the size of file `n`, cutting or zero-extending it; `EFBIG` past {@link MAX_FILE_SIZE}. */
  async truncate(n: Inode, size: number): Promise<void> {
    this.hooks.writable()
    if (size > MAX_FILE_SIZE) throw vfsError('EFBIG', `a file holds at most ${MAX_FILE_SIZE} bytes`)
    const m = this.o.tree.meta(n)
    const cs = this.o.chunkSize
    if (size < m.size) {
      const keep = Math.ceil(size / cs)
      if (n.dirty) {
        for (const i of [...n.dirty.keys()]) {
          if (i >= keep) {
            n.dirty.delete(i)
            if (!n.deleted) this.dirtyBytes -= cs
          }
        }
      }
      let cut = false
      for (const i of [...n.chunks.keys()]) {
        if (i >= keep) {
          n.chunks.delete(i)
          cut = true
        }
      }
      if (cut && !n.deleted) this.o.pending.events.push({ type: 'chunksCut', ino: n.ino, from: keep })
      const within = size - Math.floor(size / cs) * cs
      if (within > 0) {
        const index = Math.floor(size / cs)
        if (n.chunks.has(index) || n.dirty?.has(index)) {
          let buf = this.dirtyChunkNow(n, index)
          while (!buf) buf = (await this.dirtyChunk(n, index), n.dirty?.get(index))
          buf.fill(0, within)
        }
      }
    }
    m.size = size
    this.hooks.touch(n)
  }

  /** Seals the dirty chunks of `n` but chunk `except`, handing them to the pending changes. */
  private sealInode(n: Inode, except = -1): void {
    if (!n.dirty || n.deleted) return
    for (const [index, buf] of n.dirty) {
      if (index === except) continue
      n.dirty.delete(index)
      this.dirtyBytes -= this.o.chunkSize
      this.sealChunk(n, index, buf)
      if (this.spare.length < MAX_SPARE_CHUNKS) this.spare.push(buf)
    }
    if (n.dirty.size === 0) {
      n.dirty = undefined
      this.dirty.delete(n)
    }
  }

  /** Seals the dirty chunks of every file (before a block is built, or when too many wait). */
  sealAll(): void {
    for (const n of [...this.dirty]) this.sealInode(n)
  }

  /** Seals chunk `index` of `n` from `buf` (up to the file's size, padded to its size class) and queues it for the next block. */
  private sealChunk(n: Inode, index: number, buf: Uint8Array): void {
    const m = this.o.tree.meta(n)
    const len = Math.min(this.o.chunkSize, m.size - index * this.o.chunkSize)
    if (len <= 0) return
    // the last chunk of a file is padded with zeros to its size class: the metadata's size says where the content ends
    const padded = this.o.tree.padding ? chunkClass(len, this.o.chunkSize) : len
    let plain = buf.subarray(0, padded)
    if (padded > len) {
      // a short chunk is always a dirty buffer of a whole chunk; what lies past the size is zeros
      if (buf.length >= padded) buf.fill(0, len, padded)
      else (plain = Buffer.alloc(padded)).set(buf.subarray(0, len))
    }
    const version = ++n.chunkVersion
    const ref: ChunkRef = { version, pos: -1, len: padded + SEAL_OVERHEAD }
    const e: ChunkPutEvent = { type: 'chunkPut', ino: n.ino, index, version, sealed: EMPTY }
    n.chunks.set(index, ref)
    this.o.pending.addChunk(e, ref)
    // the buffer is reused for the next dirty chunk; a small chunk is kept readable in the cache by a copy
    if (len <= CACHE_WRITTEN_BYTES) this.o.reader.cacheWritten(n, index, ref, plain.subarray(0, len))
    const slot = len >= OFFLOAD_SEAL_BYTES ? this.sealSlot() : undefined
    if (slot === undefined) {
      ref.sealed = seal(this.o.tree.chunkKey(n), plain, chunkAad(this.o.tree.chainId, n.ino, index, version))
      e.sealed = ref.sealed
    } else this.sealOffThread(n, index, ref, e, plain, slot)
    this.hooks.schedule()
  }

  /** A free seal slot (the slots are made on the first big write), or undefined when all are taken. */
  private sealSlot(): number | undefined {
    if (this.o.chunkSize < OFFLOAD_SEAL_BYTES) return undefined
    this.seals ??= new SealSlots(SEAL_SLOTS, this.o.chunkSize, SEAL_OVERHEAD)
    const s = this.seals.take()
    if (s !== undefined) this.sealPool()
    return s
  }

  /** The chunk worker, with the seal slots registered once they exist. */
  private sealPool(): ChunkCipherPool {
    const pool = this.o.reader.chunkPool()
    if (this.seals && this.sealsId === undefined) this.sealsId = pool.addSlab(this.seals.sab)
    return pool
  }

  /**
   * Copies `plain` into seal slot `slot` and has the chunk worker seal it there: the JS thread
   * neither encrypts nor allocates per chunk. The commit that takes the chunk waits for it.
   */
  private sealOffThread(n: Inode, index: number, ref: ChunkRef, e: ChunkPutEvent, plain: Uint8Array, slot: number): void {
    const seals = this.seals!
    const plainAt = seals.plainAt(slot)
    copyBytes(seals.bytes, plainAt, plain)
    const key = this.o.tree.chunkKey(n)
    const aad = chunkAad(this.o.tree.chainId, n.ino, index, ref.version)
    const outAt = seals.sealedAt(slot)
    const done = (sealed: Buffer) => {
      ref.sealed = sealed
      e.sealed = sealed
      ref.sealing = undefined
      this.sealSlotOf.set(e, slot)
    }
    ref.sealing = this.sealPool()
      .seal(this.sealsId!, { key, aad, plainAt, len: plain.length, outAt })
      .then(
        length => done(seals.bytes.subarray(outAt, outAt + length)),
        err => {
          // the worker died: sealed here from the plaintext still in the slot
          this.o.logger.warn({ err: (err as Error).message, path: this.o.path }, 'chunk worker failed; sealing on the main thread')
          seals.give(slot)
          done(seal(key, seals.bytes.subarray(plainAt, plainAt + plain.length), aad))
          this.sealSlotOf.delete(e)
        },
      )
  }

  /** Seals the dirty chunks of `n` so they no longer take a full chunk of memory each. */
  flush(n: Inode): void {
    this.sealInode(n)
  }

  /** Forgets the dirty chunks of `n`, whose last name went: they stay with it for its open handles, but are never sealed. */
  released(n: Inode): void {
    if (n.dirty && this.dirty.delete(n)) this.dirtyBytes -= n.dirty.size * this.o.chunkSize
  }

  /** Forgets the dirty chunks of the files a rebuild removed. */
  dropDeleted(): void {
    for (const n of this.dirty) {
      if (!n.deleted) continue
      this.dirty.delete(n)
      if (n.dirty) this.dirtyBytes -= n.dirty.size * this.o.chunkSize
      n.dirty = undefined
    }
  }

  /**
   * The sealed `chunks` are in a signed block whose encoded body is `body`: their seal
   * slots are free again, and a chunk's sealed bytes are read from the body until it lands.
   */
  signed(chunks: PendingChunk[], body: Buffer): void {
    for (const { e, ref } of chunks) {
      const slot = this.sealSlotOf.get(e)
      if (slot === undefined) continue
      this.sealSlotOf.delete(e)
      if (ref.sealed && e.bodyOffset !== undefined) ref.sealed = body.subarray(e.bodyOffset, e.bodyOffset + ref.len)
      this.seals!.give(slot)
    }
  }

  /** Gives back the seal slot of the chunk of `e`, dropped before its block. */
  free(e: ChunkPutEvent): void {
    const slot = this.sealSlotOf.get(e)
    if (slot !== undefined) (this.sealSlotOf.delete(e), this.seals!.give(slot))
  }

  /** Takes the seal slots off the chunk worker (at close, once the reader has settled). */
  close(): void {
    if (this.sealsId !== undefined) this.o.reader.leasedPool?.dropSlab(this.sealsId)
  }
}
