import { vfsError } from '../../src/vfs/errors.ts'
import type { DirEntry, FileHandle, VNode } from '../../src/vfs/node.ts'
import { defineView, type View } from '../../src/views/view.ts'
import { dirFrom, fileFrom, type DirCapabilities } from '../../src/views/writable.ts'
import { checkUserName, STATES, tooBig, type MessageInfo, type QueueBackend, type QueueLimits, type State } from './backend.ts'
import { FolderBackend } from './folder.ts'
import { NatsBackend } from './nats.ts'
import { RedisBackend } from './redis.ts'

export type { MessageInfo, QueueBackend, State } from './backend.ts'

/** Options for {@link queueView}: give `dir` or `broker`. */
export interface QueueOptions {
  /** A host folder holding the queues (created when missing); each queue is a sub-folder. */
  dir?: string
  /**
   * A broker holding the queues instead: `nats://HOST:PORT` (JetStream) or
   * `redis://HOST:PORT` (Redis Streams). Its client is loaded only when this is given.
   */
  broker?: string
  /** What the names of the broker's streams (NATS) or keys (Redis) start with; queues are the streams or keys with it. @default 'FACET_Q_' for NATS, 'facet:queue:' for Redis */
  prefix?: string
  /** How many claims a message gets; when a claim of the last one fails (released or timed out) it moves to `dead/`. @default 3 */
  maxClaims?: number
  /** A claimed message not acknowledged within this time goes back to the queue as a failed claim; 0 disables. @default 0 */
  claimTimeoutMs?: number
  /** The largest message, in bytes; bigger writes fail with `EFBIG` (a broker's own lower limit wins). @default 8 MiB */
  maxMessageBytes?: number
  /** How long a broker call may take before it fails with `EAGAIN`. @default 5000 */
  brokerTimeoutMs?: number
}

const EMPTY = new Uint8Array(0)

/** Makes the backend the options name; broker clients are imported only by the backend that uses them. */
function backendFor(options: QueueOptions, limits: QueueLimits): QueueBackend {
  const timeoutMs = options.brokerTimeoutMs ?? 5000
  if (options.broker !== undefined && options.dir !== undefined) throw new Error('queueView: give either dir or broker, not both')
  if (options.dir !== undefined) return new FolderBackend(options.dir, limits)
  const url = options.broker
  if (url === undefined) throw new Error('queueView: give dir (a host folder) or broker (nats://… or redis://…)')
  if (/^nats:\/\//.test(url)) return new NatsBackend(url, options.prefix ?? 'FACET_Q_', limits, timeoutMs)
  if (/^rediss?:\/\//.test(url)) return new RedisBackend(url, options.prefix ?? 'facet:queue:', limits, timeoutMs)
  throw new Error(`queueView: broker '${url}' is neither nats:// nor redis://`)
}

/** A message being written: its node, and whether it was enqueued or removed (then its flush does nothing). */
interface Incoming {
  readonly node: VNode
  done: boolean
}

/** The nodes of one mounted queue view; state lives in the backend, the only per-view memory is messages being written. */
class QueueTree {
  /** Messages being written, by `queue/name`; visible to lookup until flushed. */
  readonly incoming = new Map<string, Incoming>()
  /** The queue and state of each folder's capabilities, for moves between folders. */
  private readonly folders = new WeakMap<DirCapabilities, { queue: string; state: State }>()
  /** Each folder's node, made once, so the pages of one listing come from one answer. */
  private readonly folderNodes = new Map<string, VNode>()

  constructor(
    readonly backend: QueueBackend,
    readonly limits: QueueLimits,
  ) {}

  root(): VNode {
    const { backend } = this
    return dirFrom({
      setattr: () => {},
      lookup: async name => (!name.startsWith('.') && (await backend.hasQueue(name)) ? this.folder(name, 'ready') : undefined),
      readdir: async () => (await backend.queues()).map(name => ({ name, kind: 'dir' as const })),
      mkdir: async name => {
        checkUserName('queue', name)
        await backend.createQueue(name)
        return this.folder(name, 'ready')
      },
      rmdir: async name => {
        await backend.removeQueue(name)
        for (const state of STATES) this.folderNodes.delete(`${name}/${state}`)
      },
    })
  }

  /**
   * A queue folder (its ready messages plus `claimed/` and `dead/`), or one of those two.
   * Creating a file enqueues; `rm` acknowledges; `mv` between the folders claims,
   * releases, or retries a dead letter.
   */
  folder(queue: string, state: State): VNode {
    const made = this.folderNodes.get(`${queue}/${state}`)
    if (made) return made
    const { backend } = this
    const caps: DirCapabilities = {
      setattr: () => {},
      lookup: async name => {
        if (state === 'ready' && (name === 'claimed' || name === 'dead')) return this.folder(queue, name)
        if (state === 'ready') {
          const incoming = this.incoming.get(`${queue}/${name}`)
          if (incoming) return incoming.node
        }
        const info = await backend.find(queue, state, name)
        return info && this.message(queue, state, info)
      },
      readdir: async () => {
        const entries: DirEntry[] = state === 'ready' ? [{ name: 'claimed', kind: 'dir' }, { name: 'dead', kind: 'dir' }] : []
        for (const info of await backend.list(queue, state)) entries.push({ name: info.name, kind: 'file', node: this.message(queue, state, info) })
        return entries
      },
      create: name => {
        if (state !== 'ready') throw vfsError('EPERM', `enqueue by creating a file in the queue folder, not in ${state}/`)
        checkUserName('message', name)
        const incoming = this.incomingNode(queue, name)
        this.incoming.set(`${queue}/${name}`, incoming)
        return incoming.node
      },
      unlink: async name => {
        const key = `${queue}/${name}`
        const incoming = this.incoming.get(key)
        if (incoming && state === 'ready') {
          incoming.done = true
          this.incoming.delete(key)
          return
        }
        await backend.ack(queue, state, name)
      },
      rename: async (name, dest, newName) => {
        const to = this.folders.get(dest)
        if (to?.queue !== queue) throw vfsError('EXDEV', 'a message moves only within its queue')
        if (newName !== name) throw vfsError('EPERM', 'a message keeps its name when it moves')
        const move = `${state}>${to.state}`
        if (move === 'ready>claimed') await backend.claim(queue, name)
        else if (move === 'claimed>ready') await backend.release(queue, name)
        else if (move === 'dead>ready') await backend.retry(queue, name)
        else throw vfsError('EPERM', `a message moves ready → claimed (claim), claimed → ready (release) or dead → ready (retry), not ${state} → ${to.state}`)
      },
    }
    this.folders.set(caps, { queue, state })
    const node = dirFrom(caps)
    this.folderNodes.set(`${queue}/${state}`, node)
    return node
  }

  /** An enqueued message: read-only; `cat` peeks at it and never consumes it. */
  message(queue: string, state: State, info: MessageInfo): VNode {
    return fileFrom({
      attributes: { size: info.size, mtimeMs: info.timeMs },
      setattr: () => {},
      read: () => this.backend.read(queue, state, info.name),
      readOnlyReason: 'an enqueued message cannot be changed; remove it and enqueue a new one',
    })
  }

  /** A message being written: buffered in memory (one buffer for every open of it), enqueued on the first flush that has content. */
  incomingNode(queue: string, name: string): Incoming {
    const max = this.limits.maxBytes
    const key = `${queue}/${name}`
    const createdMs = Date.now()
    let buf = Buffer.alloc(0)
    let len = 0
    const open = (): FileHandle => {
      let refused = false
      let dirty = false
      const grow = (size: number) => {
        if (size <= buf.length) return
        const next = Buffer.alloc(Math.max(size, buf.length * 2, 4096))
        buf.copy(next, 0, 0, len)
        buf = next
      }
      return {
        read: (offset, length) => (offset >= len ? EMPTY : buf.subarray(offset, Math.min(len, offset + length))),
        write: (offset, data) => {
          const end = offset + data.length
          if (end > max) {
            refused = true
            throw tooBig(max)
          }
          grow(end)
          buf.set(data, offset)
          len = Math.max(len, end)
          dirty = true
          return data.length
        },
        truncate: size => {
          if (size > max) throw tooBig(max)
          grow(size)
          buf.fill(0, Math.min(size, len), len)
          len = size
          dirty = true
        },
        flush: async () => {
          if (refused) throw tooBig(max)
          if (!dirty || incoming.done) return
          await this.backend.enqueue(queue, name, buf.subarray(0, len))
          dirty = false
          incoming.done = true
          if (this.incoming.get(key) === incoming) this.incoming.delete(key)
        },
        release: () => {
          if (this.incoming.get(key) === incoming) this.incoming.delete(key)
        },
      }
    }
    const incoming: Incoming = {
      node: fileFrom({ attributes: () => ({ mode: 0o644, size: len, mtimeMs: createdMs }), setattr: () => {}, open }),
      done: false,
    }
    return incoming
  }
}

/**
 * Durable named queues as folders: a file per message, kept in a host folder
 * (`{ dir }`), a NATS JetStream server or a Redis server (`{ broker }`).
 *
 * - `mkdir /q/jobs` makes a queue; `rmdir` removes an empty one.
 * - Creating a file enqueues it, once written and closed; `cat` peeks.
 * - `mv /q/jobs/m1 /q/jobs/claimed/` claims it: exactly one of two racing consumers wins, the other gets `ENOENT`.
 * - `rm` acknowledges (in the queue or in `claimed/`).
 * - `mv /q/jobs/claimed/m1 /q/jobs/` releases a claim; the claim that uses up `maxClaims` sends it to `dead/` instead.
 * - Messages survive a restart of FacetFS (and of the broker, as far as the broker persists them).
 */
export const queueView = defineView((options: QueueOptions): View => {
  const limits: QueueLimits = {
    maxClaims: options.maxClaims ?? 3,
    claimTimeoutMs: options.claimTimeoutMs ?? 0,
    maxBytes: options.maxMessageBytes ?? 8 * 1024 * 1024,
  }
  const backend = backendFor(options, limits)
  const tree = new QueueTree(backend, limits)
  return {
    name: 'queue',
    root: tree.root(),
    setup(ctx) {
      backend.attach({ emit: change => ctx.changes.emit(change), logger: ctx.logger })
    },
    dispose: () => backend.close(),
    stats: () => ({ '/': { backend: backend.kind, ...backend.stats(), incoming: tree.incoming.size } }),
  }
})

export default queueView
