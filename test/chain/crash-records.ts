/** The i-th record the crash child appends: deterministic, of varying length (some over a chunk). */
export function record(i: number): Buffer {
  const len = i % 11 === 0 ? 70_000 + i : 20 + ((i * 37) % 300)
  const b = Buffer.alloc(len, 97 + (i % 26))
  b.write(`#${i}:`, 0)
  b[len - 1] = 10
  return b
}
