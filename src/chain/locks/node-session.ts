import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Logger } from '../../vfs/log.ts'

/**
 * How long PostgreSQL takes at most to notice that a node's machine died or dropped off
 * the network, in seconds: the node's session asks the server for TCP keepalive probes
 * after 10 s idle, every 5 s, 3 of them (10 + 5 × 3 = 25 s), and for a 25 s
 * `tcp_user_timeout` on data it sent. The server then ends the session, which frees the
 * node's advisory lock and with it every lock the node held.
 */
export const DEAD_NODE_BOUND_S = 25

/** The settings that bound, by {@link DEAD_NODE_BOUND_S}, how long the server keeps the session of a node gone silent (each a statement). */
export const KEEPALIVE = ['SET tcp_keepalives_idle = 10', 'SET tcp_keepalives_interval = 5', 'SET tcp_keepalives_count = 3', 'SET tcp_user_timeout = 25000']

/** Makes a fresh connection (not from a pool) to the chain's database. */
export type ConnectFn = () => pg.Client

/**
 * A node's presence in PostgreSQL: a session of its own holding the session advisory
 * lock `pg_advisory_lock(key)` for as long as the node lives, and listening on the locks'
 * channel. A node whose key's lock is free is dead: its rows are ignored and reaped.
 * When the process dies its connection closes and the lock goes at once; when the
 * machine dies, within {@link DEAD_NODE_BOUND_S} seconds.
 */
export interface NodeSession {
  /** The node's advisory lock key, a positive 63-bit integer as a decimal string. */
  readonly key: string
  /** True until the session is lost or ended. */
  readonly live: boolean
  end(): Promise<void>
}

/** Options for {@link openNodeSession}. */
export interface NodeSessionOptions {
  connect: ConnectFn
  /** The channel to LISTEN on. */
  channel: string
  onNotify(payload: string): void
  /** Called once when the session is lost (not when it is ended). */
  onLost(err: unknown): void
  logger: Logger
}

/** Opens a node's session: connects, takes its advisory lock, sets keepalives and listens. */
export async function openNodeSession(options: NodeSessionOptions): Promise<NodeSession> {
  const key = (randomBytes(8).readBigUInt64BE() >> 1n || 1n).toString()
  const client = options.connect()
  let live = true
  let ending = false
  const lost = (err: unknown): void => {
    if (!live) return
    live = false
    if (!ending) options.onLost(err)
  }
  client.on('error', lost)
  client.on('end', () => lost(new Error('the lock session to PostgreSQL ended')))
  client.on('notification', msg => {
    if (msg.channel === options.channel && msg.payload) options.onNotify(msg.payload)
  })
  try {
    await client.connect()
    for (const q of KEEPALIVE) await client.query(q)
    await client.query('SELECT pg_advisory_lock($1::bigint)', [key])
    await client.query(`LISTEN ${pg.escapeIdentifier(options.channel)}`)
  } catch (err) {
    ending = true
    await client.end().catch(() => {})
    throw err
  }
  return {
    key,
    get live() {
      return live
    },
    async end() {
      ending = true
      live = false
      await client.end().catch(err => options.logger.debug({ err }, 'closing the lock session failed'))
    },
  }
}

/** SQL listing the keys (`node bigint`) of the live nodes: those whose session holds its advisory lock in this database. */
export const LIVE_NODES = `SELECT ((p.classid::bigint << 32) | p.objid::bigint) AS node FROM pg_locks p
  WHERE p.locktype = 'advisory' AND p.granted AND p.mode = 'ExclusiveLock' AND p.objsubid = 1
    AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database())`

/**
 * Resolves when node `key` is dead: a connection of its own waits for a shared hold on
 * the node's advisory lock, which PostgreSQL grants only once the node's session is gone.
 * `stop` ends the wait (the promise then never resolves).
 */
export function watchNodeDeath(connect: ConnectFn, key: string, logger: Logger): { dead: Promise<void>; stop(): Promise<void> } {
  const client = connect()
  client.on('error', () => {})
  let stopped = false
  const dead = (async () => {
    await client.connect()
    await client.query('SELECT pg_advisory_lock_shared($1::bigint)', [key])
    await client.query('SELECT pg_advisory_unlock_shared($1::bigint)', [key])
  })()
  const ended = dead.then(
    () => client.end(),
    err => {
      if (!stopped) logger.warn({ err, node: key }, 'watching a lock holder for its end failed')
      return client.end()
    },
  ).catch(() => {})
  return {
    dead: dead.catch(() => new Promise<never>(() => {})),
    async stop() {
      if (stopped) return
      stopped = true
      // the wait blocks in the server: cancel it there, then close
      const pid = (client as unknown as { processID?: number }).processID
      if (pid) {
        const canceller = connect()
        canceller.on('error', () => {})
        try {
          await canceller.connect()
          await canceller.query('SELECT pg_cancel_backend($1)', [pid])
        } catch {
          // the connection closes below either way
        } finally {
          await canceller.end().catch(() => {})
        }
      }
      await client.end().catch(() => {})
      await ended
    },
  }
}
