import type { PGlite } from '@electric-sql/pglite'
import { createHash } from 'node:crypto'
import pg from 'pg'
import type { Logger } from '../../src/vfs/log.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { isVfsError, type VfsError } from '../../src/vfs/errors.ts'
import { isConnectionError, toSqlVfsError, type SqlOp } from './errors.ts'

/** One cell as the database returns it to FacetFS: always text (or NULL); `codec.ts` turns it into a record value. */
export type Cell = string | null

/** Something that runs SQL: a source, or the transaction handed to {@link SqlSource.transaction}. */
export interface Queryable {
  /**
   * Runs one statement with text parameters; rows come back as arrays of text cells, in
   * select-list order. `prepare` keeps the statement parsed and planned on each
   * connection (for hot, fixed statements such as a get by key); PGlite ignores it.
   * `write` marks a statement that changes rows, for the errors that mean something
   * else on a read (see `SQLSTATE_ERRNOS`).
   */
  query(text: string, params?: readonly Cell[], options?: QueryOptions): Promise<{
    /** The rows returned, each an array of text cells in select-list order. */
    rows: Cell[][]
    /** The rows the statement returned, or for `INSERT`, `UPDATE` and `DELETE`, the rows it changed. */
    rowCount: number
  }>
}

/** Options of one {@link Queryable.query}. */
export interface QueryOptions {
  /** Keep the statement prepared on each connection. @default false */
  prepare?: boolean
  /** The statement writes rows. @default false */
  write?: boolean
}

/**
 * Converts a database error for the caller and logs it when it is `EIO`: a lost
 * connection as a warning, anything else (a fault, or a FacetFS bug) as an error with
 * the statement.
 */
function failure(err: unknown, logger: Logger, text: string, op: SqlOp): VfsError {
  if (isVfsError(err)) return err
  const e = toSqlVfsError(err, op)
  if (e.code === 'EIO') {
    if (isConnectionError(e)) logger.warn({ err: e.detail }, 'sql: database connection lost')
    else logger.error({ err: e.detail, sqlstate: (err as { code?: unknown } | null)?.code, statement: text }, 'sql: database error')
  }
  return e
}

/**
 * A PostgreSQL database as the SQL plugin sees it, whether a server reached through a
 * `pg` pool or an embedded PGlite. Every cell is text: type conversion happens in one
 * place (`codec.ts`), so both implementations round-trip the same way.
 *
 * Errors are {@link VfsError}s by SQLSTATE (see
 * `SQLSTATE_ERRNOS` in `errors.ts`): constraint violations `EEXIST`/`EINVAL`, a lost
 * connection `EIO` (logged).
 */
export interface SqlSource extends Queryable {
  /** `'pg'` for a server, `'pglite'` for the embedded database. */
  readonly kind: 'pg' | 'pglite'
  /** Runs `fn` inside one transaction on one connection; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: { readOnly?: boolean }): Promise<T>
  /**
   * Listens on a NOTIFY channel. `onReconnect` is called after the listening connection
   * was lost and re-established (notifications in between may be missed). Returns a stop function.
   */
  listen(channel: string, onMessage: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>
  /** Closes what the source opened; a PGlite handed in by the caller stays open. */
  close(): Promise<void>
}

/**
 * Session settings every connection opened by FacetFS uses, so text renderings that depend
 * on them (floats, intervals, arrays of dates) are the same on every connection.
 */
export const SESSION_SETTINGS: Readonly<Record<string, string>> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO, YMD',
  IntervalStyle: 'iso_8601',
  extra_float_digits: '1',
  bytea_output: 'hex',
}

/** Every type parsed as its own text: installed on each pool FacetFS creates, never on `pg.types`. */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value }

/** Options for {@link createPgSource}. */
export interface PgSourceOptions {
  /** A `postgres://` connection string. */
  url?: string
  /** Other `pg.Pool` settings (host, user, database, ssl…); `types` and `options` are FacetFS's own. */
  pool?: Omit<pg.PoolConfig, 'types' | 'options'>
  /** Most connections in the pool. @default 4 */
  max?: number
  /** Where connection losses are logged. @default silentLogger */
  logger?: Logger
  /** Delay before the listening connection reconnects, in ms. @default 250 */
  reconnectDelayMs?: number
}

/**
 * Opens a {@link SqlSource} on a PostgreSQL server through its own `pg.Pool`. The pool
 * parses every type as text (set on this pool only) and starts each session with
 * {@link SESSION_SETTINGS}. A connection the server drops is discarded and replaced on
 * the next query; the query that was using it fails with `EIO`.
 */
export function createPgSource(options: PgSourceOptions): SqlSource {
  const logger = options.logger ?? silentLogger
  const startup = Object.entries(SESSION_SETTINGS)
    .map(([k, v]) => `-c ${k}=${v.replace(/([ ,\\])/g, '\\$1')}`)
    .join(' ')
  const config: pg.PoolConfig = {
    ...options.pool,
    ...(options.url ? { connectionString: options.url } : {}),
    max: options.max ?? options.pool?.max ?? 4,
    application_name: options.pool?.application_name ?? 'facetfs',
    types: TEXT_TYPES,
    options: startup,
  }
  const pool = new pg.Pool(config)
  // An idle client whose backend went away emits here; the pool drops it and connects anew later.
  pool.on('error', err => logger.warn({ err: err.message }, 'sql: idle database connection lost'))
  const listeners = new Set<pg.Client>()
  let closed = false

  const names = new Map<string, string>()
  const nameOf = (text: string): string => {
    let name = names.get(text)
    if (!name) {
      name = 'facet_' + createHash('sha1').update(text).digest('hex').slice(0, 20)
      names.set(text, name)
    }
    return name
  }
  const run = async (client: pg.Pool | pg.PoolClient | pg.Client, text: string, params?: readonly Cell[], opts?: QueryOptions) => {
    try {
      const r = await client.query({ text, values: params as unknown[] | undefined, rowMode: 'array', ...(opts?.prepare ? { name: nameOf(text) } : {}) })
      return { rows: r.rows as Cell[][], rowCount: r.rowCount ?? 0 }
    } catch (err) {
      throw failure(err, logger, text, opts?.write ? 'write' : 'read')
    }
  }

  return {
    kind: 'pg',
    query: (text, params, opts) => run(pool, text, params, opts),
    async transaction(fn, opts) {
      let client: pg.PoolClient
      try {
        client = await pool.connect()
      } catch (err) {
        throw failure(err, logger, 'connect', 'read')
      }
      let broken: unknown
      // A backend terminated between two statements errors the idle client; keep that from crashing the process.
      const onError = (err: Error) => {
        broken = err
        logger.warn({ err: err.message }, 'sql: database connection lost inside a transaction')
      }
      client.on('error', onError)
      try {
        await run(client, opts?.readOnly ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN')
        const result = await fn({ query: (text, params, o) => run(client, text, params, o) })
        await run(client, 'COMMIT')
        return result
      } catch (err) {
        try {
          await client.query('ROLLBACK')
        } catch (rollbackErr) {
          broken = rollbackErr
        }
        throw err
      } finally {
        client.off('error', onError)
        client.release(broken instanceof Error ? broken : undefined)
      }
    },
    async listen(channel, onMessage, onReconnect) {
      let client: pg.Client | undefined
      let stopped = false
      const connect = async (): Promise<void> => {
        const c = new pg.Client({ ...config, types: TEXT_TYPES })
        c.on('error', err => {
          logger.warn({ err: err.message, channel }, 'sql: listening connection lost; reconnecting')
          listeners.delete(c)
          c.end().catch(() => {})
          if (client === c) client = undefined
          if (!stopped && !closed) setTimeout(reconnect, options.reconnectDelayMs ?? 250)
        })
        c.on('notification', msg => {
          if (msg.channel === channel) onMessage(msg.payload ?? '')
        })
        await c.connect()
        await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
        listeners.add(c)
        client = c
      }
      const reconnect = (): void => {
        if (stopped || closed) return
        connect().then(
          () => onReconnect?.(),
          err => {
            logger.warn({ err: (err as Error).message, channel }, 'sql: reconnecting the listener failed; retrying')
            setTimeout(reconnect, options.reconnectDelayMs ?? 250)
          },
        )
      }
      try {
        await connect()
      } catch (err) {
        throw failure(err, logger, `LISTEN ${channel}`, 'read')
      }
      return async () => {
        stopped = true
        const c = client
        client = undefined
        if (c) {
          listeners.delete(c)
          await c.end().catch(() => {})
        }
      }
    },
    async close() {
      closed = true
      await Promise.all([...listeners].map(c => c.end().catch(() => {})))
      listeners.clear()
      await pool.end()
    },
  }
}

/** Options for {@link createPgliteSource}. */
export interface PgliteSourceOptions {
  /** Close the PGlite instance when the source closes. @default false (the caller owns it) */
  owned?: boolean
  /** Where database errors that become `EIO` are logged. @default silentLogger */
  logger?: Logger
}

/**
 * Wraps an embedded PGlite database as a {@link SqlSource}. PGlite has one session, so
 * {@link SESSION_SETTINGS} are applied to it once, here; queries run one at a time.
 */
export async function createPgliteSource(db: PGlite, options: PgliteSourceOptions = {}): Promise<SqlSource> {
  await db.waitReady
  await db.exec(
    Object.entries(SESSION_SETTINGS)
      .map(([k, v]) => `SET ${k} = '${v}';`)
      .join('\n'),
  )
  // PGlite merges per-query parsers over its own by key, so name every type it would parse; unknown types stay text anyway.
  let textParsers: Record<number, (v: string) => unknown> = {}
  let known = -1
  const parsers = () => {
    const keys = Object.keys(db.parsers)
    if (keys.length !== known) {
      known = keys.length
      textParsers = Object.fromEntries(keys.map(k => [k, (value: string) => value]))
    }
    return textParsers
  }
  const logger = options.logger ?? silentLogger
  const run = async (q: Pick<PGlite, 'query'>, text: string, params?: readonly Cell[], opts?: QueryOptions) => {
    try {
      const r = await q.query<Cell[]>(text, params as unknown[] | undefined, { rowMode: 'array', parsers: parsers() })
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length }
    } catch (err) {
      throw failure(err, logger, text, opts?.write ? 'write' : 'read')
    }
  }
  return {
    kind: 'pglite',
    query: (text, params, opts) => run(db, text, params, opts),
    async transaction(fn, opts) {
      try {
        return await db.transaction(async tx => {
          if (opts?.readOnly) await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY')
          return fn({ query: (text, params, o) => run(tx, text, params, o) })
        })
      } catch (err) {
        throw failure(err, logger, 'transaction', 'read')
      }
    },
    async listen(channel, onMessage) {
      const unlisten = await db.listen(channel, onMessage)
      return async () => {
        await unlisten()
      }
    },
    async close() {
      if (options.owned) await db.close()
    },
  }
}
