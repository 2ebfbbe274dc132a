import { isVfsError, vfsError, type VfsError } from '../../src/vfs/errors.ts'

interface DbError {
  code?: unknown
  message?: unknown
  detail?: unknown
  hint?: unknown
}

/** Node socket error codes that mean the connection to the database is gone or unreachable. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

/** Returns true when `err` says the database connection was lost or could not be made (the operation may be retried on a new one). */
export function isConnectionError(err: unknown): boolean {
  if (isVfsError(err)) return err.code === 'EIO' && /^database (connection lost|unreachable)/.test(err.detail ?? '')
  const e = err as DbError | null
  const code = typeof e?.code === 'string' ? e.code : ''
  const message = typeof e?.message === 'string' ? e.message : ''
  return (
    SOCKET_CODES.has(code) ||
    code.startsWith('08') ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    /Connection terminated|Client has encountered a connection error|connection timeout|Client was closed/i.test(message)
  )
}

/** The database's own words: its message, then its detail (`Key (email)=(a@b) already exists.`). */
function reason(e: DbError): string {
  const message = typeof e.message === 'string' ? e.message : String(e)
  return typeof e.detail === 'string' && e.detail ? `${message}: ${e.detail}` : message
}

/**
 * Turns an error from `pg` or PGlite into a {@link VfsError} a user can act on; the
 * database's message (and its detail) is kept as the error's detail.
 *
 * - unique and exclusion violations (`23505`, `23P01`) → `EEXIST`
 * - foreign key, not null, check violations and bad values (`23xxx`, `22xxx`) → `EINVAL`
 * - a dropped or terminated connection → `EIO` ("database connection lost: …"); a refused one → `EIO` ("database unreachable: …")
 * - a cancelled statement (`57014`) → `ECANCELED`; lock or serialization conflicts (`40xxx`, `55P03`) → `EAGAIN`
 * - anything else → `EIO` with the database's message
 */
export function toSqlVfsError(err: unknown): VfsError {
  if (isVfsError(err)) return err
  const e = (err ?? {}) as DbError
  const code = typeof e.code === 'string' ? e.code : ''
  if (isConnectionError(err)) {
    const unreachable = UNREACHABLE.has(code) || code === '57P03'
    return vfsError('EIO', `${unreachable ? 'database unreachable' : 'database connection lost'}: ${reason(e)}; FacetFS reconnects on the next operation`)
  }
  if (code === '23505' || code === '23P01') return vfsError('EEXIST', reason(e))
  if (code.startsWith('23') || code.startsWith('22')) return vfsError('EINVAL', reason(e))
  if (code === '57014') return vfsError('ECANCELED', reason(e))
  if (code.startsWith('40') || code === '55P03') return vfsError('EAGAIN', reason(e))
  return vfsError('EIO', `database error: ${reason(e)}`)
}
