import { createHash } from 'node:crypto'
import pg from 'pg'
import type { StatFs } from '../vfs/node.ts'
import type { ChainBackend, ChainLog } from './backend.ts'
import { FILE_HEADER_BYTES, fileHeader, frameHeader } from './format.ts'
import { postgresLockTable } from './locks/postgres.ts'
import { postgresTrustKey } from './postgres-location.ts'
import { listenWithHeartbeat, type Listening } from './pg-listener.ts'
import { postgresWriteLease } from './pg-lease.ts'
import { ChainConflictError, ChainLockedError } from './log.ts'
import { connectWithin, isTransientPgError, PG_CALL_TIMEOUT_MS, PG_READ_RETRY_MS, queryWithin, readWithin, retryTransient } from './pg-retry.ts'
import { silentLogger, type Logger } from '../vfs/log.ts'

/** Options for {@link postgresBackend}. */
export interface PostgresBackendOptions {
  /** A connection string; the backend makes its own pool and ends it when its last log closes. */
  url?: string
  /** A pool to use instead of `url` (never ended by the backend). */
  pool?: pg.Pool
  /** The table holding the blocks, optionally schema-qualified; created when missing. @default 'facet_chain_blocks' */
  table?: string
  /** The chain's id (32 hex digits); needed only when the table holds more than one chain. */
  chainId?: string
  /**
   * Lets several processes (on any machines) write the chain at once, each with its own
   * identity among the chain's writers: they take turns through a write lease (see
   * `pg-lease.ts` and `shared-writing.ts`) instead of one of them holding the chain. A
   * process opening without it is refused while shared writers are in, and the other way
   * round. @default false
   */
  sharedWriters?: boolean
}

export { ChainConflictError }

/** A PostgreSQL session: its backend's pid and start time (text, to the microsecond). */
interface Session {
  pid: number
  start: string
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/

interface Row {
  seq: number
  /** Offset of the frame in the log. */
  at: number
  len: number
}

/**
 * The PostgreSQL backend: one row per block, `(chain_id bytea, seq bigint, bytes bytea)`
 * with primary key `(chain_id, seq)`, where `bytes` is the block's frame exactly as in a
 * log file. Many machines share a chain: one writer at a time (`pg_try_advisory_lock` on
 * the chain id, held by a session for as long as the chain is open), any number of
 * followers, told of each new block by `NOTIFY` (payload `<chain id hex>:<seq>`) on a
 * connection that a heartbeat checks every 5 s and that listens again, and catches up,
 * when it was lost (see `pg-listener.ts`). A block is durable once its `COMMIT` returns.
 * A writer whose `seq` is already taken (it lost its lock) gets {@link ChainConflictError}
 * and its chain turns read-only; reopen to catch up.
 * Faults: a statement or connect that takes over 10 s counts its connection dead; a read
 * retries a lost connection for 5 s in all, then fails (EIO); an append retries until its block
 * lands or the log closes, on the writer's session, taken again with its advisory lock after
 * a server restart (another session holding it by then: {@link ChainLockedError}); a COMMIT
 * whose answer was lost counts as landed when the retry finds the row with the same bytes.
 * File locks (`flock`, `fcntl`) live in `<table>_locks`, shared by every node (see
 * `locks/postgres.ts`).
 */
export function postgresBackend(options: PostgresBackendOptions): ChainBackend {
  const table = options.table ?? 'facet_chain_blocks'
  if (!IDENT.test(table)) throw new Error(`invalid table name '${table}'`)
  if (!options.url && !options.pool) throw new Error('postgresBackend needs a url or a pool')
  const qt = table.split('.').map(p => pg.escapeIdentifier(p)).join('.')
  const channel = `facet_chain:${table}`
  let chainId: Buffer | undefined = options.chainId ? Buffer.from(options.chainId, 'hex') : undefined
  let own: pg.Pool | undefined
  let openLogs = 0
  let ready: Promise<void> | undefined
  let trustKey: string | undefined
  let logger: Logger = silentLogger
  /** The session holding the writer's advisory lock; appends run on it, so no block lands once the lock is lost. */
  let writer: { client: pg.PoolClient | undefined; keys: [number, number]; id: Buffer; lost: Error | undefined; session: Session } | undefined
  /** Tries for the writer's advisory lock on `c`; with it, which session `c` is (its pid and start, unique over restarts). */
  const takeLock = async (c: pg.ClientBase, keys: [number, number]) =>
    (await queryWithin<{ ok: boolean } & Session>(c, 'SELECT pg_try_advisory_lock($1::int, $2::int) AS ok, pg_backend_pid() AS pid, (SELECT backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS start', keys)).rows[0]!
  const watchSession = (w: NonNullable<typeof writer>, c: pg.PoolClient) =>
    c.on('error', err => {
      if (w.client === c) w.lost ??= err
    })
  /**
   * A connection to append on, and how to hand it back: the writer's own session, taken
   * again (with the lock) on a new connection when it was lost, say to a server restart;
   * {@link ChainLockedError} when another session has the lock by then.
   */
  const appendSession = async (): Promise<{ client: pg.PoolClient; done(err?: Error): void }> => {
    const w = writer
    if (!w) {
      const c = await connectWithin(pool())
      return { client: c, done: err => c.release(err) }
    }
    if (!w.client || w.lost) {
      w.client?.release(w.lost ?? true)
      w.client = undefined
      const c = await connectWithin(pool())
      watchSession(w, c)
      let ok = false
      try {
        let got = await takeLock(c, w.keys)
        // a cut network leaves the old session alive on the server for a while, holding the lock: it is ours to end
        if (!got.ok && (await queryWithin<{ gone: boolean }>(c, "SELECT pg_terminate_backend(a.pid, 5000) AS gone FROM pg_stat_activity a WHERE a.pid = $1 AND a.backend_start::text = $2", [w.session.pid, w.session.start])).rows[0]?.gone) got = await takeLock(c, w.keys)
        ok = got.ok
        if (ok) w.session = { pid: got.pid, start: got.start }
      } finally {
        if (!ok) c.release(true)
      }
      if (!ok) throw new ChainLockedError(`lost the session holding chain ${w.id.toString('hex')} in ${table} open for writing, and another session has it now; this chain is now read-only (reopen it to catch up)`)
      logger.info({ table }, 'PostgreSQL writer session back; the chain is open for writing again')
      w.client = c
      w.lost = undefined
    }
    const c = w.client
    return {
      client: c,
      done: err => {
        if (err && w.client === c) w.lost ??= err
      },
    }
  }
  /** Runs a read-only query, retrying a lost connection for {@link PG_READ_RETRY_MS}. */
  const read = <R extends pg.QueryResultRow>(what: string, text: string, values: unknown[]) => readWithin<R>(pool(), text, values, { what, forMs: PG_READ_RETRY_MS, logger })

  const pool = (): pg.Pool => {
    if (options.pool) return options.pool
    if (!own) {
      // a statement or a connect that takes longer counts the connection dead: a cut network fails calls, never hangs them
      // shared writers hold three sessions of their own (the shared lock, the lease, its listening)
      own = new pg.Pool({ connectionString: options.url, max: options.sharedWriters ? 8 : 4, connectionTimeoutMillis: PG_CALL_TIMEOUT_MS, query_timeout: PG_CALL_TIMEOUT_MS, keepAlive: true })
      // an idle connection that drops is replaced on the next query; the error is not fatal
      own.on('error', () => {})
      // pg-pool hears a client's errors only while it is idle: one checked out (the lease waiting for its lock, a block being
      // appended) that loses its server (a restart ends every session) would emit 'error' to no listener and end the process;
      // its queries reject with the error all the same, and whoever holds it releases it with that error
      own.on('connect', client => void client.on('error', () => {}))
    }
    return own
  }
  const release = async () => {
    if (openLogs > 0 || !own) return
    const p = own
    own = undefined
    ready = undefined
    await p.end()
  }
  const setup = () =>
    (ready ??= pool()
      .query(`CREATE TABLE IF NOT EXISTS ${qt} (chain_id bytea NOT NULL, seq bigint NOT NULL, bytes bytea NOT NULL, PRIMARY KEY (chain_id, seq))`)
      .then(
        () => {},
        err => {
          ready = undefined
          throw err
        },
      ))
  const name = () => `postgres ${table}${chainId ? ` chain ${chainId.toString('hex')}` : ''}`
  /** The chain's id: given, learnt, or the one chain the table holds (undefined when it holds none). */
  const resolve = async (): Promise<Buffer | undefined> => {
    if (chainId) return chainId
    await setup()
    const { rows } = await pool().query<{ chain_id: Buffer }>(`SELECT DISTINCT chain_id FROM ${qt} LIMIT 2`)
    if (rows.length > 1) throw new Error(`table ${table} holds several chains: pass chainId`)
    return (chainId = rows[0]?.chain_id)
  }
  const need = async (): Promise<Buffer> => {
    const id = await resolve()
    if (!id) throw Object.assign(new Error(`no chain in ${name()}`), { code: 'ENOENT' })
    return id
  }
  const lockKeys = (id: Buffer, what = 'lock'): [number, number] => {
    const h = createHash('sha256').update(`facet-chain-${what}/1:${table}:`).update(id).digest()
    return [h.readInt32LE(0), h.readInt32LE(4)]
  }
  /** Shared writers hold the writer lock in shared mode: they keep out a single writer (and it them), not each other. */
  const sharedLock = async (id: Buffer, keys: [number, number]): Promise<() => Promise<void>> => {
    const client = await connectWithin(pool())
    openLogs++
    let ok = false
    try {
      ok = (await queryWithin<{ ok: boolean }>(client, 'SELECT pg_try_advisory_lock_shared($1::int, $2::int) AS ok', keys)).rows[0]!.ok
      if (!ok) throw new ChainLockedError(`chain ${id.toString('hex')} in ${table} is open for writing by a single writer; open it with shared writers only once that one closes`)
    } finally {
      if (!ok) {
        client.release()
        openLogs--
        await release()
      }
    }
    client.on('error', () => {})
    return async () => {
      try {
        await queryWithin(client, 'SELECT pg_advisory_unlock_shared($1::int, $2::int)', keys)
        client.release()
      } catch (err) {
        client.release(err as Error)
      }
      openLogs--
      await release()
    }
  }

  const backend: ChainBackend = {
    kind: 'postgres',
    get name() {
      return name()
    },
    // the store's location, never the chain found in it: another chain in the table is held against the pin
    get trustKey() {
      return (trustKey ??= postgresTrustKey(options, table, options.chainId))
    },
    tornTails: false,
    async exists() {
      try {
        return (await resolve()) !== undefined && (await countRows()) > 0
      } finally {
        await release()
      }
    },
    async create({ chainId: id, seq, body }) {
      await setup()
      try {
        await pool().query(`INSERT INTO ${qt} (chain_id, seq, bytes) VALUES ($1, $2, $3)`, [Buffer.from(id), seq, Buffer.concat([frameHeader(body), body])])
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new ChainConflictError(`chain ${Buffer.from(id).toString('hex')} already exists in ${table}`)
        throw err
      } finally {
        await release()
      }
      chainId = Buffer.from(id)
    },
    async lock() {
      const id = await need()
      const [k1, k2] = lockKeys(id)
      if (options.sharedWriters) return sharedLock(id, [k1, k2])
      const client = await pool().connect()
      openLogs++
      let ok = false
      let session: Session = { pid: 0, start: '' }
      try {
        const got = await takeLock(client, [k1, k2])
        ok = got.ok
        session = { pid: got.pid, start: got.start }
        if (!ok) {
          const { rows } = await client.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid AND objid = $2::int::oid AND objsubid = 2 AND granted", [k1, k2])
          const by = rows[0] ? ` (PostgreSQL backend pid ${rows[0].pid})` : ''
          throw new ChainLockedError(`chain ${id.toString('hex')} in ${table} is open for writing by another session${by}`)
        }
      } finally {
        if (!ok) {
          client.release()
          openLogs--
          await release()
        }
      }
      const w: NonNullable<typeof writer> = { client, keys: [k1, k2], id, lost: undefined, session }
      writer = w
      watchSession(w, client)
      return async () => {
        if (writer === w) writer = undefined
        const c = w.client
        w.client = undefined
        if (c && !w.lost) {
          try {
            await queryWithin(c, 'SELECT pg_advisory_unlock($1::int, $2::int)', [k1, k2])
            c.release()
          } catch (err) {
            c.release(err as Error)
          }
        } else c?.release(w.lost ?? true)
        openLogs--
        await release()
      }
    },
    ...(options.sharedWriters
      ? { lease: (id: Uint8Array, log: Logger) => postgresWriteLease({ pool, channel, chainHex: Buffer.from(id).toString('hex'), keys: lockKeys(Buffer.from(id), 'lease'), logger: log }) }
      : {}),
    locks(id, log) {
      if (log) logger = log
      openLogs++
      const parts = table.split('.')
      parts[parts.length - 1] = `${parts[parts.length - 1]!.slice(0, 57)}_locks`
      const connect = () => new pg.Client({ ...(options.url ? { connectionString: options.url } : options.pool!.options), keepAlive: true, connectionTimeoutMillis: 10_000 })
      const locks = postgresLockTable({ pool: pool(), connect, table: parts.join('.'), chainId: id, ...(log ? { logger: log } : {}) })
      let closed = false
      return {
        test: (file, req) => locks.test(file, req),
        lock: (file, req, how) => locks.lock(file, req, how),
        async close() {
          if (closed) return
          closed = true
          await locks.close()
          openLogs--
          await release()
        },
      }
    },
    async open() {
      const id = await need()
      openLogs++
      try {
        return await openLog(id)
      } catch (err) {
        openLogs--
        await release()
        throw err
      }
    },
  }

  async function countRows(): Promise<number> {
    const { rows } = await pool().query<{ n: string }>(`SELECT count(*) AS n FROM ${qt} WHERE chain_id = $1`, [chainId])
    return Number(rows[0]!.n)
  }

  async function openLog(id: Buffer): Promise<ChainLog> {
    const hex = id.toString('hex')
    const header = fileHeader()
    const index: Row[] = []
    let end = FILE_HEADER_BYTES
    let closed = false
    const closing = new AbortController()
    /** True when row `seq` holds exactly `bytes`: a COMMIT whose answer was lost went through. */
    const landed = async (seq: number, bytes: Buffer) => (await read<{ same: boolean }>('checking a block landed', `SELECT bytes = $3 AS same FROM ${qt} WHERE chain_id = $1 AND seq = $2`, [id, seq, bytes])).rows[0]?.same === true
    const listeners = new Set<() => void>()
    let listening: Listening | undefined

    /** The lowest seq in the table at the last look: above the first row indexed, a compaction deleted the rows below it. */
    let firstSeq: number | undefined
    /** Adds the rows appended since the last look to the index. */
    const refresh = async () => {
      const last = index.length > 0 ? index[index.length - 1]!.seq : -1
      // one round trip: the new rows and the lowest seq (a row even when there are no new rows)
      const { rows } = await read<{ base: string | null; seq: string | null; len: number }>(
        'reading the chain index',
        `SELECT b.base, r.seq, r.len FROM (SELECT min(seq) AS base FROM ${qt} WHERE chain_id = $1) b LEFT JOIN LATERAL (SELECT seq, octet_length(bytes) AS len FROM ${qt} WHERE chain_id = $1 AND seq > $2) r ON true ORDER BY r.seq`,
        [id, last],
      )
      firstSeq = rows[0]?.base == null ? undefined : Number(rows[0].base)
      for (const r of rows) {
        if (r.seq === null) continue
        // a look that raced with another (or with this log's own append) adds each row once
        if (index.length > 0 && Number(r.seq) <= index[index.length - 1]!.seq) continue
        index.push({ seq: Number(r.seq), at: end, len: r.len })
        end += r.len
      }
    }
    /** The index of the row holding byte `pos`. */
    const rowAt = (pos: number): number => {
      let lo = 0
      let hi = index.length - 1
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1
        if (index[mid]!.at <= pos) lo = mid
        else hi = mid - 1
      }
      return lo
    }

    await refresh()
    return {
      get firstSeq() {
        return firstSeq
      },
      async reindex() {
        index.length = 0
        end = FILE_HEADER_BYTES
        await refresh()
      },
      async compactInPlace(frames, first) {
        const last = first + frames.length - 1
        // the writer's own session (a single writer: no block lands once its lock is lost), else any (shared writers hold the lease)
        const { client, done } = await appendSession()
        try {
          await queryWithin(client, 'BEGIN')
          try {
            for (let k = 0; k < frames.length; k++) await queryWithin(client, `INSERT INTO ${qt} (chain_id, seq, bytes) VALUES ($1, $2, $3)`, [id, first + k, frames[k]])
            await queryWithin(client, `DELETE FROM ${qt} WHERE chain_id = $1 AND seq < $2`, [id, first])
            await queryWithin(client, 'SELECT pg_notify($1, $2)', [channel, `${hex}:${last}`])
            await queryWithin(client, 'COMMIT')
          } catch (err) {
            await queryWithin(client, 'ROLLBACK').catch(() => {})
            throw err
          }
          done()
        } catch (err) {
          const transient = isTransientPgError(err)
          done(transient ? (err as Error) : undefined)
          if ((err as { code?: string }).code === '23505') throw new ChainConflictError(`block ${first} of chain ${hex} was appended by another writer while compacting; nothing was changed`)
          // a COMMIT whose answer was lost may have gone through: the whole transaction, or none of it
          if (!transient || !(await landed(first, frames[0]!).catch(() => false))) throw err
        }
        index.length = 0
        end = FILE_HEADER_BYTES
        await refresh()
      },
      async read(buffer, offset, length, position) {
        let done = 0
        if (position < FILE_HEADER_BYTES) {
          done = header.copy(buffer, offset, position, Math.min(FILE_HEADER_BYTES, position + length))
        }
        const from = position + done
        const to = Math.min(end, position + length)
        if (from >= to || index.length === 0) return { bytesRead: done }
        const i = rowAt(from)
        const j = rowAt(to - 1)
        if (i === j) {
          const r = index[i]!
          const { rows } = await read<{ b: Buffer }>('reading a block', `SELECT substring(bytes from $3 for $4) AS b FROM ${qt} WHERE chain_id = $1 AND seq = $2`, [id, r.seq, from - r.at + 1, to - from])
          const b = rows[0]?.b ?? Buffer.alloc(0)
          return { bytesRead: done + b.copy(buffer, offset + done) }
        }
        const { rows } = await read<{ seq: string; bytes: Buffer }>('reading blocks', `SELECT seq, bytes FROM ${qt} WHERE chain_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq`, [id, index[i]!.seq, index[j]!.seq])
        const bySeq = new Map(rows.map(r => [Number(r.seq), r.bytes]))
        for (let k = i; k <= j; k++) {
          const r = index[k]!
          const b = bySeq.get(r.seq)
          const a = Math.max(from, r.at)
          const z = Math.min(to, r.at + r.len)
          // a row that vanished or changed length reads short: the scan reports the damage
          if (!b || b.length !== r.len) break
          b.copy(buffer, offset + a - position, a - r.at, z - r.at)
          done = z - position
        }
        return { bytesRead: done }
      },
      async size() {
        await refresh()
        return end
      },
      async append(head, body, at, seq) {
        if (at !== end) throw new ChainConflictError(`block ${seq} would be appended at byte ${at} but the log ends at ${end}`)
        const bytes = Buffer.concat([head, body])
        // a lost connection is retried until the block lands or the log closes: the block is
        // signed and next in line, so it is never given up for a transient fault; a COMMIT
        // whose answer was lost may have landed, which the retry's duplicate key tells
        let maybeLanded = false
        await retryTransient(
          async () => {
            const { client, done } = await appendSession()
            let added: { rows: unknown[] }
            try {
              // one statement, one round trip: the row and its NOTIFY commit together (an implicit transaction);
              // never below a later row (a compaction in place since deleted the rows this block follows)
              added = await queryWithin(
                client,
                `WITH added AS (INSERT INTO ${qt} (chain_id, seq, bytes) SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM ${qt} WHERE chain_id = $1 AND seq > $2) RETURNING seq) SELECT pg_notify($4, $5) FROM added`,
                [id, seq, bytes, channel, `${hex}:${seq}`],
              )
              done()
            } catch (err) {
              if (isTransientPgError(err)) {
                // its commit may have happened before the answer was lost
                maybeLanded = true
                done(err as Error)
                throw err
              }
              done()
              if ((err as { code?: string }).code !== '23505') throw err
              if (maybeLanded && (await landed(seq, bytes))) return
              throw new ChainConflictError(`block ${seq} of chain ${hex} was already appended by another writer`)
            }
            if (added.rows.length === 0 && !(maybeLanded && (await landed(seq, bytes)))) throw new ChainConflictError(`block ${seq} of chain ${hex} is no longer the head: the store holds later blocks (another writer appended, or compacted, first)`)
          },
          { what: `appending block ${seq}`, signal: closing.signal, logger },
        )
        if (index.length === 0 || index[index.length - 1]!.seq < seq) {
          index.push({ seq, at, len: head.length + body.length })
          end += head.length + body.length
        }
      },
      async truncate() {
        throw new Error('a PostgreSQL chain has no torn tail to cut')
      },
      watch(onChange) {
        listeners.add(onChange)
        const changed = () => {
          for (const l of listeners) l()
        }
        listening ??= listenWithHeartbeat({
          connect: () => pool().connect(),
          channel,
          onNotify: payload => payload.startsWith(`${hex}:`) && changed(),
          // blocks appended while the connection was down were announced to nobody: look
          onResync: changed,
        })
        const started = listening
        started.ready.catch(() => {})
        return async () => {
          listeners.delete(onChange)
          if (listeners.size > 0 || listening !== started) return
          listening = undefined
          await started.stop()
        }
      },
      // the database's free space is not ours to know: the log's size, and a fixed margin free
      async statfs(): Promise<StatFs> {
        const blocks = Math.ceil(end / 4096)
        return { bsize: 4096, blocks: blocks + 1024 * 1024, bfree: 1024 * 1024, bavail: 1024 * 1024, files: 1 << 20, ffree: 1 << 20, namemax: 255 }
      },
      async close() {
        if (closed) return
        closed = true
        closing.abort()
        listeners.clear()
        const l = listening
        listening = undefined
        if (l) await l.stop()
        openLogs--
        await release()
      },
    }
  }

  return backend
}
