import { vfsError } from '../vfs/errors.ts'
import type { Mount, ViewStats } from '../vfs/mounts.ts'
import type {
  Attr,
  DirEntry,
  DirPage,
  FileHandle,
  MaybePromise,
  NodeContext,
  NodeGetattr,
  NodeLookup,
  NodeOpen,
  NodeReaddir,
  NodeReadlink,
  NodeSetup,
  OpContext,
  PageRequest,
  VNode,
} from '../vfs/node.ts'
import { can } from '../vfs/node.ts'
import { checkName } from '../vfs/path.ts'

/**
 * A view plugin: a named mount whose tree is built from {@link dir}, {@link file} and
 * {@link symlink}. Its collections start watching when the router mounts it (the root
 * `dir()` sets them up); `setup(ctx)` and `dispose()` are for what the view holds itself.
 */
export interface View extends Mount {
  /** A kebab-case name, e.g. `'kanban'`; the router refuses any other. */
  readonly name: string
  readonly root: VNode
}

/**
 * Declares a view plugin: a factory of views or a view. Returns its argument; it exists
 * for types, like Vite's `defineConfig`.
 *
 * ```ts
 * export default defineView((opts: { greeting: string }) => ({
 *   name: 'hello',
 *   root: dir({ 'hello.txt': file(() => opts.greeting + '\n') }),
 * }))
 * ```
 *
 * @typeParam T - the view, or the factory that makes one from its options; kept as it is, so callers see the factory's own option type
 */
export function defineView<T extends View | ((...args: never[]) => View)>(view: T): T {
  return view
}

/** File content: text (UTF-8) or bytes. */
export type Content = string | Uint8Array

/** Options for {@link file}. */
export interface FileOptions {
  /** Permission bits. @default 0o444 */
  mode?: number
  /** Modification time in milliseconds; rendered content with no time gets the time its rendering last changed. */
  mtimeMs?: number | (() => number)
  /**
   * A value that changes whenever the content does (a counter, an `updatedAt`): the
   * content is rendered once per version, and `stat`, `open` and every read share that
   * one rendering. Without it a rendering is reused for `ttlMs`.
   */
  version?: () => unknown
  /** How long a rendering serves `stat` and `open` when there is no `version`, in milliseconds. @default 1000 */
  ttlMs?: number
}

const EMPTY = new Uint8Array(0)
/** When the views were loaded: the time of a node that reports none. */
export const startedMs = Date.now()

function toBytes(content: Content): Uint8Array {
  return typeof content === 'string' ? Buffer.from(content) : content
}

interface Rendering {
  bytes: Uint8Array
  version: unknown
  atMs: number
  changedMs: number
}

/**
 * A generated file: rendered once per version (or per `ttlMs`), so `stat` and `cat`
 * always agree, and opened with direct I/O, so a reader gets the whole rendering it
 * opened whatever size the kernel saw before.
 */
class RenderedFile implements VNode, NodeGetattr, NodeOpen {
  readonly kind = 'file' as const
  private last: Rendering | undefined
  private rendering: Promise<Rendering> | undefined

  constructor(
    private readonly render: () => MaybePromise<Content>,
    private readonly options: FileOptions,
  ) {}

  private current(): Promise<Rendering> {
    const version = this.options.version?.()
    const last = this.last
    const fresh = last && (this.options.version ? Object.is(last.version, version) : Date.now() - last.atMs < (this.options.ttlMs ?? 1000))
    if (fresh) return Promise.resolve(last)
    // one rendering at a time: a stat and an open arriving together share it
    this.rendering ??= (async () => {
      try {
        const bytes = toBytes(await this.render())
        const same = last !== undefined && Buffer.compare(last.bytes, bytes) === 0
        const now = Date.now()
        this.last = { bytes, version, atMs: now, changedMs: same ? last.changedMs : last ? now : startedMs }
        return this.last
      } finally {
        this.rendering = undefined
      }
    })()
    return this.rendering
  }

  async getattr(ctx: OpContext): Promise<Attr> {
    const r = await this.current()
    const m = this.options.mtimeMs
    const t = typeof m === 'function' ? m() : (m ?? r.changedMs)
    return { mode: this.options.mode ?? 0o444, size: r.bytes.length, uid: ctx.uid, gid: ctx.gid, atimeMs: t, mtimeMs: t, ctimeMs: t }
  }

  async open(): Promise<FileHandle> {
    const { bytes } = await this.current()
    return {
      directIo: true,
      read: (offset, length) => (offset >= bytes.length ? EMPTY : bytes.subarray(offset, offset + length)),
    }
  }
}

class FixedFile implements VNode, NodeGetattr, NodeOpen {
  readonly kind = 'file' as const
  private readonly bytes: Uint8Array
  constructor(
    content: Content,
    private readonly options: FileOptions,
  ) {
    this.bytes = toBytes(content)
  }

  getattr(ctx: OpContext): Attr {
    const m = this.options.mtimeMs
    const t = typeof m === 'function' ? m() : (m ?? startedMs)
    return { mode: this.options.mode ?? 0o444, size: this.bytes.length, uid: ctx.uid, gid: ctx.gid, atimeMs: t, mtimeMs: t, ctimeMs: t }
  }

  open(): FileHandle {
    const bytes = this.bytes
    return { read: (offset, length) => (offset >= bytes.length ? EMPTY : bytes.subarray(offset, offset + length)) }
  }
}

/**
 * A read-only file. `content` is fixed text or bytes, or a function rendering them:
 * once per `version` (or per `ttlMs`, 1 s by default), the one rendering serving
 * `stat`, `open` and reads, so `stat` reports the exact byte length of what `cat` returns.
 */
export function file(content: Content | (() => MaybePromise<Content>), options: FileOptions = {}): VNode {
  return typeof content === 'function' ? new RenderedFile(content, options) : new FixedFile(content, options)
}

/** A symlink to `target`. */
export function symlink(target: string): VNode {
  const node: VNode & NodeReadlink & NodeGetattr = {
    kind: 'symlink',
    readlink: () => target,
    getattr: ctx => ({ mode: 0o777, size: Buffer.byteLength(target), uid: ctx.uid, gid: ctx.gid, atimeMs: startedMs, mtimeMs: startedMs, ctimeMs: startedMs }),
  }
  return node
}

/** The children of a {@link dir}: a fixed record of nodes, or a function listing them. */
export type Children = Record<string, VNode> | (() => MaybePromise<Record<string, VNode>>)

/** Options for {@link dir}. */
export interface DirOptions {
  /** Permission bits. @default 0o555 */
  mode?: number
}

class StaticDir implements VNode, NodeGetattr, NodeLookup, NodeReaddir, NodeSetup {
  readonly kind = 'dir' as const
  constructor(
    private readonly children: Children,
    private readonly options: DirOptions,
  ) {}

  /** Entries of static children, built (and their names checked) on first use. */
  private listed: DirEntry[] | undefined
  /** Static children by name, for lookups that do not depend on the object's shape. */
  private byName: Map<string, VNode> | undefined

  private async all(): Promise<Record<string, VNode>> {
    const children = typeof this.children === 'function' ? await this.children() : this.children
    for (const name of Object.keys(children)) checkName(name)
    if (typeof this.children === 'function') this.live.seen(children)
    return children
  }

  /** The children set up with this folder (see {@link NodeSetup}): all static ones, or those a function returned. */
  private readonly live = new LiveChildren()

  /** Sets up the children that take part in the lifecycle: static ones now, a function's when it first returns them. */
  setup(ctx: NodeContext): void {
    this.live.setup(ctx)
    if (typeof this.children !== 'function') this.live.seen(this.children)
  }

  dispose(): Promise<void> {
    return this.live.dispose()
  }

  stats(): Record<string, ViewStats> {
    return this.live.stats()
  }

  private staticEntries(children: Record<string, VNode>): DirEntry[] {
    if (!this.listed) {
      for (const name of Object.keys(children)) checkName(name)
      this.listed = Object.entries(children).map(([name, node]) => ({ name, kind: node.kind }))
      this.byName = new Map(Object.entries(children))
    }
    return this.listed
  }

  getattr(ctx: OpContext): Attr {
    return { mode: this.options.mode ?? 0o555, size: 4096, uid: ctx.uid, gid: ctx.gid, atimeMs: startedMs, mtimeMs: startedMs, ctimeMs: startedMs }
  }

  /** Static children answer synchronously, with their names checked once; a function is called and its names checked each time. */
  lookup(name: string): MaybePromise<VNode | undefined> {
    if (typeof this.children !== 'function') {
      if (!this.byName) this.staticEntries(this.children)
      return this.byName!.get(name)
    }
    return this.all().then(children => ownChild(children, name))
  }

  async readdir(page: PageRequest): Promise<DirPage> {
    const entries: DirEntry[] =
      typeof this.children === 'function'
        ? Object.entries(await this.all()).map(([name, node]) => ({ name, kind: node.kind }))
        : this.staticEntries(this.children)
    const start = page.cursor === undefined ? 0 : Number(page.cursor)
    if (!Number.isSafeInteger(start) || start < 0) throw vfsError('EINVAL', 'bad cursor')
    const slice = entries.slice(start, start + page.limit)
    const next = start + slice.length
    return next < entries.length ? { entries: slice, cursor: String(next) } : { entries: slice }
  }
}

/** The children of a folder set up with it: each is disposed when the folder is, or when a function of children stops returning it. */
export class LiveChildren {
  private ctx: NodeContext | undefined
  private readonly live = new Map<VNode, { node: VNode & NodeSetup; abort: AbortController }>()

  setup(ctx: NodeContext): void {
    this.ctx = ctx
  }

  async dispose(): Promise<void> {
    this.ctx = undefined
    const all = [...this.live.values()]
    this.live.clear()
    for (const { node, abort } of all) {
      abort.abort()
      await node.dispose()
    }
  }

  stats(): Record<string, ViewStats> {
    const out: Record<string, ViewStats> = {}
    for (const { node } of this.live.values()) Object.assign(out, node.stats?.())
    return out
  }

  /** Sets up the children not seen before and disposes those no longer among `children`; nothing before `setup`. */
  seen(children: Record<string, VNode>): void {
    const ctx = this.ctx
    if (!ctx) return
    const now = new Set(Object.values(children))
    for (const [child, { node, abort }] of this.live) {
      if (now.has(child)) continue
      this.live.delete(child)
      abort.abort()
      const failed = (err: unknown) => ctx.logger.warn({ err, path: ctx.path }, 'disposing a view node failed')
      try {
        void Promise.resolve(node.dispose()).catch(failed)
      } catch (err) {
        failed(err)
      }
    }
    for (const [name, child] of Object.entries(children)) {
      if (this.live.has(child) || !can.setup(child)) continue
      const abort = new AbortController()
      const path = ctx.path === '/' ? '/' + name : `${ctx.path}/${name}`
      this.live.set(child, { node: child, abort })
      child.setup({ ...ctx, path, signal: AbortSignal.any([ctx.signal, abort.signal]) })
    }
  }
}

function ownChild(children: Record<string, VNode>, name: string): VNode | undefined {
  return Object.prototype.hasOwnProperty.call(children, name) ? children[name] : undefined
}

/** A read-only directory of named children. */
export function dir(children: Children, options: DirOptions = {}): VNode {
  return new StaticDir(children, options)
}
