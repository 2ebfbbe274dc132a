import { vfsError } from '../../src/vfs/errors.ts'
import type {
  Attr,
  DirEntry,
  DirPage,
  FileHandle,
  NodeCreate,
  NodeGetattr,
  NodeLookup,
  NodeMkdir,
  NodeOpen,
  NodeReaddir,
  NodeRename,
  NodeRmdir,
  NodeSetattr,
  NodeUnlink,
  OpContext,
  PageRequest,
  VNode,
} from '../../src/vfs/node.ts'
import { defineView, type View } from '../../src/views/view.ts'
import { checkUserName, tooBig, type MessageInfo, type QueueBackend, type QueueLimits, type State } from './backend.ts'
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
const startedMs = Date.now()

function attr(ctx: OpContext, mode: number, size: number, t: number): Attr {
  return { mode, size, uid: ctx.uid, gid: ctx.gid, atimeMs: t, mtimeMs: t, ctimeMs: t }
}

function page(entries: DirEntry[], req: PageRequest): DirPage {
  const start = req.cursor === undefined ? 0 : Number(req.cursor)
  if (!Number.isSafeInteger(start) || start < 0) throw vfsError('EINVAL', 'bad cursor')
  const slice = entries.slice(start, start + req.limit)
  const next = start + slice.length
  return next < entries.length ? { entries: slice, cursor: String(next) } : { entries: slice }
}

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

/** The nodes of one mounted queue view; state lives in the backend, the only per-view memory is messages being written. */
class QueueTree {
  /** Messages being written, by `queue/name`; visible to lookup until flushed. */
  readonly incoming = new Map<string, VNode>()

  constructor(
    readonly backend: QueueBackend,
    readonly limits: QueueLimits,
  ) {}

  root(): VNode {
    const { backend } = this
    const node: VNode & NodeGetattr & NodeLookup & NodeReaddir & NodeMkdir & NodeRmdir & NodeSetattr = {
      kind: 'dir',
      getattr: ctx => attr(ctx, 0o755, 4096, startedMs),
      setattr: () => {},
      lookup: async name => (!name.startsWith('.') && (await backend.hasQueue(name)) ? this.folder(name, 'ready') : undefined),
      readdir: async req => page((await backend.queues()).map(name => ({ name, kind: 'dir' as const })), req),
      mkdir: async name => {
        checkUserName('queue', name)
        await backend.createQueue(name)
        return this.folder(name, 'ready')
      },
      rmdir: name => backend.removeQueue(name),
    }
    return node
  }

  /**
   * A queue folder (its ready messages plus `claimed/` and `dead/`), or one of those two.
   * Creating a file enqueues; `rm` acknowledges; `mv` between the folders claims,
   * releases, or retries a dead letter.
   */
  folder(queue: string, state: State): VNode {
    const { backend } = this
    const node: FolderNode = {
      kind: 'dir',
      queue,
      state,
      tree: this,
      getattr: ctx => attr(ctx, state === 'ready' ? 0o755 : 0o755, 4096, startedMs),
      setattr: () => {},
      lookup: async name => {
        if (state === 'ready' && (name === 'claimed' || name === 'dead')) return this.folder(queue, name)
        if (state === 'ready') {
          const incoming = this.incoming.get(`${queue}/${name}`)
          if (incoming) return incoming
        }
        const info = await backend.find(queue, state, name)
        return info && this.message(queue, state, info)
      },
      readdir: async req => {
        const entries: DirEntry[] = state === 'ready' ? [{ name: 'claimed', kind: 'dir' }, { name: 'dead', kind: 'dir' }] : []
        if (req.cursor === undefined || !this.listed.has(`${queue}/${state}`)) this.listed.set(`${queue}/${state}`, await backend.list(queue, state))
        for (const info of this.listed.get(`${queue}/${state}`)!) entries.push({ name: info.name, kind: 'file', node: this.message(queue, state, info) })
        return page(entries, req)
      },
      create: name => {
        if (state !== 'ready') throw vfsError('EPERM', `enqueue by creating a file in the queue folder, not in ${state}/`)
        checkUserName('message', name)
        const incoming = this.incomingNode(queue, name)
        this.incoming.set(`${queue}/${name}`, incoming)
        return incoming
      },
      unlink: async name => {
        const key = `${queue}/${name}`
        const incoming = this.incoming.get(key) as IncomingNode | undefined
        if (incoming && state === 'ready') {
          incoming.cancelled = true
          this.incoming.delete(key)
          return
        }
        await backend.ack(queue, state, name)
      },
      rename: async (name, newParent, newName) => {
        const to = newParent as Partial<FolderNode>
        if (to.tree !== this || to.queue !== queue) throw vfsError('EXDEV', 'a message moves only within its queue')
        if (newName !== name) throw vfsError('EPERM', 'a message keeps its name when it moves')
        const move = `${state}>${to.state}`
        if (move === 'ready>claimed') await backend.claim(queue, name)
        else if (move === 'claimed>ready') await backend.release(queue, name)
        else if (move === 'dead>ready') await backend.retry(queue, name)
        else throw vfsError('EPERM', `a message moves ready → claimed (claim), claimed → ready (release) or dead → ready (retry), not ${state} → ${to.state}`)
      },
    }
    return node
  }

  /** The last listing of each folder, so the pages of one `readdir` come from one listing. */
  private readonly listed = new Map<string, MessageInfo[]>()

  /** An enqueued message: read-only; `cat` peeks at it and never consumes it. */
  message(queue: string, state: State, info: MessageInfo): VNode {
    const { backend } = this
    const node: VNode & NodeGetattr & NodeOpen & NodeSetattr = {
      kind: 'file',
      getattr: ctx => attr(ctx, 0o444, info.size, info.timeMs),
      setattr: () => {},
      open: async flags => {
        if (flags.write) throw vfsError('EROFS', 'an enqueued message cannot be changed; remove it and enqueue a new one')
        const bytes = await backend.read(queue, state, info.name)
        return {
          directIo: bytes.length !== info.size,
          read: (offset, length) => (offset >= bytes.length ? EMPTY : bytes.subarray(offset, offset + length)),
        }
      },
    }
    return node
  }

  /** A message being written: buffered in memory, enqueued on the first flush that has content. */
  incomingNode(queue: string, name: string): IncomingNode {
    const max = this.limits.maxBytes
    const key = `${queue}/${name}`
    const createdMs = Date.now()
    let buf = Buffer.alloc(0)
    let len = 0
    const node: IncomingNode = {
      kind: 'file',
      cancelled: false,
      getattr: ctx => attr(ctx, 0o644, len, createdMs),
      setattr: () => {},
      open: (): FileHandle => {
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
          getattr: ctx => node.getattr(ctx),
          flush: async () => {
            if (refused) throw tooBig(max)
            if (!dirty || node.cancelled) return
            await this.backend.enqueue(queue, name, buf.subarray(0, len))
            dirty = false
            node.cancelled = true
            if (this.incoming.get(key) === node) this.incoming.delete(key)
          },
          release: () => {
            if (this.incoming.get(key) === node) this.incoming.delete(key)
          },
        }
      },
    }
    return node
  }
}

type FolderNode = VNode &
  NodeGetattr &
  NodeLookup &
  NodeReaddir &
  NodeCreate &
  NodeUnlink &
  NodeRename &
  NodeSetattr & { readonly queue: string; readonly state: State; readonly tree: QueueTree }

type IncomingNode = VNode & NodeGetattr & NodeOpen & NodeSetattr & { cancelled: boolean }

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
