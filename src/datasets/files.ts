import { open } from 'node:fs/promises'
import type { Chunker } from './cdc.ts'

/** Bytes read from a file per read call while cutting it. */
const READ_BYTES = 8 * 1024 * 1024

/**
 * Reads the file at `path` and yields its content-defined chunks in order. Each chunk is
 * a view of a buffer that is never reused, so a caller may keep it.
 */
export async function* fileChunks(path: string, chunker: Chunker): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r')
  try {
    let buf = Buffer.allocUnsafe(READ_BYTES)
    let start = 0
    let end = 0
    let eof = false
    for (;;) {
      if (!eof && end - start < chunker.options.max) {
        const next = Buffer.allocUnsafe(Math.max(READ_BYTES, end - start + chunker.options.max))
        buf.copy(next, 0, start, end)
        end -= start
        start = 0
        buf = next
        while (!eof && end < buf.length) {
          const { bytesRead } = await fh.read(buf, end, buf.length - end, null)
          if (bytesRead === 0) eof = true
          end += bytesRead
        }
      }
      const n = chunker.cut(buf, start, end, eof)
      if (n === 0) {
        if (eof) return
        continue
      }
      yield buf.subarray(start, start + n)
      start += n
    }
  } finally {
    await fh.close()
  }
}
