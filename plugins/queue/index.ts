import { randomBytes } from 'node:crypto'
import { constants as fsc, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { link, lstat, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile, type FileHandle as FsHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { isVfsError, vfsError } from '../../src/vfs/errors.ts'
import type { MountHost } from '../../src/vfs/mounts.ts'
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
  OpenFlags,
  PageRequest,
  VNode,
} from '../../src/vfs/node.ts'
import { defineView, type View } from '../../src/views/view.ts'

/** Options for {@link queueView}. */
export interface QueueOptions {
  /** The host folder holding the queues (created when missing); each queue is a sub-folder. */
  dir: string
  /** How many claims a message gets; when a claim of the last one fails (released or timed out) it moves to `dead/`. @default 3 */
  maxClaims?: number
  /** A claimed message not acknowledged within this time goes back to the queue as a failed claim; 0 disables. @default 0 */
  claimTimeoutMs?: number
  /** The largest message, in bytes; bigger writes fail with `EFBIG`. @default 8 MiB */
  maxMessageBytes?: number
}

type State = 'ready' | 'claimed' | 'dead'
const STATES: readonly State[] = ['ready', 'claimed', 'dead']

interface Meta {
  claims: number
  enqueuedAtMs: number
  claimedAtMs?: number
}

const EMPTY = new Uint8Array(0)

function attrOf(st: { mode: number; size: number; atimeMs: number; mtimeMs: number; ctimeMs: number }, ctx: OpContext, mode: number): Attr {
  return { mode, size: st.size, uid: ctx.uid, gid: ctx.gid, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs }
}

function dirAttr(ctx: OpContext, t: number): Attr {
  return { mode: 0o755, size: 4096, uid: ctx.uid, gid: ctx.gid, atimeMs: t, mtimeMs: t, ctimeMs: t }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch {
    return false
  }
}

function page(entries: DirEntry[], req: PageRequest): DirPage {
  const start = req.cursor === undefined ? 0 : Number(req.cursor)
  if (!Number.isSafeInteger(start) || start < 0) throw vfsError('EINVAL', 'bad cursor')
  const slice = entries.slice(start, start + req.limit)
  const next = start + slice.length
  return next < entries.length ? { entries: slice, cursor: String(next) } : { entries: slice }
}

/** The on-disk store of all queues: `<dir>/<queue>/{ready,claimed,dead,.meta,.incoming}/<message>`. */
class QueueStore {
  host: MountHost | undefined
  readonly maxClaims: number
  readonly claimTimeoutMs: number
  readonly maxBytes: number
  /** Messages being written, by queue and name; visible to lookup until flushed. */
  readonly incoming = new Map<string, IncomingNode>()
  readonly stats = { enqueued: 0, claimed: 0, acked: 0, released: 0, dead: 0 }

  constructor(readonly dir: string, options: QueueOptions) {
    this.maxClaims = options.maxClaims ?? 3
    this.claimTimeoutMs = options.claimTimeoutMs ?? 0
    this.maxBytes = options.maxMessageBytes ?? 8 * 1024 * 1024
  }

  path(queue: string, state: State | '.meta' | '.incoming', name?: string): string {
    const base = join(this.dir, queue, state)
    return name === undefined ? base : join(base, state === '.meta' ? name + '.json' : name)
  }

  /** Makes the folder and drops half-written messages a killed process left in `.incoming/` (runs once, when the view is made). */
  init(): void {
    mkdirSync(this.dir, { recursive: true })
    for (const e of readdirSync(this.dir, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue
      rmSync(this.path(e.name, '.incoming'), { recursive: true, force: true })
      mkdirSync(this.path(e.name, '.incoming'))
    }
  }

  async queues(): Promise<string[]> {
    const out: string[] = []
    for (const e of await readdir(this.dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory() && !e.name.startsWith('.')) out.push(e.name)
    }
    return out.sort()
  }

  async isQueue(name: string): Promise<boolean> {
    if (name.startsWith('.')) return false
    return exists(this.path(name, 'ready'))
  }

  async createQueue(name: string): Promise<void> {
    if (name.startsWith('.')) throw vfsError('EINVAL', 'queue names cannot start with a dot')
    await mkdir(join(this.dir, name))
    for (const sub of [...STATES, '.meta', '.incoming'] as const) await mkdir(this.path(name, sub), { recursive: true })
  }

  async removeQueue(name: string): Promise<void> {
    for (const s of STATES) if ((await readdir(this.path(name, s))).length > 0) throw vfsError('ENOTEMPTY', `queue '${name}' still holds ${s} messages`)
    await rm(join(this.dir, name), { recursive: true })
  }

  async meta(queue: string, name: string): Promise<Meta> {
    try {
      return JSON.parse(await readFile(this.path(queue, '.meta', name), 'utf8')) as Meta
    } catch {
      return { claims: 0, enqueuedAtMs: Date.now() }
    }
  }

  async setMeta(queue: string, name: string, meta: Meta): Promise<void> {
    const tmp = this.path(queue, '.meta', `${name}.${randomBytes(4).toString('hex')}.tmp`)
    await writeFile(tmp, JSON.stringify(meta))
    await rename(tmp, this.path(queue, '.meta', name))
  }

  /** Where message `name` of `queue` is, if anywhere. */
  async stateOf(queue: string, name: string): Promise<State | undefined> {
    for (const s of STATES) if (await exists(this.path(queue, s, name))) return s
    return undefined
  }

  /** Messages in `state`, oldest first. */
  async messages(queue: string, state: State): Promise<string[]> {
    const names = await readdir(this.path(queue, state)).catch(() => [] as string[])
    const withTimes = await Promise.all(names.map(async n => ({ n, t: (await stat(this.path(queue, state, n)).catch(() => undefined))?.mtimeMs ?? 0 })))
    return withTimes.sort((a, b) => a.t - b.t || (a.n < b.n ? -1 : 1)).map(x => x.n)
  }

  /** Writes a new message durably and makes it visible at once (write, fsync, link into `ready/`). */
  async enqueue(queue: string, name: string, data: Uint8Array): Promise<void> {
    if (await this.stateOf(queue, name)) throw vfsError('EEXIST', `message '${name}' is already in queue '${queue}'`)
    const tmp = this.path(queue, '.incoming', `${name}.${randomBytes(6).toString('hex')}`)
    const fh = await open(tmp, 'wx')
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await this.setMeta(queue, name, { claims: 0, enqueuedAtMs: Date.now() })
    try {
      await link(tmp, this.path(queue, 'ready', name))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw vfsError('EEXIST', `message '${name}' is already in queue '${queue}'`)
      throw err
    } finally {
      await unlink(tmp).catch(() => {})
    }
    this.stats.enqueued++
  }

  /**
   * Moves a message between states. The move itself is one `rename(2)` of the host
   * folder, so two consumers claiming the same message cannot both win: the second
   * finds it gone (`ENOENT`).
   */
  async move(queue: string, name: string, from: State, to: State): Promise<State> {
    const meta = await this.meta(queue, name)
    let dest = to
    if (from === 'claimed' && to === 'ready') {
      this.stats.released++
      if (meta.claims >= this.maxClaims) dest = 'dead'
    }
    try {
      await rename(this.path(queue, from, name), this.path(queue, dest, name))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw vfsError('ENOENT', `message '${name}' is no longer ${from}; another consumer took it`)
      throw err
    }
    if (dest === 'claimed') {
      meta.claims++
      meta.claimedAtMs = Date.now()
      this.stats.claimed++
    } else if (from === 'dead' && dest === 'ready') {
      meta.claims = 0
    }
    if (dest === 'dead') this.stats.dead++
    if (dest !== 'claimed') delete meta.claimedAtMs
    await this.setMeta(queue, name, meta)
    return dest
  }

  async ack(queue: string, name: string, state: State): Promise<void> {
    try {
      await unlink(this.path(queue, state, name))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw vfsError('ENOENT')
      throw err
    }
    await unlink(this.path(queue, '.meta', name)).catch(() => {})
    this.stats.acked++
  }

  /** Returns timed-out claims to the queue (or to `dead/` on the last claim). */
  async sweep(queue: string): Promise<void> {
    if (this.claimTimeoutMs <= 0) return
    const now = Date.now()
    for (const name of await readdir(this.path(queue, 'claimed')).catch(() => [] as string[])) {
      const meta = await this.meta(queue, name)
      if (meta.claimedAtMs !== undefined && now - meta.claimedAtMs >= this.claimTimeoutMs) {
        try {
          const dest = await this.move(queue, name, 'claimed', 'ready')
          const path = dest === 'ready' ? `/${queue}/${name}` : `/${queue}/${dest}/${name}`
          this.host?.emit({ type: 'rename', path, oldPath: `/${queue}/claimed/${name}`, kind: 'file' })
        } catch (err) {
          if (!isVfsError(err, 'ENOENT')) throw err
        }
      }
    }
  }
}

/** The root: one folder per queue; `mkdir` makes a queue, `rmdir` removes an empty one. */
class QueuesRoot implements VNode, NodeGetattr, NodeLookup, NodeReaddir, NodeMkdir, NodeRmdir, NodeSetattr {
  readonly kind = 'dir' as const
  private readonly startedMs = Date.now()
  constructor(private readonly store: QueueStore) {}

  getattr(ctx: OpContext): Attr {
    return dirAttr(ctx, this.startedMs)
  }

  setattr(): void {}

  async lookup(name: string): Promise<VNode | undefined> {
    return (await this.store.isQueue(name)) ? new QueueFolder(this.store, name, 'ready') : undefined
  }

  async readdir(req: PageRequest): Promise<DirPage> {
    return page((await this.store.queues()).map(name => ({ name, kind: 'dir' as const })), req)
  }

  async mkdir(name: string): Promise<VNode> {
    await this.store.createQueue(name)
    return new QueueFolder(this.store, name, 'ready')
  }

  async rmdir(name: string): Promise<void> {
    await this.store.removeQueue(name)
  }
}

/**
 * A queue folder (its ready messages plus `claimed/` and `dead/`), or one of those two.
 * Creating a file enqueues; `rm` acknowledges; `mv` between the folders claims,
 * releases, or dead-letters.
 */
class QueueFolder implements VNode, NodeGetattr, NodeLookup, NodeReaddir, NodeCreate, NodeUnlink, NodeRename, NodeSetattr {
  readonly kind = 'dir' as const
  constructor(
    readonly store: QueueStore,
    readonly queue: string,
    readonly state: State,
  ) {}

  async getattr(ctx: OpContext): Promise<Attr> {
    const st = await stat(this.store.path(this.queue, this.state)).catch(() => undefined)
    if (!st) throw vfsError('ENOENT')
    return dirAttr(ctx, st.mtimeMs)
  }

  setattr(): void {}

  async lookup(name: string): Promise<VNode | undefined> {
    if (this.state === 'ready' && (name === 'claimed' || name === 'dead')) return new QueueFolder(this.store, this.queue, name)
    const incoming = this.store.incoming.get(`${this.queue}/${name}`)
    if (incoming && this.state === 'ready') return incoming
    if (await exists(this.store.path(this.queue, this.state, name))) return new MessageNode(this.store, this.queue, this.state, name)
    return undefined
  }

  async readdir(req: PageRequest): Promise<DirPage> {
    if (req.cursor === undefined) await this.store.sweep(this.queue)
    const entries: DirEntry[] = this.state === 'ready' ? [{ name: 'claimed', kind: 'dir' }, { name: 'dead', kind: 'dir' }] : []
    for (const name of await this.store.messages(this.queue, this.state)) entries.push({ name, kind: 'file' })
    return page(entries, req)
  }

  create(name: string): VNode {
    if (this.state !== 'ready') throw vfsError('EPERM', `enqueue by creating a file in the queue folder, not in ${this.state}/`)
    if (name.startsWith('.')) throw vfsError('EINVAL', 'message names cannot start with a dot')
    const node = new IncomingNode(this.store, this.queue, name)
    this.store.incoming.set(`${this.queue}/${name}`, node)
    return node
  }

  async unlink(name: string): Promise<void> {
    const key = `${this.queue}/${name}`
    const incoming = this.store.incoming.get(key)
    if (incoming && this.state === 'ready') {
      incoming.cancelled = true
      this.store.incoming.delete(key)
      return
    }
    await this.store.ack(this.queue, name, this.state)
  }

  async rename(name: string, newParent: VNode, newName: string): Promise<void> {
    if (!(newParent instanceof QueueFolder) || newParent.store !== this.store || newParent.queue !== this.queue) {
      throw vfsError('EXDEV', 'a message moves only within its queue')
    }
    if (newName !== name) throw vfsError('EPERM', 'a message keeps its name when it moves')
    if (newParent.state === this.state) throw vfsError('EPERM', 'the message is already there')
    await this.store.move(this.queue, name, this.state, newParent.state)
  }
}

/** An enqueued message: read-only; `cat` peeks at it. */
class MessageNode implements VNode, NodeGetattr, NodeOpen, NodeSetattr {
  readonly kind = 'file' as const
  constructor(
    private readonly store: QueueStore,
    private readonly queue: string,
    private readonly state: State,
    private readonly name: string,
  ) {}

  private get file(): string {
    return this.store.path(this.queue, this.state, this.name)
  }

  async getattr(ctx: OpContext): Promise<Attr> {
    const st = await stat(this.file).catch(() => undefined)
    if (!st) throw vfsError('ENOENT')
    return attrOf(st, ctx, 0o444)
  }

  setattr(): void {}

  async open(flags: OpenFlags): Promise<FileHandle> {
    if (flags.write) throw vfsError('EROFS', 'an enqueued message cannot be changed; remove it and enqueue a new one')
    let fh: FsHandle
    try {
      fh = await open(this.file, fsc.O_RDONLY | fsc.O_NOFOLLOW)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw vfsError('ENOENT')
      throw err
    }
    return {
      read: async (offset, length) => {
        const buf = Buffer.alloc(length)
        const { bytesRead } = await fh.read(buf, 0, length, offset)
        return bytesRead === 0 ? EMPTY : buf.subarray(0, bytesRead)
      },
      release: () => fh.close(),
    }
  }
}

/** A message being written: buffered in memory, enqueued durably on the first flush that has content. */
class IncomingNode implements VNode, NodeGetattr, NodeOpen, NodeSetattr {
  readonly kind = 'file' as const
  cancelled = false
  private buf = Buffer.alloc(0)
  private len = 0
  private readonly createdMs = Date.now()

  constructor(
    private readonly store: QueueStore,
    private readonly queue: string,
    private readonly name: string,
  ) {}

  getattr(ctx: OpContext): Attr {
    return attrOf({ mode: 0o644, size: this.len, atimeMs: this.createdMs, mtimeMs: this.createdMs, ctimeMs: this.createdMs }, ctx, 0o644)
  }

  setattr(): void {}

  open(): FileHandle {
    let tooBig = false
    let dirty = false
    return {
      read: (offset, length) => (offset >= this.len ? EMPTY : this.buf.subarray(offset, Math.min(this.len, offset + length))),
      write: (offset, data) => {
        const end = offset + data.length
        if (end > this.store.maxBytes) {
          tooBig = true
          throw vfsError('EFBIG', `a message is limited to ${this.store.maxBytes} bytes`)
        }
        if (end > this.buf.length) {
          const next = Buffer.alloc(Math.max(end, this.buf.length * 2, 4096))
          this.buf.copy(next, 0, 0, this.len)
          this.buf = next
        }
        this.buf.set(data, offset)
        this.len = Math.max(this.len, end)
        dirty = true
        return data.length
      },
      truncate: size => {
        if (size > this.store.maxBytes) throw vfsError('EFBIG')
        if (size > this.buf.length) {
          const next = Buffer.alloc(size)
          this.buf.copy(next, 0, 0, this.len)
          this.buf = next
        }
        this.buf.fill(0, Math.min(size, this.len), this.len)
        this.len = size
        dirty = true
      },
      getattr: ctx => this.getattr(ctx),
      flush: async () => {
        if (tooBig) throw vfsError('EFBIG', `a message is limited to ${this.store.maxBytes} bytes; nothing was enqueued`)
        if (!dirty || this.cancelled) return
        await this.store.enqueue(this.queue, this.name, this.buf.subarray(0, this.len))
        dirty = false
        this.cancelled = true
        this.store.incoming.delete(`${this.queue}/${this.name}`)
      },
      release: () => {
        if (this.store.incoming.get(`${this.queue}/${this.name}`) === this) this.store.incoming.delete(`${this.queue}/${this.name}`)
      },
    }
  }
}

/**
 * Durable named queues as folders, stored in a host folder: a file per message.
 *
 * - `mkdir /q/jobs` makes a queue; `rmdir` removes an empty one.
 * - Creating a file enqueues it (durably, once written and closed); `cat` peeks.
 * - `mv /q/jobs/m1 /q/jobs/claimed/` claims it: exactly one of two racing consumers wins, the other gets `ENOENT`.
 * - `rm` acknowledges (in the queue or in `claimed/`).
 * - `mv /q/jobs/claimed/m1 /q/jobs/` releases a claim; the claim that uses up `maxClaims` sends it to `dead/` instead.
 * - Messages survive a restart: the host folder is the only state.
 */
export const queueView = defineView((options: QueueOptions): View => {
  const store = new QueueStore(options.dir, options)
  store.init()
  const root = new QueuesRoot(store)
  return {
    name: 'queue',
    root,
    attach(host) {
      store.host = host
    },
    stats: () => ({ '/': { ...store.stats, incoming: store.incoming.size } }),
  }
})

export default queueView
