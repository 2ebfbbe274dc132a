/**
 * Linux errno numbers for the codes FacetFS uses, keyed by code.
 */
export const ERRNO = {
  /** Operation not permitted. */
  EPERM: 1,
  /** No such file or directory. */
  ENOENT: 2,
  /** Interrupted system call. */
  EINTR: 4,
  /** I/O error. */
  EIO: 5,
  /** No such device or address. */
  ENXIO: 6,
  /** Argument list too long. */
  E2BIG: 7,
  /** Bad file descriptor. */
  EBADF: 9,
  /** Resource temporarily unavailable. */
  EAGAIN: 11,
  /** Not enough memory. */
  ENOMEM: 12,
  /** Permission denied. */
  EACCES: 13,
  /** Resource busy or locked. */
  EBUSY: 16,
  /** File already exists. */
  EEXIST: 17,
  /** Cross-device link not permitted. */
  EXDEV: 18,
  /** Not a directory. */
  ENOTDIR: 20,
  /** Illegal operation on a directory. */
  EISDIR: 21,
  /** Invalid argument. */
  EINVAL: 22,
  /** Too many open files. */
  EMFILE: 24,
  /** File too large. */
  EFBIG: 27,
  /** No space left on device. */
  ENOSPC: 28,
  /** Read-only file system. */
  EROFS: 30,
  /** Too many links. */
  EMLINK: 31,
  /** Result out of range. */
  ERANGE: 34,
  /** Name too long. */
  ENAMETOOLONG: 36,
  /** No locks available. */
  ENOLCK: 37,
  /** Function not implemented. */
  ENOSYS: 38,
  /** Directory not empty. */
  ENOTEMPTY: 39,
  /** Too many symbolic links encountered. */
  ELOOP: 40,
  /** No data available. */
  ENODATA: 61,
  /** Illegal byte sequence. */
  EILSEQ: 84,
  /** Operation not supported. */
  EOPNOTSUPP: 95,
  /** Operation timed out. */
  ETIMEDOUT: 110,
  /** Operation canceled. */
  ECANCELED: 125,
} as const

/** An errno code FacetFS can raise, such as `'ENOENT'`. */
export type ErrnoCode = keyof typeof ERRNO

const DESCRIPTIONS: Record<ErrnoCode, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EINTR: 'interrupted system call',
  EIO: 'i/o error',
  ENXIO: 'no such device or address',
  E2BIG: 'argument list too long',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'not enough memory',
  EACCES: 'permission denied',
  EBUSY: 'resource busy or locked',
  EEXIST: 'file already exists',
  EXDEV: 'cross-device link not permitted',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  EINVAL: 'invalid argument',
  EMFILE: 'too many open files',
  EFBIG: 'file too large',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EMLINK: 'too many links',
  ERANGE: 'result out of range',
  ENAMETOOLONG: 'name too long',
  ENOLCK: 'no locks available',
  ENOSYS: 'function not implemented',
  ENOTEMPTY: 'directory not empty',
  ELOOP: 'too many symbolic links encountered',
  ENODATA: 'no data available',
  EILSEQ: 'illegal byte sequence',
  EOPNOTSUPP: 'operation not supported',
  ETIMEDOUT: 'operation timed out',
  ECANCELED: 'operation canceled',
}

/** Returns true when `code` is an errno code FacetFS knows. */
export function isErrnoCode(code: unknown): code is ErrnoCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERRNO, code)
}

/**
 * Codes that answer a question rather than report a fault (a name that is not there, an
 * attribute not set, a name taken): every `create` asks the first, every first write the
 * second. Their errors carry no stack trace.
 */
const ANSWERS: ReadonlySet<ErrnoCode> = new Set(['ENOENT', 'ENODATA', 'EEXIST'])

/**
 * A filesystem error shaped like Node's own: `ENOENT: no such file or directory, stat '/x'`.
 *
 * Mounts throw it through {@link vfsError} with only a code and an optional detail; the
 * router adds the syscall and the full path before it reaches a front door.
 */
export class VfsError extends Error {
  /** Always `'VfsError'`: how {@link isVfsError} knows one made by another copy of this module. */
  override readonly name = 'VfsError'
  /** The errno code, e.g. `'ENOENT'`. */
  readonly code: ErrnoCode
  /** The positive Linux errno number, e.g. `2`. */
  readonly errno: number
  /** A human-readable reason beyond the code, e.g. `'title: expected string'`. */
  readonly detail: string | undefined
  /** The operation that failed, e.g. `'open'`; set by the router. */
  syscall: string | undefined
  /** The full VFS path the operation was on; set by the router. */
  path: string | undefined
  /** The second path of a two-path operation (rename, symlink). */
  dest: string | undefined

  constructor(code: ErrnoCode, detail?: string, syscall?: string, path?: string) {
    // an answer, not a fault: no stack (capturing one is most of the cost of a negative lookup)
    const limit = Error.stackTraceLimit
    if (ANSWERS.has(code)) Error.stackTraceLimit = 0
    super('')
    Error.stackTraceLimit = limit
    this.code = code
    this.errno = ERRNO[code]
    this.detail = detail
    this.syscall = syscall
    this.path = path
    this.dest = undefined
    this.message = this.format()
  }

  /** Fills in the syscall and path when a mount did not, and returns this error. */
  at(syscall: string, path: string, dest?: string): this {
    this.syscall ??= syscall
    this.path ??= path
    this.dest ??= dest
    this.message = this.format()
    return this
  }

  private format(): string {
    let text = `${this.code}: ${DESCRIPTIONS[this.code]}`
    if (this.detail) text += ` (${this.detail})`
    if (this.syscall) text += `, ${this.syscall}`
    if (this.path !== undefined) text += ` '${this.path}'`
    if (this.dest !== undefined) text += ` -> '${this.dest}'`
    return text
  }
}

/** Makes a bare {@link VfsError} for a mount to throw; the router adds path and syscall. */
export function vfsError(code: ErrnoCode, detail?: string): VfsError {
  return new VfsError(code, detail)
}

/** Returns true when `err` is a {@link VfsError}, optionally of the given code. */
export function isVfsError(err: unknown, code?: ErrnoCode): err is VfsError {
  return (err instanceof VfsError || isForeignVfsError(err)) && (code === undefined || err.code === code)
}

/**
 * True for a `VfsError` made by another copy of this module, as a plugin loaded in a
 * fresh module graph (`facet dev` reloading) throws: same name, a known code.
 */
function isForeignVfsError(err: unknown): err is VfsError {
  return err instanceof Error && err.name === 'VfsError' && isErrnoCode((err as { code?: unknown }).code)
}

/** Receives unexpected errors, which the router turns into `EIO`. */
export type ErrorReporter = (err: unknown, syscall: string, path: string) => void

/**
 * Turns anything thrown by a mount into a {@link VfsError} for `syscall` on `path`.
 *
 * A `VfsError` keeps its code; a Node system error with a known code (from a host
 * folder, say) keeps it too; any other error becomes `EIO` and is passed to `report`
 * with its stack, so its text never reaches a remote caller.
 */
export function toVfsError(
  err: unknown,
  syscall: string,
  path: string,
  report?: ErrorReporter,
): VfsError {
  if (err instanceof VfsError) return err.at(syscall, path)
  if (isForeignVfsError(err)) return new VfsError(err.code, err.detail).at(syscall, path)
  const code = (err as { code?: unknown } | null)?.code
  if (isErrnoCode(code) && err instanceof Error && 'syscall' in err) {
    return new VfsError(code, undefined, syscall, path)
  }
  report?.(err, syscall, path)
  return new VfsError('EIO', undefined, syscall, path)
}
