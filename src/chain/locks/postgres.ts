import { createHash } from 'node:crypto'
import pg from 'pg'
import { vfsError } from '../../vfs/errors.ts'
import { silentLogger, type Logger } from '../../vfs/log.ts'
import { applyLock, findConflict, sameLocks, type HeldLock, type LockRequest } from '../../vfs/locks/ranges.ts'
import type { LockTable, LockWait } from '../../vfs/locks/table.ts'
import { wakeOrAbort } from '../../vfs/locks/wake.ts'
import { LIVE_NODES, openNodeSession, watchNodeDeath, type ConnectFn, type NodeSession } from './node-session.ts'

/** Options for {@link postgresLockTable}. */
export interface PostgresLockTableOptions {
  /** Runs the short lock transactions. */
  pool: pg.Pool
  /** Makes the node's own connections: its session (see `node-session.ts`) and waits for a dead holder. */
  connect: ConnectFn
  /** The locks table, optionally schema-qualified (`schema.name`); created when missing. */
  table: string
  /** The chain whose files are locked. */
  chainId: Uint8Array
  logger?: Logger
}

/** How long one statement of a lock transaction may take, and a transaction idle, in ms: the bound on a lock call of a node cut off from PostgreSQL (EIO), and on how long such a node can hold up others' calls on one file. */
export const QUERY_TIMEOUT_MS = 10_000

/** One lock row as read back. */
interface Row {
  kind: 'flock' | 'posix'
  mode: 'read' | 'write'
  node: string
  owner: string
  start_at: string
  end_at: string | null
  pid: number
}

/** A waiter on one file: woken on every notice that a lock on it went or shrank. */
interface FileWaiters {
  generation: number
  wakes: Set<() => void>
  /** The waits in progress on the file (each is between tries or waiting). */
  users: number
}

/**
 * A {@link LockTable} in PostgreSQL, shared by every node that mounts the chain: one row
 * per held range `(chain_id, file, kind, node, owner, mode, start_at, end_at, pid)`,
 * `end_at` NULL for "to the end of the file", in an unlogged table (no lock outlives the
 * server's sessions, so nothing of it needs to survive a crash). Each change to one file's locks runs in a
 * transaction that first takes `pg_advisory_xact_lock` on the file, so nodes never race.
 * Rows of a node whose session lock is free are dead: ignored, and deleted by the next
 * change to the file or by a node waiting on them. Unlocks and reaps `NOTIFY` the
 * channel; a waiter re-tries on each notice for its file, and when the holder is on a
 * node it also waits (on a connection of its own) for that node's session lock, so a
 * holder's death wakes it too — nothing polls. A node that loses its session loses its
 * locks with it (logged) and takes a new one on its next call.
 */
export function postgresLockTable(options: PostgresLockTableOptions): LockTable {
  const { pool, connect } = options
  const logger = options.logger ?? silentLogger
  const chainId = Buffer.from(options.chainId)
  const hex = chainId.toString('hex')
  const parts = options.table.split('.')
  const qt = parts.map(p => pg.escapeIdentifier(p)).join('.')
  const channel = `facet_locks_${createHash('sha256').update(options.table).digest('hex').slice(0, 24)}`
  const waiters = new Map<string, FileWaiters>()
  const watchers = new Map<string, { dead: Promise<void>; stop(): Promise<void> }>()
  const closing = new AbortController()
  let session: Promise<NodeSession> | undefined
  let ready: Promise<void> | undefined

  const wake = (file: string): void => {
    const w = waiters.get(file)
    if (!w) return
    w.generation++
    for (const f of w.wakes) f()
  }
  const wakeAll = (): void => {
    for (const file of waiters.keys()) wake(file)
  }
  const setup = (): Promise<void> =>
    (ready ??= (async () => {
      const index = pg.escapeIdentifier(`${parts[parts.length - 1]!.slice(0, 50)}_file`)
      // nodes creating the table at once take turns (a transaction-level advisory lock on its name; one query string is one
      // transaction), so none loses a race in the catalog; unlogged: a lock outlives no session, and a server restart ends
      // them all, so its rows need no WAL
      await pool.query(
        `SELECT pg_advisory_xact_lock(hashtext(${pg.escapeLiteral(`facet create ${qt}`)})); ` +
          `CREATE UNLOGGED TABLE IF NOT EXISTS ${qt} (chain_id bytea NOT NULL, file text NOT NULL, kind text NOT NULL, node bigint NOT NULL, owner text NOT NULL, mode text NOT NULL, start_at bigint NOT NULL, end_at bigint, pid integer NOT NULL); ` +
          `CREATE INDEX IF NOT EXISTS ${index} ON ${qt} (chain_id, file)`,
      )
    })().catch(err => {
      ready = undefined
      throw err
    }))
  const me = (): Promise<NodeSession> => {
    if (closing.signal.aborted) return Promise.reject(vfsError('EINTR', 'the lock table closed'))
    session ??= setup().then(() =>
      openNodeSession({
        connect,
        channel,
        logger,
        onNotify(payload) {
          if (payload.startsWith(`${hex}:`)) wake(payload.slice(hex.length + 1))
        },
        onLost(err) {
          logger.error({ err, table: options.table }, 'lost the lock session to PostgreSQL: the locks this node held are gone; taking a new session')
          session = undefined
          wakeAll()
        },
      }),
    )
    const s = session
    s.catch(() => {
      if (session === s) session = undefined
    })
    return s
  }
  const fileKeys = (file: string): [number, number] => {
    const h = createHash('sha256').update(`facet-file-lock/1:${options.table}:${hex}:${file}`).digest()
    return [h.readInt32LE(0), h.readInt32LE(4)]
  }
  const held = (r: Row, self: string): HeldLock => ({
    kind: r.kind,
    mode: r.mode,
    owner: `${r.node}/${r.owner}`,
    start: Number(r.start_at),
    end: r.end_at === null ? Infinity : Number(r.end_at),
    pid: r.node === self ? r.pid : 0,
  })

  /** One try at `req` in a transaction: the conflicting lock (with its node) when there is one, else undefined once granted. */
  const attempt = async (file: string, req: LockRequest, testOnly: boolean): Promise<{ lock: HeldLock; node: string } | undefined> => {
    const s = await me()
    const conn = await connectWithin(pool, QUERY_TIMEOUT_MS)
    let broken: Error | undefined
    // every statement answers within QUERY_TIMEOUT_MS or the call fails with EIO (a node cut off
    // from PostgreSQL must not hang); the connection is dropped then, its state unknown
    const client = {
      query: async <R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> => {
        try {
          return await conn.query<R>({ text, ...(values ? { values } : {}), query_timeout: QUERY_TIMEOUT_MS } as pg.QueryConfig)
        } catch (err) {
          if ((err as Error).message === 'Query read timeout') {
            broken = err as Error
            throw vfsError('EIO', `PostgreSQL did not answer a lock query within ${QUERY_TIMEOUT_MS / 1000} s`)
          }
          throw err
        }
      },
    }
    try {
      // four round trips for a change, three for a refusal: the file's lock first, in a statement
      // of its own, so the read after it sees every change committed before
      const [k1, k2] = fileKeys(file)
      // a node cut off mid-transaction holds the file's lock until the server ends its session
      await client.query(`BEGIN; SET LOCAL idle_in_transaction_session_timeout = ${QUERY_TIMEOUT_MS}; SELECT pg_advisory_xact_lock(${k1}, ${k2})`)
      const read = await client.query<{ me: boolean; reaped: string; rows: Row[] }>(
        `WITH live AS (${LIVE_NODES}),
           reaped AS (DELETE FROM ${qt} WHERE chain_id = $1 AND file = $2 AND node <> $3 AND node NOT IN (SELECT node FROM live) RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM live WHERE node = $3) AS me, (SELECT count(*) FROM reaped) AS reaped,
           (SELECT coalesce(json_agg(json_build_object('kind', kind, 'mode', mode, 'node', node::text, 'owner', owner, 'start_at', start_at::text, 'end_at', end_at::text, 'pid', pid)), '[]')
              FROM ${qt} WHERE chain_id = $1 AND file = $2 AND kind = $4 AND node IN (SELECT node FROM live)) AS rows`,
        [chainId, file, s.key, req.kind],
      )
      const { me: alive, reaped, rows } = read.rows[0]!
      if (!alive) throw vfsError('ENOLCK', 'this node lost its lock session to PostgreSQL')
      const all = rows.map(r => held(r, s.key))
      const ask: LockRequest = { ...req, owner: `${s.key}/${req.owner}` }
      const conflict = findConflict(all, ask)
      let changed = Number(reaped) > 0
      if (!conflict && !testOnly) {
        const mine = all.filter(h => h.owner === ask.owner)
        const next = applyLock(mine, ask)
        if (!sameLocks(mine, next)) {
          // something this owner held went or shrank: someone may be waiting for it
          changed ||= mine.length > 0
          await client.query(
            `WITH gone AS (DELETE FROM ${qt} WHERE chain_id = $1 AND file = $2 AND kind = $3 AND node = $4 AND owner = $5),
               added AS (INSERT INTO ${qt} (chain_id, file, kind, node, owner, mode, start_at, end_at, pid) SELECT $1, $2, $3, $4, $5, m, s, e, $6 FROM unnest($7::text[], $8::bigint[], $9::bigint[]) AS t(m, s, e))
             SELECT CASE WHEN $10::boolean THEN pg_notify($11, $12) END`,
            [chainId, file, req.kind, s.key, req.owner, req.pid, next.map(h => h.mode), next.map(h => h.start), next.map(h => (h.end === Infinity ? null : h.end)), changed, channel, `${hex}:${file}`],
          )
        } else if (changed) await client.query('SELECT pg_notify($1, $2)', [channel, `${hex}:${file}`])
      } else if (changed) await client.query('SELECT pg_notify($1, $2)', [channel, `${hex}:${file}`])
      await client.query('COMMIT')
      if (changed) wake(file)
      if (!conflict) return undefined
      return { lock: conflict, node: rows.find(r => `${r.node}/${r.owner}` === conflict.owner)!.node }
    } catch (err) {
      if (!broken) await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      conn.release(broken)
    }
  }

  /** Wakes the file's waiters when node `key` dies, once per node however many wait on it. */
  const watch = (key: string): void => {
    if (watchers.has(key)) return
    const w = watchNodeDeath(connect, key, logger)
    watchers.set(key, w)
    void w.dead.then(async () => {
      watchers.delete(key)
      const { rows } = await pool.query<{ chain_id: Buffer; file: string }>(`WITH gone AS (DELETE FROM ${qt} WHERE node = $1 RETURNING chain_id, file) SELECT DISTINCT chain_id, file FROM gone`, [key])
      for (const r of rows) await pool.query('SELECT pg_notify($1, $2)', [channel, `${r.chain_id.toString('hex')}:${r.file}`])
      logger.info({ node: key, files: rows.length }, 'a node holding locks ended; its locks are released')
      wakeAll()
    }).catch(err => logger.warn({ err, node: key }, 'releasing the locks of an ended node failed'))
  }

  /** Resolves at the next notice for `file` after `seen`; rejects with `EINTR` when a signal aborts. */
  const next = (w: FileWaiters, seen: number, signals: AbortSignal[]): Promise<void> =>
    w.generation !== seen && !signals.some(s => s.aborted) ? Promise.resolve() : wakeOrAbort(w.wakes, signals)

  return {
    async test(file, req) {
      return (await attempt(file, req, true))?.lock
    },
    async lock(file, req, how: LockWait) {
      if (!how.wait) {
        if (await attempt(file, req, false)) throw vfsError('EAGAIN', 'another owner holds a conflicting lock')
        return
      }
      let w = waiters.get(file)
      if (!w) waiters.set(file, (w = { generation: 0, wakes: new Set(), users: 0 }))
      w.users++
      const signals = [closing.signal, ...(how.signal ? [how.signal] : [])]
      try {
        for (;;) {
          const seen = w.generation
          const conflict = await attempt(file, req, false)
          if (!conflict) return
          if (conflict.node !== (await me()).key) watch(conflict.node)
          await next(w, seen, signals)
        }
      } finally {
        if (--w.users === 0) waiters.delete(file)
        // a holder's node is watched only while someone here waits
        if (waiters.size === 0) {
          for (const watcher of watchers.values()) void watcher.stop()
          watchers.clear()
        }
      }
    },
    async close() {
      if (closing.signal.aborted) return
      closing.abort()
      await Promise.all([...watchers.values()].map(w => w.stop()))
      watchers.clear()
      const s = await session?.catch(() => undefined)
      if (!s) return
      try {
        const { rows } = await pool.query<{ file: string }>(`WITH gone AS (DELETE FROM ${qt} WHERE chain_id = $1 AND node = $2 RETURNING file) SELECT DISTINCT file FROM gone`, [chainId, s.key])
        for (const r of rows) await pool.query('SELECT pg_notify($1, $2)', [channel, `${hex}:${r.file}`])
      } catch (err) {
        logger.warn({ err }, 'could not delete this node\'s locks on close; they go with its session')
      }
      await s.end()
    },
  }
}

/** A pool connection, or `EIO` when none comes within `ms` (one that comes later goes back to the pool). */
function connectWithin(pool: pg.Pool, ms: number): Promise<pg.PoolClient> {
  const connecting = pool.connect()
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      fail(vfsError('EIO', `no connection to PostgreSQL for a lock query within ${ms / 1000} s`))
      connecting.then(c => c.release(), () => {})
    }, ms)
    connecting.then(
      c => {
        clearTimeout(timer)
        done(c)
      },
      err => {
        clearTimeout(timer)
        fail(err)
      },
    )
  })
}
