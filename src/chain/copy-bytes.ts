const fill = Buffer.prototype.fill

/**
 * Copies `bytes` into `dest` at `at`, fast where either lies in shared memory (the chunk
 * cache slab, the seal slots): Buffer#fill with a value as long as the range is a plain
 * memcpy in Node's C++, where TypedArray#set and Buffer#copy take V8's relaxed-atomic
 * memmove for a SharedArrayBuffer, several times slower on a cold 256 MiB stream.
 */
export function copyBytes(dest: Uint8Array, at: number, bytes: Uint8Array): void {
  if (bytes.length > 0) fill.call(dest, bytes, at, at + bytes.length)
}
