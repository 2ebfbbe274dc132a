/**
 * Size classes that hide exact lengths inside sealed data: a sealed chunk or record shows
 * only the class its length falls in, never the length.
 */

/** The smallest class of a content chunk. */
export const MIN_CHUNK_CLASS = 512

/** Above this, content classes are whole multiples of it (a disk block); at or below, powers of two from {@link MIN_CHUNK_CLASS}. */
export const CHUNK_CLASS_STEP = 4096

/** The smallest class of a sealed record (metadata, link, extended attributes): 512 B, 1 KiB, 2 KiB … */
export const MIN_RECORD_CLASS = 512

/** The next power-of-two multiple of `min` at or above `n`. */
export function powerClass(n: number, min: number): number {
  let c = min
  while (c < n) c *= 2
  return c
}

/**
 * The size class of a content chunk of `n` bytes: 512 B, 1 KiB, 2 KiB or 4 KiB up to 4 KiB,
 * then the next multiple of 4 KiB, and never more than `chunkSize` (a full chunk is its own class).
 */
export function chunkClass(n: number, chunkSize: number): number {
  if (n >= chunkSize) return n
  const c = n <= CHUNK_CLASS_STEP ? powerClass(n, MIN_CHUNK_CLASS) : Math.ceil(n / CHUNK_CLASS_STEP) * CHUNK_CLASS_STEP
  return Math.min(c, chunkSize)
}

/** The JSON text `json` as bytes, padded with spaces (which JSON ignores) to the next power of two from {@link MIN_RECORD_CLASS}. */
export function padRecord(json: string): Buffer {
  const bytes = Buffer.byteLength(json)
  const out = Buffer.alloc(powerClass(bytes, MIN_RECORD_CLASS), 0x20)
  out.write(json, 0, 'utf8')
  return out
}
