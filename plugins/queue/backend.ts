import { isVfsError, vfsError } from '../../src/vfs/errors.ts'
import type { Logger } from '../../src/vfs/log.ts'
import type { MountChange } from '../../src/vfs/mounts.ts'

/** Where a message is: waiting in the queue folder, claimed by a consumer, or dead-lettered. */
export type State = 'ready' | 'claimed' | 'dead'

/** The three states, in folder order. */
export const STATES: readonly State[] = ['ready', 'claimed', 'dead']

/** What a listing knows of one message without reading it. */
export interface MessageInfo {
  /** The message's file name in its queue folder, e.g. `'job-1.json'`. */
  name: string
  /** Exact byte length of the message body. */
  size: number
  /** When it was enqueued, in milliseconds; a claim, release or dead-lettering keeps it (as `rename(2)` keeps a file's mtime). */
  timeMs: number
  /** Claims so far. */
  claims: number
}

/** Limits and timings every backend keeps, from {@link QueueOptions}. */
export interface QueueLimits {
  maxClaims: number
  claimTimeoutMs: number
  maxBytes: number
}

/** What a backend needs from the view it serves. */
export interface BackendHost {
  /** Reports a change the backend saw that did not come through this VFS (another program, another FacetFS, a timed-out claim). */
  emit(change: MountChange): void
  readonly logger: Logger
}

/**
 * Where the queues live: a host folder, a NATS JetStream server, or a Redis server.
 * Every method throws `VfsError`s; a broker that cannot be reached gives `EAGAIN` or
 * `EIO` with the broker's reason.
 */
export interface QueueBackend {
  /** Which store this backend keeps the queues in. */
  readonly kind: 'folder' | 'nats' | 'redis'
  /** Starts pushing changes made by others to `host.emit` (where the store can push). */
  attach(host: BackendHost): void
  /** Stops its timers and watchers and closes its connections to the store; called once, when the view is disposed. */
  close(): Promise<void>
  /** The names of the queues, each shown as a folder. */
  queues(): Promise<string[]>
  /** True when queue `queue` exists. */
  hasQueue(queue: string): Promise<boolean>
  /** `EEXIST` when there is one. */
  createQueue(queue: string): Promise<void>
  /** `ENOTEMPTY` while it holds messages in any state. */
  removeQueue(queue: string): Promise<void>
  /** Messages in `state`, oldest first. Returns timed-out claims to the queue first. */
  list(queue: string, state: State): Promise<MessageInfo[]>
  /** The message `name` in `state`, or `undefined` when there is none. */
  find(queue: string, state: State, name: string): Promise<MessageInfo | undefined>
  /** The whole body; peeking never consumes or counts as a claim. `ENOENT` when gone. */
  read(queue: string, state: State, name: string): Promise<Uint8Array>
  /** Stores a message and returns once the store has it. `EEXIST` for a name in use, `EFBIG` over the limit (nothing stored). */
  enqueue(queue: string, name: string, data: Uint8Array): Promise<void>
  /** ready → claimed; of racing claimers exactly one wins, the others get `ENOENT`. */
  claim(queue: string, name: string): Promise<void>
  /** claimed → ready, or → dead when that claim used up `maxClaims`. */
  release(queue: string, name: string): Promise<State>
  /** dead → ready, its claim count restarting. */
  retry(queue: string, name: string): Promise<void>
  /** Acknowledges (removes) a message in `state`. */
  ack(queue: string, state: State, name: string): Promise<void>
  /** Figures for `/proc/stats.json`. */
  stats(): Record<string, number | string>
}

/** The path of a message in the mount, as change events name it. */
export function messagePath(queue: string, state: State, name: string): string {
  return state === 'ready' ? `/${queue}/${name}` : `/${queue}/${state}/${name}`
}

/** Counters every backend keeps. */
export function newStats(): { enqueued: number; claimed: number; acked: number; released: number; dead: number; timedOut: number } {
  return { enqueued: 0, claimed: 0, acked: 0, released: 0, dead: 0, timedOut: 0 }
}

/** The error of a message that another consumer moved first. */
export function gone(queue: string, name: string, state: State): Error {
  return vfsError('ENOENT', `message '${name}' is no longer ${state === 'ready' ? 'in queue ' + `'${queue}'` : state}; another consumer took it`)
}

/** The error of a message over the size limit. */
export function tooBig(limit: number, why = 'a message'): Error {
  return vfsError('EFBIG', `${why} is limited to ${limit} bytes; nothing was enqueued`)
}

/**
 * Turns a broker client's failure into an errno: a `VfsError` passes as it is; a lost or
 * refused connection becomes `EAGAIN` (try again once the broker is back) and anything
 * else `EIO`, both with the broker's reason.
 */
export function brokerError(broker: string, err: unknown): Error {
  if (isVfsError(err)) return err
  const e = err as { message?: string; code?: string; name?: string }
  const reason = e?.message ?? String(err)
  const unreachable = /ECONNREFUSED|ECONNRESET|EPIPE|ENOTCONN|closed|disconnect|reconnect|socket|connection|timeout|timed out|no responders/i.test(`${e?.code ?? ''} ${e?.name ?? ''} ${reason}`)
  return vfsError(unreachable ? 'EAGAIN' : 'EIO', `${broker}: ${reason}`)
}

/** Names FacetFS never shows as messages or queues. */
export function checkUserName(what: 'queue' | 'message', name: string): void {
  if (name.startsWith('.')) throw vfsError('EINVAL', `${what} names cannot start with a dot`)
}
