import type pg from 'pg'
import { silentLogger, type Logger } from '../vfs/log.ts'

/** How long one statement, or getting a connection, may take before the call counts the connection dead, in ms. */
export const PG_CALL_TIMEOUT_MS = 10_000
/**
 * How long a read keeps retrying a lost connection before it fails (EIO): a server restart
 * of a few seconds goes unseen, and a page read the kernel tries twice still fails within 10 s.
 */
export const PG_READ_RETRY_MS = 5_000

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN', '57P01', '57P02', '57P03', '53300'])
const TRANSIENT_MESSAGES = [/connection terminated/i, /query read timeout/i, /timeout exceeded when trying to connect/i, /not queryable/i, /connection (?:is )?(?:closed|lost)/i]

/**
 * True when `err` says the connection failed rather than the statement: the server went
 * away (restart, `admin_shutdown` 57P01, `cannot_connect_now` 57P03, SQLSTATE class 08),
 * the network did (ECONNREFUSED, ECONNRESET, ETIMEDOUT…), or a statement or connect timed
 * out. The same statement may succeed on a new connection.
 */
export function isTransientPgError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] } | undefined
  if (!e) return false
  if (typeof e.code === 'string' && (TRANSIENT_CODES.has(e.code) || e.code.startsWith('08'))) return true
  // node's connect over several addresses throws an AggregateError of the attempts
  if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(isTransientPgError)) return true
  return typeof e.message === 'string' && TRANSIENT_MESSAGES.some(m => m.test(e.message as string))
}

/** Options for {@link retryTransient}. */
export interface RetryOptions {
  /** Gives up (rethrowing the last error) once this many ms have passed since the first try. @default Infinity */
  forMs?: number
  /** Stops retrying when aborted (rethrowing the last error). */
  signal?: AbortSignal
  /** What is retried, for the log. */
  what: string
  /** @default silentLogger */
  logger?: Logger
}

/**
 * Runs `attempt` until it resolves, throws an error that {@link isTransientPgError} does not
 * count transient, `forMs` pass, or `signal` aborts; waits 100 ms before the first retry,
 * doubling to 2 s.
 */
export async function retryTransient<T>(attempt: (tries: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const logger = options.logger ?? silentLogger
  const until = Date.now() + (options.forMs ?? Infinity)
  let delay = 100
  for (let tries = 0; ; tries++) {
    try {
      return await attempt(tries)
    } catch (err) {
      if (!isTransientPgError(err) || options.signal?.aborted || Date.now() + delay > until) throw err
      if (tries === 0) logger.warn({ err: (err as Error).message }, `PostgreSQL unreachable while ${options.what}; retrying`)
      await new Promise<void>(done => {
        const t = setTimeout(done, delay)
        options.signal?.addEventListener('abort', () => (clearTimeout(t), done()), { once: true })
      })
      delay = Math.min(delay * 2, 2000)
    }
  }
}

/** A pool connection, or an error counted transient when none comes within `ms` (one that comes later goes back to the pool). */
export function connectWithin(pool: pg.Pool, ms: number = PG_CALL_TIMEOUT_MS): Promise<pg.PoolClient> {
  const connecting = pool.connect()
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      fail(Object.assign(new Error(`timeout exceeded when trying to connect (${ms / 1000} s)`), { code: 'ETIMEDOUT' }))
      connecting.then(c => c.release(), () => {})
    }, ms)
    connecting.then(
      c => (clearTimeout(timer), done(c)),
      err => (clearTimeout(timer), fail(err)),
    )
  })
}

/** Runs `text` on `client`, failing (a transient error) after `ms`. */
export function queryWithin<R extends pg.QueryResultRow>(client: pg.ClientBase, text: string, values?: unknown[], ms: number = PG_CALL_TIMEOUT_MS): Promise<pg.QueryResult<R>> {
  return client.query<R>({ text, ...(values ? { values } : {}), query_timeout: ms } as pg.QueryConfig)
}

/**
 * Runs a read-only query on a pool connection, retrying a lost connection until `forMs` have
 * passed since the first try, connect and statement included; then the last error is thrown.
 */
export function readWithin<R extends pg.QueryResultRow>(pool: pg.Pool, text: string, values: unknown[], options: Omit<RetryOptions, 'forMs'> & { forMs: number }): Promise<pg.QueryResult<R>> {
  const until = Date.now() + options.forMs
  const left = () => Math.max(500, until - Date.now())
  return retryTransient(async () => {
    const c = await connectWithin(pool, left())
    try {
      const result = await queryWithin<R>(c, text, values, left())
      c.release()
      return result
    } catch (err) {
      // a connection whose statement timed out is in no known state: it is dropped
      c.release(isTransientPgError(err) ? (err as Error) : undefined)
      throw err
    }
  }, options)
}
