import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import type { Logger } from '../vfs/log.ts'
import { DEAD_NODE_BOUND_S, KEEPALIVE } from './locks/node-session.ts'
import { listenWithHeartbeat, type Listening } from './pg-listener.ts'
import type { WriteLease } from './shared-writing.ts'

/** How long a node waits for the holder to hand the write lease over before the change fails with EIO: below the 12 s after which a FUSE call is answered ETIMEDOUT, so a change that waits too long fails whole. @default 10 s */
export const LEASE_WAIT_MS = 10_000
/** How often a waiting node asks again (a NOTIFY can be missed by a holder whose listening connection was down). */
const ASK_EVERY_MS = 250

/** Where a {@link postgresWriteLease} lives. */
export interface PostgresLeaseOptions {
  pool: () => pg.Pool
  /** The NOTIFY channel of the chain's table. */
  channel: string
  /** The chain id, hex. */
  chainHex: string
  /** The advisory lock keys of the lease (not the writer lock's). */
  keys: [number, number]
  logger: Logger
  /** @default {@link LEASE_WAIT_MS} */
  waitMs?: number
}

/**
 * The write lease of a chain in PostgreSQL: a session-level advisory lock on a connection
 * of its own. A node that wants it sends `NOTIFY <channel>, '<chain>:want:<node>'` (again
 * every 250 ms while it waits) and blocks on the lock, with `lock_timeout` as its bound;
 * the holder hears the ask on its listening connection and releases once idle. If the
 * holder's session dies, the server frees the lock at once; if the holder's machine dies
 * or drops off the network, within {@link DEAD_NODE_BOUND_S} s (the session asks the
 * server for TCP keepalives, as a node's lock session does: without them the server
 * would keep a silent holder's session, and the lease, for the system's two hours, and no
 * other node could write meanwhile). The table's primary key
 * `(chain_id, seq)` still refuses a block appended out of turn, so no two blocks ever
 * claim one place in the chain.
 */
export function postgresWriteLease(options: PostgresLeaseOptions): WriteLease {
  const me = randomBytes(6).toString('hex')
  const wantPrefix = `${options.chainHex}:want:`
  const waitMs = options.waitMs ?? LEASE_WAIT_MS
  const wantedBy = new Set<() => void>()
  const lostBy = new Set<() => void>()
  let client: pg.PoolClient | undefined
  let listening: Listening | undefined
  /** Stops hearing the errors of the connection holding the lease. */
  let stopWatching = (): void => {}

  const listen = () => {
    listening ??= listenWithHeartbeat({
      connect: () => options.pool().connect(),
      channel: options.channel,
      onNotify: payload => {
        if (!payload.startsWith(wantPrefix) || payload.slice(wantPrefix.length) === me) return
        for (const fn of wantedBy) fn()
      },
      onResync: () => {},
    })
    listening.ready.catch(() => {})
  }
  const ask = () => options.pool().query('SELECT pg_notify($1, $2)', [options.channel, `${wantPrefix}${me}`])

  return {
    async acquire() {
      listen()
      const c = await options.pool().connect()
      try {
        // one round trip: the keepalives (kept by the pooled connection after) and the try
        const tried = (await c.query(`${KEEPALIVE.join('; ')}; SELECT pg_try_advisory_lock(${options.keys.map(k => Math.trunc(k)).join(', ')}) AS ok`)) as unknown as pg.QueryResult<{ ok: boolean }>[]
        const ok = tried.at(-1)!.rows[0]!.ok
        if (!ok) {
          await c.query(`SET lock_timeout = ${Math.max(1, Math.round(waitMs))}`)
          await ask()
          const again = setInterval(() => void ask().catch(() => {}), ASK_EVERY_MS)
          try {
            await c.query('SELECT pg_advisory_lock($1::int, $2::int)', options.keys)
          } catch (err) {
            if ((err as { code?: string }).code === '55P03') throw new Error(`the node holding the chain's write lease did not hand it over within ${waitMs} ms`)
            throw err
          } finally {
            clearInterval(again)
            await c.query('RESET lock_timeout').catch(() => {})
          }
        }
      } catch (err) {
        c.release(err as Error)
        throw err
      }
      const onError = (err: Error) => {
        if (client !== c) return
        client = undefined
        c.off('error', onError)
        c.release(err)
        for (const fn of lostBy) fn()
      }
      c.on('error', onError)
      client = c
      stopWatching = () => c.off('error', onError)
    },
    async release() {
      const c = client
      client = undefined
      if (!c) return
      // the pooled connection goes back to others: this lease no longer hears its errors
      stopWatching()
      try {
        await c.query('SELECT pg_advisory_unlock($1::int, $2::int)', options.keys)
        c.release()
      } catch (err) {
        c.release(err as Error)
        throw err
      }
    },
    onWanted(fn) {
      wantedBy.add(fn)
      listen()
    },
    onLost(fn) {
      lostBy.add(fn)
    },
    async close() {
      wantedBy.clear()
      lostBy.clear()
      const l = listening
      listening = undefined
      await l?.stop()
      if (client) {
        const c = client
        client = undefined
        stopWatching()
        await c.query('SELECT pg_advisory_unlock($1::int, $2::int)', options.keys).then(
          () => c.release(),
          err => c.release(err as Error),
        )
      }
    },
  }
}
