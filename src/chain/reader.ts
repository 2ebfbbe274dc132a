import { DecryptError, open } from '../crypto/primitives.ts'
import { acquireChunkPool, ChunkWorkerError, type ChunkCipherPool, type ChunkLease, type OpenResult } from '../crypto/chunk-pool.ts'
import { vfsError } from '../vfs/errors.ts'
import type { Logger } from '../vfs/log.ts'
import type { ChainLog } from './backend.ts'
import { chunkAad } from './keys.ts'
import { copyBytes } from './copy-bytes.ts'
import { SlabCache } from './slab.ts'
import { ForgedDataError, type ChainTree, type ChunkRef, type Inode } from './tree.ts'

const EMPTY = new Uint8Array(0)
/** How far ahead of a sequential reader chunks are fetched and opened, in bytes. */
const READ_AHEAD_BYTES = 4 * 1024 * 1024
/** The most bytes one run reads from the log (one read, one message to the chunk worker). */
const RUN_BYTES = 1024 * 1024
/** The most chunks loaded by one run. */
const MAX_RUN_CHUNKS = 8
/** Opened chunks kept outside the cache slab while every slot is being filled. */
const MAX_OVERFLOW_CHUNKS = 8
/**
 * A chunk this small (sealed) that is read alone is read and opened on the JS thread, where
 * the log can be read synchronously (`ChainLog.readSync`): 6 µs to read and about 10 to open
 * 9 KiB here, against 180 µs for the chunk worker's round trip (`grep -r` over small files).
 */
const SMALL_CHUNK_BYTES = 64 * 1024

/** What a {@link ChunkReader} reads for. */
export interface ChunkSource {
  /** The log as it is now (compaction swaps it). */
  log(): ChainLog
  readonly tree: ChainTree
  readonly chainId: Uint8Array
  readonly chunkSize: number
  readonly logger: Logger
  /** The log's name, for messages. */
  readonly path: string
}

/**
 * Reads file content of a chain: decrypted chunks in a cache slab of shared memory that
 * the chunk worker fills, read-ahead for sequential readers, runs of neighbouring chunks
 * read from the log in one go, and dirty (written, unsealed) chunks served as they are.
 */
export class ChunkReader {
  /** Decrypted chunks, by {@link chunkCacheKey}, in slots the chunk worker fills. */
  private readonly slab: SlabCache
  /** Opened chunks that found no free slot (every slot being filled), a few at most. */
  private readonly overflow = new Map<string, Buffer>()
  /** Chunks on their way into the cache. */
  private readonly loading = new Map<string, Promise<void>>()
  private cipher: ChunkLease | undefined
  private slabId: number | undefined
  /** Per file, the chunk a sequential reader asks for next (read-ahead starts when it does). */
  private readonly readNext = new WeakMap<Inode, number>()
  /** Per file read in order, the first chunk not yet fetched ahead. */
  private readonly aheadOf = new WeakMap<Inode, number>()
  private readonly tree: ChainTree
  private readonly chainId: Uint8Array
  private readonly chunkSize: number
  private readonly logger: Logger
  private readonly path: string
  private readonly log: () => ChainLog

  /** `cacheBytes`: bytes of decrypted chunks kept (at least a few runs' worth). */
  constructor(source: ChunkSource, cacheBytes: number) {
    this.tree = source.tree
    this.chainId = source.chainId
    this.chunkSize = source.chunkSize
    this.logger = source.logger
    this.path = source.path
    this.log = () => source.log()
    this.slab = new SlabCache(Math.max(4 * MAX_RUN_CHUNKS, Math.floor(cacheBytes / this.chunkSize)), this.chunkSize)
  }

  /** Reads up to `length` bytes of file `n` at `offset`; holes and the tail of a short chunk read as zeros. */
  async read(n: Inode, offset: number, length: number, tree: ChainTree = this.tree): Promise<Uint8Array> {
    const size = tree.meta(n).size
    if (offset >= size || length === 0) return EMPTY
    const out = Buffer.allocUnsafe(Math.min(size, offset + length) - offset)
    const got = await this.readInto(n, offset, out, tree)
    return got === out.length ? out : out.subarray(0, got)
  }

  /**
   * Reads file `n` at `offset` into `dest` (as much as fits; less only at the end of the file)
   * and returns the bytes read. Nothing is allocated per call: the bytes go from the chunk
   * cache straight into `dest` (for FUSE, the kernel's own buffer).
   */
  async readInto(n: Inode, offset: number, dest: Uint8Array, tree: ChainTree = this.tree): Promise<number> {
    const size = tree.meta(n).size
    if (offset >= size || dest.length === 0) return 0
    const end = Math.min(size, offset + dest.length)
    const cs = this.chunkSize
    const first = Math.floor(offset / cs)
    const last = Math.floor((end - 1) / cs)
    let sequential = false
    for (let i = first; i <= last; i++) sequential = this.readAhead(n, i, tree)
    // a read over several chunks starts loading them all before copying the first
    for (let i = first + 1; i <= Math.min(last, first + MAX_RUN_CHUNKS); i++) this.ensure(n, i, tree, sequential)?.catch(() => {})
    for (let i = first; i <= last; i++) {
      const base = i * cs
      const from = Math.max(offset, base) - base
      const to = Math.min(end, base + cs) - base
      // the copy is synchronous with the check that the chunk is there: no eviction comes between
      for (let tries = 0; !this.copyChunk(n, i, from, to, dest, base + from - offset); tries++) {
        if (tries > 64) throw vfsError('EIO', `chunk ${i} of inode ${n.ino} could not be kept in the cache`)
        await this.ensure(n, i, tree, sequential)
      }
      if (sequential && to === cs) this.usedUp(n, i)
    }
    return end - offset
  }

  /** Chunk `index` of `n` was read to its end by a sequential reader: its cache slot goes first (see {@link SlabCache.usedUp}). */
  private usedUp(n: Inode, index: number): void {
    const ref = n.chunks.get(index)
    if (ref && !n.dirty?.has(index)) this.slab.usedUp(chunkCacheKey(n, index, ref))
  }

  /**
   * Copies bytes `[from, to)` of chunk `index` of `n` into `dest` at `at` when they can be had
   * now: a dirty chunk, a hole (zeros), or a chunk in the cache. False when it must be loaded.
   */
  copyChunk(n: Inode, index: number, from: number, to: number, dest: Uint8Array, at: number): boolean {
    const d = n.dirty?.get(index)
    if (d) {
      dest.set(d.subarray(from, to), at)
      return true
    }
    const ref = n.chunks.get(index)
    if (!ref) {
      dest.fill(0, at, at + to - from)
      return true
    }
    const key = chunkCacheKey(n, index, ref)
    if (this.slab.copy(key, from, to, dest, at)) return true
    const plain = this.overflow.get(key)
    if (!plain) return false
    if (from < plain.length) dest.set(plain.subarray(from, Math.min(to, plain.length)), at)
    if (to > plain.length) dest.fill(0, at + Math.max(0, plain.length - from), at + to - from)
    return true
  }

  /**
   * Starts loading chunk `index` of `n` into the cache unless it is there or on its way;
   * resolves once it is (or rejects with {@link ForgedDataError}). Undefined when there is
   * nothing to wait for.
   */
  ensure(n: Inode, index: number, tree: ChainTree, sequential: boolean): Promise<void> | undefined {
    const ref = n.chunks.get(index)
    if (!ref || n.dirty?.has(index)) return undefined
    const key = chunkCacheKey(n, index, ref)
    if (this.slab.has(key) || this.overflow.has(key)) return undefined
    const p = this.loading.get(key)
    if (p) return p
    if (ref.sealing) return ref.sealing
    if (ref.sealed) {
      // written but not yet on disk: opened here, it is small work and rare
      this.keep(key, this.openHere(n, index, ref, ref.sealed, tree))
      return undefined
    }
    this.fetchRun(n, index, tree, sequential ? MAX_RUN_CHUNKS : 1)
    return this.loading.get(key)
  }

  /**
   * Notes a read of chunk `index`; when the file is read in order, keeps the chunks after
   * it fetched and decrypted ahead of the reader (up to {@link READ_AHEAD_BYTES} past it).
   * Returns whether the read is sequential.
   */
  private readAhead(n: Inode, index: number, tree: ChainTree): boolean {
    const expected = this.readNext.get(n) ?? 0
    const sequential = index === expected || index + 1 === expected
    this.readNext.set(n, index + 1)
    if (!sequential) return false
    let ahead = Math.max(this.aheadOf.get(n) ?? 0, index + 1)
    const window = Math.max(1, Math.floor(READ_AHEAD_BYTES / this.chunkSize))
    if (ahead - index > window / 2) return true
    // top the window up in runs once half of it is read
    while (ahead <= index + window && n.chunks.has(ahead)) {
      this.fetchRun(n, ahead, tree, MAX_RUN_CHUNKS)
      const next = this.aheadOf.get(n)!
      if (next <= ahead) break
      ahead = next
    }
    return true
  }

  /**
   * Starts loading up to `max` chunks from `index` on that lie next to each other in the log,
   * in one read of at most {@link RUN_BYTES}: the chunk worker reads and opens them
   * into cache slots. Each is registered in `loading` until it is in the cache; a failure is
   * left for the reader of that chunk.
   */
  private fetchRun(n: Inode, index: number, tree: ChainTree, max: number): void {
    const run: { index: number; ref: ChunkRef; key: string; slot: number }[] = []
    let from = -1
    let end = -1
    for (let i = index; run.length < max; i++) {
      const r = n.chunks.get(i)
      if (!r || r.sealed || r.sealing || n.dirty?.has(i)) break
      if (from >= 0 && (r.pos < end || r.pos > end + 64 || r.pos + r.len - from > RUN_BYTES)) break
      const k = chunkCacheKey(n, i, r)
      if (this.slab.holds(k) || this.overflow.has(k) || this.loading.has(k)) break
      const slot = this.slab.reserve(k)
      if (slot === undefined) break
      if (from < 0) from = r.pos
      run.push({ index: i, ref: r, key: k, slot })
      end = r.pos + r.len
    }
    this.aheadOf.set(n, run.length > 0 ? run.at(-1)!.index + 1 : index + 1)
    if (run.length === 0) {
      // every cache slot is being filled: this one is read and opened here, kept aside
      const ref = n.chunks.get(index)
      const key = ref && chunkCacheKey(n, index, ref)
      if (!ref || ref.sealed || ref.sealing || !key || this.loading.has(key) || this.slab.holds(key) || this.overflow.has(key)) return
      this.track(key, this.readLog(ref.pos, ref.len).then(sealed => {
        if (sealed.length !== ref.len) throw new ForgedDataError(`chunk ${index} of inode ${n.ino} lies past the end of the log`)
        this.keep(key, this.openHere(n, index, ref, sealed, tree))
      }))
      return
    }
    const log = this.log()
    if (run.length === 1 && run[0]!.ref.len <= SMALL_CHUNK_BYTES && log.readSync) return this.openSmall(n, run[0]!, log.readSync, tree)
    const items = run.map(c => ({ key: tree.chunkKeyFor(n, c.ref.version), aad: chunkAad(this.chainId, n.ino, c.index, c.ref.version), at: c.ref.pos - from, len: c.ref.len, slotAt: this.slab.offsetOf(c.slot) }))
    const fd = log.fd
    const pool = this.chunkPool()
    const results: Promise<OpenResult>[] =
      fd !== undefined
        ? pool.open({ slab: this.slabId!, fd, from, bytes: end - from, items })
        : (() => {
            const read = this.readLog(from, end - from)
            return run.map((_, i) => read.then(sealed => pool.open({ slab: this.slabId!, sealed, items: [items[i]!] })[0]!))
          })()
    run.forEach((c, i) => {
      this.track(
        c.key,
        results[i]!.then(
          r => {
            if ('fault' in r) {
              this.slab.release(c.slot)
              throw new ForgedDataError(r.fault === 'auth' ? `chunk ${c.index} of inode ${n.ino} fails authentication` : `chunk ${c.index} of inode ${n.ino} lies past the end of the log`)
            }
            this.slab.ready(c.slot, r.length)
          },
          async err => {
            this.slab.release(c.slot)
            if (!(err instanceof ChunkWorkerError)) throw err
            // the worker died: this chunk is read and opened here instead
            this.logger.warn({ err: err.message, path: this.path }, 'chunk worker failed; opening chunks on the main thread')
            const sealed = await this.readLog(c.ref.pos, c.ref.len)
            if (sealed.length !== c.ref.len) throw new ForgedDataError(`chunk ${c.index} of inode ${n.ino} lies past the end of the log`)
            this.keep(c.key, this.openHere(n, c.index, c.ref, sealed, tree))
          },
        ),
      )
    })
  }

  /**
   * Reads and opens one small chunk here and now, into the cache slot reserved for it; a
   * failure (a chunk past the end of the log, one that fails authentication, a read error)
   * is left for the reader of that chunk, as a worker's would be.
   */
  private openSmall(n: Inode, c: { index: number; ref: ChunkRef; key: string; slot: number }, readSync: NonNullable<ChainLog['readSync']>, tree: ChainTree): void {
    try {
      const sealed = Buffer.allocUnsafe(c.ref.len)
      if (readSync(sealed, 0, c.ref.len, c.ref.pos) !== c.ref.len) throw new ForgedDataError(`chunk ${c.index} of inode ${n.ino} lies past the end of the log`)
      const plain = this.openHere(n, c.index, c.ref, sealed, tree)
      const length = Math.min(plain.length, this.chunkSize)
      copyBytes(this.slab.bytes, this.slab.offsetOf(c.slot), plain.subarray(0, length))
      this.slab.ready(c.slot, length)
    } catch (err) {
      this.slab.release(c.slot)
      this.track(c.key, Promise.reject(err))
    }
  }

  /** Registers load `p` of chunk `key` in `loading` until it settles. */
  private track(key: string, p: Promise<void>): void {
    const done = p.finally(() => this.loading.delete(key))
    done.catch(() => {})
    this.loading.set(key, done)
  }

  /** The process-wide chunk worker (leased on first use), with the cache slab registered. */
  chunkPool(): ChunkCipherPool {
    if (!this.cipher) {
      this.cipher = acquireChunkPool()
      this.slabId = this.cipher.pool.addSlab(this.slab.sab)
    }
    return this.cipher.pool
  }

  /** Leases and starts the chunk worker now, before the first read needs it. */
  warm(): void {
    this.chunkPool().warm()
  }

  /** The chunk worker when it is leased, else undefined. */
  get leasedPool(): ChunkCipherPool | undefined {
    return this.cipher?.pool
  }

  /** Keeps a copy of the plaintext of a chunk just written, so reading it back needs no decryption. */
  cacheWritten(n: Inode, index: number, ref: ChunkRef, plain: Uint8Array): void {
    this.slab.put(chunkCacheKey(n, index, ref), plain)
  }

  /** Waits for the loads under way, drops the cache slab from the chunk worker and ends the lease. */
  async close(): Promise<void> {
    await this.settle()
    if (this.slabId !== undefined) this.cipher?.pool.dropSlab(this.slabId)
    await this.cipher?.release()
    this.cipher = undefined
  }

  /** Puts an opened chunk in the cache, or aside when every slot is being filled. */
  private keep(key: string, plain: Buffer): void {
    if (this.slab.put(key, plain)) return
    if (this.overflow.size >= MAX_OVERFLOW_CHUNKS) this.overflow.delete(this.overflow.keys().next().value!)
    this.overflow.set(key, plain)
  }

  /** Reads up to `length` bytes of the log at `pos` (fewer at its end). */
  private async readLog(pos: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length)
    const { bytesRead } = await this.log().read(buf, 0, length, pos)
    return bytesRead === length ? buf : buf.subarray(0, bytesRead)
  }

  /** Opens a sealed chunk on this thread. */
  private openHere(n: Inode, index: number, ref: ChunkRef, sealed: Uint8Array, tree: ChainTree): Buffer {
    try {
      return open(tree.chunkKeyFor(n, ref.version), sealed, chunkAad(this.chainId, n.ino, index, ref.version))
    } catch (err) {
      if (err instanceof DecryptError) throw new ForgedDataError(`chunk ${index} of inode ${n.ino} fails authentication`)
      throw err
    }
  }

  /** Waits for every chunk being loaded (before the log's descriptor closes or changes). */
  async settle(): Promise<void> {
    while (this.loading.size > 0) await Promise.allSettled([...this.loading.values()])
  }
}

/** The cache key of a chunk's content: inode, index and version name it in every tree. */
function chunkCacheKey(n: Inode, index: number, ref: ChunkRef): string {
  return `${n.ino}:${index}:${ref.version}`
}
