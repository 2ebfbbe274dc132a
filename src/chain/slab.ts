import { copyBytes } from './copy-bytes.ts'

/**
 * The cache of decrypted chunks: fixed slots in one SharedArrayBuffer, so the chunk worker
 * writes plaintext straight into them and memory does not grow with what is read.
 *
 * Slots are handed out on the JS thread only. A slot being filled (`loading`) is never
 * evicted; a ready one is evicted least recently used first. A reader copies out of a slot
 * synchronously right after checking it still holds its chunk ({@link SlabCache.copy}), so
 * no eviction can come between the check and the copy.
 *
 * A chunk a sequential reader has read to its end is used up ({@link SlabCache.usedUp}): its
 * slot is the first taken again, before a slot never used. A stream through a big file thus
 * cycles through the few slots its read-ahead needs, memory already touched, instead of
 * faulting in the whole slab (a first touch costs a page fault per 4 KiB: 16,384 of them for
 * the default 64 MiB, most of a cold 256 MiB read's time in the chunk worker); the kernel's
 * page cache keeps what the stream read.
 */
export class SlabCache {
  readonly sab: SharedArrayBuffer
  readonly bytes: Buffer
  /** Bytes per slot: a chunk's plaintext at most. */
  readonly slotBytes: number
  /** chunk key → slot, in least-recently-used-first order */
  private readonly index = new Map<string, number>()
  private readonly keyOf: (string | undefined)[]
  private readonly length: Int32Array
  private readonly loading: Uint8Array
  private readonly free: number[] = []
  /** Ready slots whose chunk a sequential reader has used up, taken before {@link free} ones (most recent last). */
  private readonly spent: number[] = []
  private readonly isSpent: Uint8Array

  constructor(slots: number, slotBytes: number) {
    this.slotBytes = slotBytes
    this.sab = new SharedArrayBuffer(slots * slotBytes)
    this.bytes = Buffer.from(this.sab)
    this.keyOf = new Array<string | undefined>(slots)
    this.length = new Int32Array(slots)
    this.loading = new Uint8Array(slots)
    this.isSpent = new Uint8Array(slots)
    for (let i = slots - 1; i >= 0; i--) this.free.push(i)
  }

  /** Whether chunk `key` is in a ready slot. */
  has(key: string): boolean {
    const s = this.index.get(key)
    return s !== undefined && this.loading[s] === 0
  }

  /** Whether chunk `key` has a slot at all (ready or being filled). */
  holds(key: string): boolean {
    return this.index.has(key)
  }

  /** A slot for chunk `key`, marked as being filled; undefined when every slot is being filled, or `key` is. */
  reserve(key: string): number | undefined {
    const old = this.index.get(key)
    if (old !== undefined) {
      if (this.loading[old] !== 0) return undefined
      this.release(old)
    }
    let s = this.takeSpent() ?? this.free.pop()
    if (s === undefined) {
      for (const [k, slot] of this.index) {
        if (this.loading[slot] !== 0) continue
        this.index.delete(k)
        this.keyOf[slot] = undefined
        s = slot
        break
      }
    }
    if (s === undefined) return undefined
    this.isSpent[s] = 0
    this.keyOf[s] = key
    this.loading[s] = 1
    this.index.set(key, s)
    return s
  }

  /**
   * Marks chunk `key` used up: a sequential reader has read it to its end. Its slot is the
   * next one reused, unless it is read again first ({@link copy} makes it live again).
   */
  usedUp(key: string): void {
    const s = this.index.get(key)
    if (s === undefined || this.loading[s] !== 0 || this.isSpent[s] !== 0) return
    this.isSpent[s] = 1
    this.spent.push(s)
    // a slot read again and used up again is listed again: drop the stale entries before the list outgrows the slab
    if (this.spent.length > 2 * this.keyOf.length) {
      const live = [...new Set(this.spent.filter(x => this.isSpent[x] === 1))]
      this.spent.splice(0, this.spent.length, ...live)
    }
  }

  /** The most recently used-up slot still holding its chunk, evicted; undefined when there is none. */
  private takeSpent(): number | undefined {
    for (let s = this.spent.pop(); s !== undefined; s = this.spent.pop()) {
      if (this.isSpent[s] === 0) continue
      this.isSpent[s] = 0
      const k = this.keyOf[s]
      if (k !== undefined) this.index.delete(k)
      this.keyOf[s] = undefined
      return s
    }
    return undefined
  }

  /** Byte offset of slot `s` in the slab. */
  offsetOf(s: number): number {
    return s * this.slotBytes
  }

  /** Marks slot `s` filled with `length` bytes of plaintext. */
  ready(s: number, length: number): void {
    this.loading[s] = 0
    this.length[s] = length
  }

  /** Frees slot `s` (its load failed, or its chunk is gone). */
  release(s: number): void {
    const k = this.keyOf[s]
    if (k !== undefined) this.index.delete(k)
    this.keyOf[s] = undefined
    this.loading[s] = 0
    this.isSpent[s] = 0
    this.free.push(s)
  }

  /** Stores `plain` as chunk `key` (a chunk opened or written on this thread); false when no slot is free. */
  put(key: string, plain: Uint8Array): boolean {
    const s = this.reserve(key)
    if (s === undefined) return false
    copyBytes(this.bytes, this.offsetOf(s), plain.subarray(0, this.slotBytes))
    this.ready(s, Math.min(plain.length, this.slotBytes))
    return true
  }

  /**
   * Copies bytes `[from, to)` of chunk `key` into `dest` at `at` (zeros past the chunk's
   * length) and marks it recently used; false, copying nothing, when the chunk is not in a
   * ready slot.
   */
  copy(key: string, from: number, to: number, dest: Uint8Array, at: number): boolean {
    const s = this.index.get(key)
    if (s === undefined || this.loading[s] !== 0) return false
    this.index.delete(key)
    this.index.set(key, s)
    this.isSpent[s] = 0
    const len = this.length[s]!
    if (from < len) copyBytes(dest, at, this.bytes.subarray(this.offsetOf(s) + from, this.offsetOf(s) + Math.min(to, len)))
    if (to > len) dest.fill(0, at + Math.max(0, len - from), at + to - from)
    return true
  }

  /** The plaintext length of ready chunk `key`, or undefined. */
  lengthOf(key: string): number | undefined {
    const s = this.index.get(key)
    return s === undefined || this.loading[s] !== 0 ? undefined : this.length[s]
  }

  /** Forgets every chunk. */
  clear(): void {
    for (const s of this.index.values()) if (this.loading[s] === 0) this.release(s)
  }
}

/**
 * Slots where written chunks wait to be sealed by the chunk worker and then for their block:
 * each holds a chunk's plaintext and, beside it, its sealed form. A slot is taken when a
 * chunk is sealed and given back once its block is encoded.
 */
export class SealSlots {
  readonly sab: SharedArrayBuffer
  readonly bytes: Buffer
  private readonly stride: number
  private readonly free: number[] = []

  constructor(
    slots: number,
    readonly chunkSize: number,
    overhead: number,
  ) {
    this.stride = Math.ceil((2 * chunkSize + overhead) / 64) * 64
    this.sab = new SharedArrayBuffer(slots * this.stride)
    this.bytes = Buffer.from(this.sab)
    for (let i = slots - 1; i >= 0; i--) this.free.push(i)
  }

  /** A free slot, or undefined when all wait for their blocks. */
  take(): number | undefined {
    return this.free.pop()
  }

  /** Gives slot `s` back. */
  give(s: number): void {
    this.free.push(s)
  }

  /** Offset of slot `s`'s plaintext in the slab. */
  plainAt(s: number): number {
    return s * this.stride
  }

  /** Offset of slot `s`'s sealed bytes in the slab. */
  sealedAt(s: number): number {
    return s * this.stride + this.chunkSize
  }
}
