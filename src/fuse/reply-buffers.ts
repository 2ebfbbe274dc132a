/** Reads this long or longer are answered from a kept buffer; shorter ones from Node's own buffer pool. */
export const KEPT_REPLY_BYTES = 64 * 1024

/**
 * The buffers big read replies are built in, kept for the next reads. Each read of a
 * sequential stream (up to `max_read`, 1 MiB) would otherwise allocate a buffer of its own
 * outside V8's heap, and that memory drives the collector: a 256 MiB `dd` spent a quarter
 * of the main thread in garbage collection. fuse-napi copies a reply's bytes into memory of
 * its own on the tick after the callback (`process.nextTick`, then read_buf's signal in
 * fuse-native.c), so a buffer is free again once the read into it is done and a tick queued
 * after its answer has run (a call answered ETIMEDOUT may still be reading into it).
 */
export class ReplyBuffers {
  private readonly spare: Buffer[] = []

  /** `keep`: how many free buffers are kept at most (about the FUSE requests in flight at once). */
  constructor(private readonly keep = 16) {}

  /** A buffer of at least `len` bytes (a power of two), kept or new; hand it back with {@link give}. */
  take(len: number): Buffer {
    const i = this.spare.findIndex(b => b.length >= len)
    if (i >= 0) return this.spare.splice(i, 1)[0]!
    return Buffer.allocUnsafeSlow(2 ** Math.ceil(Math.log2(Math.max(len, KEPT_REPLY_BYTES))))
  }

  /** Takes back a buffer from {@link take} once nothing reads or writes it any more. */
  give(buf: Buffer): void {
    if (this.spare.length < this.keep) this.spare.push(buf)
  }

  /** How many free buffers are kept now. */
  get kept(): number {
    return this.spare.length
  }
}
