import { vfsError } from './errors.ts'

/** The longest file name, in UTF-8 bytes, that any FacetFS mount accepts. */
export const NAME_MAX = 255
/**
 * The longest path, in UTF-8 bytes, that FacetFS accepts. The kernel limits each system
 * call's path to 4096 bytes relative to the caller's working folder, so a tree reached
 * through FUSE holds deeper paths than that; this bound only keeps a path in memory.
 */
export const PATH_MAX = 1 << 20

/**
 * Normalises a VFS path to its absolute form: `'a//b/./c/'` → `'/a/b/c'`.
 *
 * Throws `EINVAL` for a NUL byte, a non-string or `..` above the root, `EILSEQ` for a
 * name that is not valid UTF-8 (FUSE hands such bytes over as U+FFFD, which would merge
 * distinct names), and `ENAMETOOLONG` for a name over 255 bytes.
 */
export function normalize(path: string): string {
  return isNormal(path) ? path : '/' + split(path).join('/')
}

/**
 * True when `path` is already in normal form and within limits, so the hot path
 * (every FUSE call brings such a path) needs no split and join.
 */
function isNormal(path: string): boolean {
  if (typeof path !== 'string' || path.charCodeAt(0) !== 47) return false
  const n = path.length
  if (n === 1) return true
  if (n * 3 > PATH_MAX || path.charCodeAt(n - 1) === 47) return false
  let start = 1
  for (let i = 1; i <= n; i++) {
    const c = i < n ? path.charCodeAt(i) : 47
    if (c === 0 || c === 0xfffd || (c >= 0xd800 && c <= 0xdfff)) return false
    if (c !== 47) continue
    const len = i - start
    if (len === 0 || len * 3 > NAME_MAX) return false
    if (path.charCodeAt(start) === 46 && (len === 1 || (len === 2 && path.charCodeAt(start + 1) === 46))) return false
    start = i + 1
  }
  return true
}

/** Splits a path into its normalised names: `'/a/b'` → `['a', 'b']`, `'/'` → `[]`. */
export function split(path: string): string[] {
  if (typeof path !== 'string') throw vfsError('EINVAL', 'path must be a string')
  if (path.includes('\0')) throw vfsError('EINVAL', 'path contains a NUL byte')
  if (Buffer.byteLength(path) > PATH_MAX) throw vfsError('ENAMETOOLONG', `path over ${PATH_MAX} bytes`)
  const names: string[] = []
  for (const name of path.split('/')) {
    if (name === '' || name === '.') continue
    if (name === '..') {
      if (names.length === 0) throw vfsError('EINVAL', "'..' leads above the root")
      names.pop()
      continue
    }
    checkName(name)
    names.push(name)
  }
  return names
}

/**
 * Checks one file name: not empty, no `/` or NUL, not `.` or `..`, at most 255 bytes.
 * Throws `EINVAL` or `ENAMETOOLONG` with the reason.
 */
export function checkName(name: string): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..') {
    throw vfsError('EINVAL', `invalid file name '${String(name)}'`)
  }
  if (name.includes('/')) throw vfsError('EINVAL', `file name contains '/': '${name}'`)
  if (name.includes('\0')) throw vfsError('EINVAL', 'file name contains a NUL byte')
  if (!name.isWellFormed() || name.includes('\uFFFD')) throw vfsError('EILSEQ', 'file names must be valid UTF-8')
  if (name.length > NAME_MAX / 4 && Buffer.byteLength(name) > NAME_MAX) {
    throw vfsError('ENAMETOOLONG', `file name over ${NAME_MAX} bytes`)
  }
  return name
}

/** Joins paths and names and normalises the result: `join('/a', 'b/c')` → `'/a/b/c'`. */
export function join(...parts: string[]): string {
  return normalize(parts.join('/'))
}

/** The parent of a normalised path: `'/a/b'` → `'/a'`, `'/'` → `'/'`. */
export function dirname(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

/** The last name of a normalised path: `'/a/b'` → `'b'`, `'/'` → `''`. */
export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

/** True when normalised `path` is `prefix` or lies below it. */
export function isWithin(path: string, prefix: string): boolean {
  if (prefix === '/') return true
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47)
}
