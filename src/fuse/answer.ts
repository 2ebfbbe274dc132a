import { ERRNO, VfsError } from '../vfs/errors.ts'
import type { Logger } from '../vfs/log.ts'
import type { FuseCallback } from './binding.ts'

/** The callback arguments for a successful answer: the code (`0` or a byte count), then the op's values. */
export type Reply = [code: number, ...values: unknown[]]

/** fuse-napi answers a call itself with `ETIMEDOUT` after 15 s; the guard must fire before that. */
export const BINDING_TIMEOUT_MS = 15_000

/**
 * Maps anything a handler threw to the negative errno fuse-napi expects: a
 * {@link VfsError} keeps its errno; anything else is logged with its stack and becomes
 * `-EIO`, so an adapter bug never reaches the caller as more than "Input/output error".
 */
export function fuseErrno(err: unknown, op: string, path: string, logger: Logger): number {
  if (err instanceof VfsError) return -err.errno
  logger.error({ err, op, path }, 'FUSE handler failed; answered EIO')
  return -ERRNO.EIO
}

/** Clamps a requested guard timeout to 1 ms … 14 s, so the guard always fires before fuse-napi's own 15 s answer. */
export function guardTimeout(ms: number): number {
  return Math.min(Math.max(1, ms), BINDING_TIMEOUT_MS - 1000)
}

/** Options for {@link createAnswerer}. */
export interface AnswererOptions {
  /** Milliseconds after which an unanswered call gets `ETIMEDOUT`; kept below fuse-napi's 15 s. */
  timeoutMs: number
  /** Where failed, timed-out and late calls are logged. */
  logger: Logger
}

/**
 * Runs one FUSE call and answers it exactly once.
 *
 * `work` may return a value or a promise, throw, or reject; `reply` turns its value into
 * the callback's arguments (and may itself throw). Whatever happens first — the value,
 * an error, or the guard timeout — answers `cb`; anything after that is swallowed,
 * logged, and handed to `late` (so a handle opened too late can be released).
 */
export type Answer = <T>(
  op: string,
  path: string,
  cb: FuseCallback,
  work: () => T | PromiseLike<T>,
  reply: (value: T) => Reply | number,
  late?: (value: T) => void,
) => void

/** An {@link Answer} with a twin for calls that may wait as long as they must. */
export interface Answerer extends Answer {
  /**
   * Answers like the guarded function but with no timeout: for a blocking lock
   * (`F_SETLKW`, `flock` without `LOCK_NB`), which waits until the holder lets go.
   */
  readonly untimed: Answer
}

/** One call waiting for a promise; methods on a class so no closures are made per call. */
class PendingCall<T> {
  readonly startedMs = Date.now()
  done = false
  constructor(
    readonly op: string,
    readonly path: string,
    readonly cb: FuseCallback,
    readonly reply: (value: T) => Reply | number,
    readonly late: ((value: T) => void) | undefined,
    readonly timed: boolean,
  ) {}
}

/** Makes the {@link Answer} function a mount's handlers share. */
export function createAnswerer(options: AnswererOptions): Answerer {
  const { logger } = options
  const timeoutMs = guardTimeout(options.timeoutMs)
  const pending = new Set<PendingCall<any>>()
  let sweeper: NodeJS.Timeout | undefined

  const send = (cb: FuseCallback, args: Reply | number, op: string, path: string): void => {
    try {
      if (typeof args === 'number') cb(args)
      else cb(...args)
    } catch (err) {
      logger.error({ err, op, path }, 'fuse-napi callback threw')
    }
  }

  const sweep = (): void => {
    const now = Date.now()
    for (const c of pending) {
      if (!c.timed || now - c.startedMs < timeoutMs) continue
      pending.delete(c)
      c.done = true
      logger.warn({ op: c.op, path: c.path, timeoutMs }, 'FUSE call took too long; answered ETIMEDOUT')
      send(c.cb, -ERRNO.ETIMEDOUT, c.op, c.path)
    }
    if (pending.size === 0 && sweeper) {
      clearInterval(sweeper)
      sweeper = undefined
    }
  }

  const settle = <T>(c: PendingCall<T>, ok: boolean, value: unknown): void => {
    if (c.done) {
      if (ok) {
        logger.warn({ op: c.op, path: c.path }, 'FUSE call finished after it was answered; result dropped')
        try {
          c.late?.(value as T)
        } catch (err) {
          logger.error({ err, op: c.op, path: c.path }, 'cleaning up a late FUSE answer failed')
        }
      } else logger.warn({ err: value, op: c.op, path: c.path }, 'FUSE call failed after it was answered')
      return
    }
    c.done = true
    pending.delete(c)
    let args: Reply | number
    if (ok) {
      try {
        args = c.reply(value as T)
      } catch (err) {
        args = fuseErrno(err, c.op, c.path, logger)
      }
    } else args = fuseErrno(value, c.op, c.path, logger)
    send(c.cb, args, c.op, c.path)
  }

  const start = <T>(
    timed: boolean,
    op: string,
    path: string,
    cb: FuseCallback,
    work: () => T | PromiseLike<T>,
    reply: (value: T) => Reply | number,
    late?: (value: T) => void,
  ): void => {
    let result: T | PromiseLike<T>
    try {
      result = work()
    } catch (err) {
      send(cb, fuseErrno(err, op, path, logger), op, path)
      return
    }
    if (result === null || typeof (result as PromiseLike<T>)?.then !== 'function') {
      let args: Reply | number
      try {
        args = reply(result as T)
      } catch (err) {
        args = fuseErrno(err, op, path, logger)
      }
      send(cb, args, op, path)
      return
    }
    const c = new PendingCall(op, path, cb, reply, late, timed)
    if (timed) {
      pending.add(c)
      sweeper ??= setInterval(sweep, Math.min(1000, Math.ceil(timeoutMs / 4))).unref()
    }
    ;(result as PromiseLike<T>).then(
      value => settle(c, true, value),
      err => settle(c, false, err),
    )
  }
  const answer: Answer = (op, path, cb, work, reply, late) => start(true, op, path, cb, work, reply, late)
  const untimed: Answer = (op, path, cb, work, reply, late) => start(false, op, path, cb, work, reply, late)
  return Object.assign(answer, { untimed })
}
