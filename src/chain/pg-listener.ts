import type pg from 'pg'
import { silentLogger, type Logger } from '../vfs/log.ts'

/** Options for {@link listenWithHeartbeat}. */
export interface ListenOptions {
  /** Opens the connection that listens (one of its own: it is held for as long as the listening lasts). */
  connect(): Promise<pg.ClientBase & { release?(err?: Error | boolean): void; end?(): Promise<void> }>
  /** The NOTIFY channel. */
  channel: string
  /** Called with each notification's payload. */
  onNotify(payload: string): void
  /**
   * Called once the connection is listening again after it was lost: notifications sent
   * meanwhile are gone, so the caller looks for what it missed.
   */
  onResync(): void
  /** How often the connection is asked `SELECT 1`; one unanswered for this long counts it dead. @default 5000 */
  heartbeatMs?: number
  /** Where losing and regaining the connection are logged. @default silentLogger */
  logger?: Logger
}

/** A LISTEN that lasts until {@link stop}. */
export interface Listening {
  /** Resolves once the first LISTEN is in place. */
  readonly ready: Promise<void>
  /** Stops listening, and waits for the connection to close. */
  stop(): Promise<void>
}

type Conn = Awaited<ReturnType<ListenOptions['connect']>>

/**
 * LISTENs on `channel` and keeps listening: a connection that errors, ends, or leaves a
 * heartbeat (`SELECT 1`) unanswered for `heartbeatMs` is dropped, a new one listens (after
 * 250 ms, doubling to 5 s while it fails), and `onResync` is called, because a LISTEN
 * connection can die silently (a cut network, a terminated backend) and NOTIFYs sent while
 * it is down are lost. A node stops hearing of changes for at most about two heartbeats.
 */
export function listenWithHeartbeat(options: ListenOptions): Listening {
  const logger = options.logger ?? silentLogger
  const heartbeatMs = options.heartbeatMs ?? 5000
  let stopped = false
  let conn: Conn | undefined
  let beat: NodeJS.Timeout | undefined
  let retry: NodeJS.Timeout | undefined
  let delay = 250
  let lost = false
  let connecting: Promise<void> | undefined

  const onNotification = (msg: pg.Notification) => {
    if (msg.channel === options.channel) options.onNotify(msg.payload ?? '')
  }
  const drop = (c: Conn, why: string) => {
    if (conn !== c) return
    conn = undefined
    if (beat) clearInterval(beat)
    beat = undefined
    c.removeListener('notification', onNotification)
    // the connection is broken: hand it back as such, never to be reused
    if (c.release) c.release(new Error(why))
    else void c.end?.().catch(() => {})
    if (stopped) return
    lost = true
    logger.warn({ channel: options.channel, why }, 'PostgreSQL listening connection lost; listening again')
    schedule()
  }
  const schedule = () => {
    if (stopped || retry) return
    retry = setTimeout(() => {
      retry = undefined
      connecting = connect().catch(err => {
        logger.warn({ channel: options.channel, err: (err as Error).message }, 'PostgreSQL listening connection could not be opened; retrying')
        delay = Math.min(delay * 2, 5000)
        schedule()
      })
    }, delay)
    retry.unref()
  }
  const connect = async (): Promise<void> => {
    const c = await options.connect()
    if (stopped) {
      if (c.release) c.release()
      else await c.end?.()
      return
    }
    c.on('error', err => drop(c, err.message))
    c.on('end', () => drop(c, 'the connection ended'))
    c.on('notification', onNotification)
    try {
      await c.query(`LISTEN ${quoteIdent(options.channel)}`)
    } catch (err) {
      conn = c
      drop(c, (err as Error).message)
      throw err
    }
    conn = c
    delay = 250
    beat = setInterval(() => {
      let answered = false
      const late = setTimeout(() => answered || drop(c, `no answer to a heartbeat in ${heartbeatMs} ms`), heartbeatMs)
      late.unref()
      c.query(`SELECT 1 /* heartbeat of LISTEN ${options.channel.replace(/\*\//g, '')} */`).then(
        () => ((answered = true), clearTimeout(late)),
        err => ((answered = true), clearTimeout(late), drop(c, (err as Error).message)),
      )
    }, heartbeatMs)
    beat.unref()
    if (lost) {
      lost = false
      logger.info({ channel: options.channel }, 'PostgreSQL listening connection back; catching up')
      options.onResync()
    }
  }

  const ready = (connecting = connect())
  return {
    ready,
    async stop() {
      stopped = true
      if (retry) clearTimeout(retry)
      retry = undefined
      await connecting?.catch(() => {})
      const c = conn
      conn = undefined
      if (beat) clearInterval(beat)
      if (!c) return
      c.removeListener('notification', onNotification)
      try {
        await c.query(`UNLISTEN ${quoteIdent(options.channel)}`)
        if (c.release) c.release()
        else await c.end?.()
      } catch (err) {
        if (c.release) c.release(err as Error)
        else await c.end?.().catch(() => {})
      }
    },
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
