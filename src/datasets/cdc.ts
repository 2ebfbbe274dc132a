import { sha256 } from '../crypto/primitives.ts'

/** Chunk sizes for {@link createChunker}. Changing any of them changes every cut point, so a store keeps one set. */
export interface CdcOptions {
  /** No cut before this many bytes. @default 16384 */
  min?: number
  /** The size cuts centre on; a power of two. @default 65536 */
  avg?: number
  /** A cut at this many bytes at the latest. @default 262144 */
  max?: number
}

/** The sizes a dataset store cuts with: 16 KiB, 64 KiB average, 256 KiB. */
export const DEFAULT_CDC: Required<CdcOptions> = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 }

/** The gear table: 256 fixed 32-bit values, derived from a constant so every build cuts the same way. */
const GEAR: Int32Array = (() => {
  const t = new Int32Array(256)
  for (let i = 0; i < 256; i += 8) {
    const h = sha256(Buffer.from(`facet-dataset-gear/1:${i}`))
    for (let j = 0; j < 8; j++) t[i + j] = h.readInt32LE(j * 4)
  }
  return t
})()

/** A mask of the top `bits` bits of a 32-bit word (the gear hash's best-mixed bits). */
function topBits(bits: number): number {
  return (~0 << (32 - bits)) | 0
}

/** Finds content-defined cut points: FastCDC (gear rolling hash, normalized chunking, level 2). */
export interface Chunker {
  /**
   * The length of the next chunk of `buf[start, end)`: a content-defined cut, or `max`, or
   * (when `final`) all that is left. Returns 0 when not final and fewer than `max` bytes remain:
   * read more first.
   */
  cut(buf: Uint8Array, start: number, end: number, final: boolean): number
  readonly options: Required<CdcOptions>
}

/** Makes a FastCDC chunker with the given sizes. */
export function createChunker(options: CdcOptions = {}): Chunker {
  const o = { ...DEFAULT_CDC, ...options }
  const bits = Math.round(Math.log2(o.avg))
  if (2 ** bits !== o.avg || o.min >= o.avg || o.avg >= o.max) throw new RangeError('chunk sizes need min < avg < max, avg a power of two')
  const maskS = topBits(bits + 2)
  const maskL = topBits(bits - 2)
  const gear = GEAR
  return {
    options: o,
    cut(buf, start, end, final) {
      const left = end - start
      if (left <= 0) return 0
      if (left < o.max && !final) return 0
      if (left <= o.min) return left
      const stop = start + Math.min(left, o.max)
      const normal = Math.min(start + o.avg, stop)
      let h = 0
      let i = start + o.min
      for (; i < normal; i++) {
        h = ((h << 1) + gear[buf[i]!]!) | 0
        if ((h & maskS) === 0) return i + 1 - start
      }
      for (; i < stop; i++) {
        h = ((h << 1) + gear[buf[i]!]!) | 0
        if ((h & maskL) === 0) return i + 1 - start
      }
      return stop - start
    },
  }
}

/** Cuts a whole buffer into chunk lengths. */
export function cutAll(chunker: Chunker, buf: Uint8Array): number[] {
  const lengths: number[] = []
  for (let at = 0; at < buf.length; ) {
    const n = chunker.cut(buf, at, buf.length, true)
    lengths.push(n)
    at += n
  }
  return lengths
}
