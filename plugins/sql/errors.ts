import { isVfsError, vfsError, type ErrnoCode, type VfsError } from '../../src/vfs/errors.ts'

interface DbError {
  code?: unknown
  message?: unknown
  detail?: unknown
  hint?: unknown
  position?: unknown
}

/** Whether a statement read (`SELECT`, a cursor) or wrote (`INSERT`, `UPDATE`, `DELETE`): a few refusals mean different things for each. */
export type SqlOp = 'read' | 'write'

/** One row of {@link SQLSTATE_ERRNOS}. */
export interface SqlStateRule {
  /** A SQLSTATE (`'23505'`) or a two-character class of them (`'23'`). */
  readonly sqlstate: string
  /** The errno, or one for reads and one for writes. */
  readonly errno:
    | ErrnoCode
    | {
        /** The errno when a statement that reads rows fails. */
        readonly read: ErrnoCode
        /** The errno when a statement that writes rows (`write: true`) fails. */
        readonly write: ErrnoCode
      }
  /** Only when the error has no position in the statement: a value's input function refused it, not the statement's syntax. */
  readonly valueOnly?: boolean
  /** What the database means by it. */
  readonly means: string
}

/**
 * How PostgreSQL's refusals become errnos, by SQLSTATE; the first matching row wins. A
 * lost connection (class `08`, `57P01`–`57P03`, a socket error) is `EIO` before this
 * table is consulted; a SQLSTATE no row names is `EIO` too, and logged, since only a
 * fault (or a FacetFS bug) should produce one.
 */
export const SQLSTATE_ERRNOS: readonly SqlStateRule[] = [
  { sqlstate: '23505', errno: 'EEXIST', means: 'unique violation' },
  { sqlstate: '23P01', errno: 'EEXIST', means: 'exclusion violation' },
  { sqlstate: '23', errno: 'EINVAL', means: 'integrity constraint: foreign key, not null, check' },
  { sqlstate: '22', errno: 'EINVAL', means: 'data exception: a value its column refuses (range, length, format)' },
  { sqlstate: '42601', errno: 'EINVAL', valueOnly: true, means: "a value its type's input calls a syntax error (tsvector, tsquery, jsonpath)" },
  { sqlstate: '428C9', errno: 'EINVAL', means: 'a value given for a GENERATED ALWAYS column' },
  { sqlstate: '42501', errno: 'EACCES', means: 'insufficient privilege' },
  { sqlstate: '28', errno: 'EACCES', means: 'invalid authorization' },
  { sqlstate: '40', errno: 'EAGAIN', means: 'serialization failure or deadlock: try again' },
  { sqlstate: '55P03', errno: 'EAGAIN', means: 'lock not available' },
  { sqlstate: '53300', errno: 'EAGAIN', means: 'too many connections' },
  { sqlstate: '57014', errno: 'ECANCELED', means: 'statement cancelled' },
  { sqlstate: '25006', errno: 'EROFS', means: 'read-only transaction (a standby server)' },
  { sqlstate: '0A000', errno: { read: 'EINVAL', write: 'EROFS' }, means: 'feature not supported, e.g. a view column that cannot be updated' },
  { sqlstate: '55000', errno: { read: 'EINVAL', write: 'EROFS' }, means: 'object not in prerequisite state: a view that cannot be updated, a materialized view not populated' },
  { sqlstate: '42809', errno: { read: 'EINVAL', write: 'EROFS' }, means: 'wrong object type, e.g. a write to a materialized view' },
  { sqlstate: '53100', errno: 'ENOSPC', means: 'disk full' },
  { sqlstate: '53200', errno: 'ENOMEM', means: 'out of memory' },
]

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

/** The database's own words: its message, its detail (`Key (email)=(a@b) already exists.`) and its hint. */
function reason(e: DbError): string {
  let text = typeof e.message === 'string' ? e.message : String(e)
  if (typeof e.detail === 'string' && e.detail) text += `: ${e.detail}`
  if (typeof e.hint === 'string' && e.hint) text += ` (hint: ${e.hint})`
  return text
}

/** The row of {@link SQLSTATE_ERRNOS} for an error, if any. */
function ruleOf(e: DbError): SqlStateRule | undefined {
  const code = typeof e.code === 'string' ? e.code : ''
  if (code.length !== 5) return undefined
  return SQLSTATE_ERRNOS.find(r => (r.sqlstate.length === 2 ? code.startsWith(r.sqlstate) : code === r.sqlstate) && !(r.valueOnly && e.position !== undefined))
}

/**
 * Turns an error from `pg` or PGlite into a {@link VfsError} a user can act on, by
 * {@link SQLSTATE_ERRNOS}; the database's message, detail and hint are the error's
 * detail. A dropped or terminated connection is `EIO` ("database connection lost: …",
 * or "database unreachable: …"); so is an error no row of the table names ("database
 * error: …"). `op` says whether the statement wrote, for the rows that differ.
 */
export function toSqlVfsError(err: unknown, op: SqlOp = 'read'): VfsError {
  if (isVfsError(err)) return err
  const e = (err ?? {}) as DbError
  const code = typeof e.code === 'string' ? e.code : ''
  if (isConnectionError(err)) {
    const unreachable = UNREACHABLE.has(code) || code === '57P03'
    return vfsError('EIO', `${unreachable ? 'database unreachable' : 'database connection lost'}: ${reason(e)}; FacetFS reconnects on the next operation`)
  }
  const rule = ruleOf(e)
  if (!rule) return vfsError('EIO', `database error${code ? ` ${code}` : ''}: ${reason(e)}`)
  return vfsError(typeof rule.errno === 'string' ? rule.errno : rule.errno[op], reason(e))
}
