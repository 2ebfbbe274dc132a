/** How many buffers of written blocks are kept for the next blocks. */
const MAX_SPARE_BODIES = 3
/** Blocks this big or bigger are encoded into shared memory (a multiple of it). */
export const SHARED_BODY_BYTES = 1024 * 1024

/**
 * The buffers blocks are encoded into, kept once their block is written for the next
 * blocks: a stream of big blocks allocates none after the first few. `largest` is the
 * biggest block back-pressure lets through.
 */
export class BodyBuffers {
  private readonly spare: Buffer[] = []

  /** A kept buffer big enough to encode a block of `sizeHint` bytes into, a new shared one for a big block, else undefined. */
  take(sizeHint: number, largest: number): Buffer | undefined {
    const need = sizeHint + 8192
    const i = this.spare.findIndex(b => b.length >= need)
    if (i >= 0) return this.spare.splice(i, 1)[0]
    // a big block goes into shared memory, where the signing thread hashes and checksums it in place
    if (need < SHARED_BODY_BYTES) return undefined
    // room for the biggest block back-pressure lets through, so a few buffers serve every block of a stream
    const bytes = Math.max(need, largest + SHARED_BODY_BYTES)
    return Buffer.from(new SharedArrayBuffer(Math.ceil(bytes / SHARED_BODY_BYTES) * SHARED_BODY_BYTES))
  }

  /** Keeps the buffer of a block that is on disk ({@link MAX_SPARE_BODIES} at most, none bigger than `largest` needs). */
  give(body: Buffer, largest: number): void {
    // only a buffer of its own (small ones may share Node's allocation pool)
    if (body.byteOffset !== 0 || body.buffer.byteLength < 1024 * 1024) return
    if (body.buffer.byteLength <= largest + SHARED_BODY_BYTES && this.spare.length < MAX_SPARE_BODIES) this.spare.push(Buffer.from(body.buffer))
  }
}
