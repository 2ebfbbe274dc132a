import { createHash } from 'node:crypto'
import { encodeKey } from '../../src/views/collection.ts'

/** The most bytes in a file name (Linux `NAME_MAX`). */
export const NAME_BYTES = 255

/**
 * Row file names: how a primary key (one text part per key column, see `keyText`)
 * becomes the collection key of a row, and so its file name, and back.
 *
 * - Within each part, `\`, `,` and `~` are escaped with a backslash (`a\,b`).
 * - The parts of a composite key are joined with `,`: `7,42.json`.
 * - An optional readable label follows an unescaped `~` (`42~Ada Lovelace.json`). It
 *   is trimmed by bytes (never inside a character) so the name fits in 255 bytes, and
 *   it is decoration only: any label, or none, names the same row.
 * - The collection then writes the key as a file name, percent-escaping `%`, `/`, NUL
 *   and a leading `.` (`a%2Fb.json` for the key `a/b`).
 * - The key itself is never trimmed. A key too long for 255 bytes even without a label
 *   is named `<readable prefix>#<base64url SHA-256 of the key>.json`; such a name is
 *   resolved by paging through the keys (see `SqlTable.findByHash`), never by guessing.
 */
const HASHED = /#([A-Za-z0-9_-]{43})$/

function escapePart(part: string): string {
  return part.replace(/[\\,~]/g, '\\$&')
}

/** Joins key parts into the key part of a row name (without label), escaping as described above. */
export function joinKey(parts: readonly string[]): string {
  return parts.map(escapePart).join(',')
}

/** A stable short hash of a key (base64url of SHA-256 over its joined form), used in names of over-long keys. */
export function keyHash(parts: readonly string[]): string {
  return createHash('sha256').update(joinKey(parts)).digest('base64url')
}

/** Cuts `text` to at most `bytes` UTF-8 bytes without splitting a character. */
export function trimBytes(text: string, bytes: number): string {
  if (Buffer.byteLength(text) <= bytes) return text
  let out = ''
  let used = 0
  for (const ch of text) {
    const n = Buffer.byteLength(ch)
    if (used + n > bytes) break
    out += ch
    used += n
  }
  return out
}

const nameBytes = (key: string) => Buffer.byteLength(encodeKey(key))

/**
 * Makes the collection key of a row (its file name without the extension) from its key
 * parts and an optional label, so that the file name stays within 255 bytes with an
 * extension of `extBytes` bytes (including the dot).
 */
export function rowKey(parts: readonly string[], extBytes: number, label?: string | null): string {
  const room = NAME_BYTES - extBytes
  const stem = joinKey(parts)
  if (nameBytes(stem) > room || HASHED.test(stem)) {
    const prefix = trimBytes(stem.replace(/[\\,~#%/\0]/g, '_').replace(/^\./, '_'), room - 44)
    return `${prefix}#${keyHash(parts)}`
  }
  const clean = label == null ? '' : label.replace(/[\x00-\x1f\x7f/]+/g, ' ').trim()
  if (!clean) return stem
  let text = trimBytes(clean, room - nameBytes(stem) - 1)
  while (text && nameBytes(`${stem}~${text}`) > room) text = [...text].slice(0, -1).join('')
  text = text.trimEnd()
  return text ? `${stem}~${text}` : stem
}

/** A row key taken apart: the key parts (and label), or for an over-long key, its hash. */
export type ParsedRowKey =
  | {
      /** The key parts as text, one per key column. */
      parts: string[]
      /** The label after `~`, when the key has one. */
      label?: string
      /** Absent: the key is whole. */
      hash?: undefined
    }
  | {
      /** Absent: the key was too long to keep. */
      parts?: undefined
      /** The hash after `#` that stands for an over-long key (see {@link keyHash}). */
      hash: string
    }

/** Parses a key made by {@link rowKey} back into `count` parts; undefined when it cannot be a key of `count` columns. */
export function parseRowKey(key: string, count: number): ParsedRowKey | undefined {
  const parts: string[] = []
  let part = ''
  let i = 0
  let label: string | undefined
  for (; i < key.length; i++) {
    const ch = key[i]!
    if (ch === '\\') {
      if (i + 1 >= key.length) return undefined
      part += key[++i]
    } else if (ch === ',') {
      parts.push(part)
      part = ''
    } else if (ch === '~') {
      label = key.slice(i + 1)
      break
    } else {
      part += ch
    }
  }
  parts.push(part)
  if (label === undefined && parts.length === 1) {
    const hashed = HASHED.exec(key)
    if (hashed && !key.includes('\\')) return { hash: hashed[1]! }
  }
  if (parts.length !== count) return undefined
  return label === undefined ? { parts } : { parts, label }
}
