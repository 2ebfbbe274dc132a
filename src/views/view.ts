import { vfsError } from '../vfs/errors.ts'
import type { Mount, MountHost } from '../vfs/mounts.ts'
import type {
  Attr,
  DirEntry,
  DirPage,
  FileHandle,
  MaybePromise,
  NodeGetattr,
  NodeLookup,
  NodeOpen,
  NodeReaddir,
  NodeReadlink,
  OpContext,
  PageRequest,
  VNode,
} from '../vfs/node.ts'
import { checkName } from '../vfs/path.ts'
import { LIFECYCLE, lifecycleNodes, STATIC_CHILDREN, type Lifecycle, type ViewStats } from './lifecycle.ts'

/** A view plugin: a named mount whose tree is built from {@link dir}, {@link file} and {@link symlink}. */
export interface View extends Mount {
  /** A kebab-case name, e.g. `'kanban'`. */
  readonly name: string
  readonly root: VNode
  /** Figures of the view's collections (cache hits, writes, refusals), keyed by folder path; read by `/proc/stats.json`. */
  stats?(): Record<string, ViewStats>
}

/**
 * Declares a view plugin factory. Returns its argument; it exists for types, like Vite's `defineConfig`.
 *
 * ```ts
 * export default defineView((opts: { greeting: string }) => ({
 *   name: 'hello',
 *   root: dir({ 'hello.txt': file(() => opts.greeting + '\n') }),
 * }))
 * ```
 */
export function defineView<Args extends unknown[]>(factory: (...args: Args) => View): (...args: Args) => View {
  return (...args: Args) => withLifecycle(factory(...args))
}

/**
 * Wires a view's collections to its mount: on `attach` each collection in the static
 * part of the tree starts watching its source and reports changes to the host; on
 * `close` it stops. The view's own `attach`/`close` still run. {@link defineView}
 * applies it; call it for a view object made without `defineView`.
 */
export function withLifecycle(view: View): View {
  if ((view as { [LIFECYCLE]?: true })[LIFECYCLE as never]) return view
  const nodes = lifecycleNodes(view.root)
  const own = { attach: view.attach?.bind(view), close: view.close?.bind(view), stats: view.stats?.bind(view) }
  const wired: View = Object.assign(Object.create(Object.getPrototypeOf(view) as object) as View, view, {
    [LIFECYCLE]: true,
    attach(host: MountHost) {
      for (const { path, node } of nodes) node[LIFECYCLE].attach(host, path)
      own.attach?.(host)
    },
    async close() {
      for (const { node } of nodes) await node[LIFECYCLE].close()
      await own.close?.()
    },
    stats() {
      const out: Record<string, ViewStats> = { ...(own.stats?.() ?? {}) }
      for (const { path, node } of nodes) {
        const s = node[LIFECYCLE].stats?.()
        if (s) out[path] = s
      }
      return out
    },
  })
  return wired
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
const startedMs = Date.now()

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

class StaticDir implements VNode, NodeGetattr, NodeLookup, NodeReaddir {
  readonly kind = 'dir' as const
  constructor(
    private readonly children: Children,
    private readonly options: DirOptions,
  ) {}

  get [STATIC_CHILDREN](): Record<string, VNode> | undefined {
    return typeof this.children === 'function' ? undefined : this.children
  }

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

  /**
   * The lifecycle of a folder whose children come from a function: the collections (and
   * other nodes with hooks) it returns are attached when first seen, at their paths, and
   * closed when a later call no longer returns them or the view closes, so they watch
   * their sources like static ones.
   */
  private readonly live = new LiveChildren()

  get [LIFECYCLE](): Lifecycle[typeof LIFECYCLE] | undefined {
    return typeof this.children === 'function' ? this.live.hooks : undefined
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

/** Attaches and closes the hook-carrying nodes a dynamic folder returns (see {@link StaticDir}). */
class LiveChildren {
  private host: MountHost | undefined
  private path = '/'
  private readonly attached = new Map<VNode, Array<VNode & Lifecycle>>()

  readonly hooks: Lifecycle[typeof LIFECYCLE] = {
    attach: (host, path) => {
      this.host = host
      this.path = path
    },
    close: async () => {
      const all = [...this.attached.values()].flat()
      this.attached.clear()
      for (const node of all) await node[LIFECYCLE].close()
    },
  }

  seen(children: Record<string, VNode>): void {
    if (!this.host) return
    const now = new Set(Object.values(children))
    for (const [child, nodes] of this.attached) {
      if (now.has(child)) continue
      this.attached.delete(child)
      for (const node of nodes) void node[LIFECYCLE].close().catch(err => this.host?.logger.warn({ err }, 'closing a view node failed'))
    }
    for (const [name, child] of Object.entries(children)) {
      if (this.attached.has(child)) continue
      const base = this.path === '/' ? '/' + name : `${this.path}/${name}`
      const nodes = lifecycleNodes(child).map(({ path, node }) => {
        node[LIFECYCLE].attach(this.host!, path === '/' ? base : base + path)
        return node
      })
      this.attached.set(child, nodes)
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
