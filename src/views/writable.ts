import { vfsError } from '../vfs/errors.ts'
import type { ViewStats } from '../vfs/mounts.ts'
import type {
  Attr,
  AttrChanges,
  DirEntry,
  DirPage,
  FileHandle,
  MaybePromise,
  NodeContext,
  OpContext,
  OpenFlags,
  PageRequest,
  VNode,
} from '../vfs/node.ts'
import { checkName } from '../vfs/path.ts'
import { LiveChildren, startedMs, type Content } from './view.ts'

/**
 * The attributes a node made by {@link dirFrom}, {@link fileFrom} or {@link symlinkFrom}
 * reports; each one left out is filled in (see each field).
 */
export interface Attributes {
  /** Permission bits. @default from the capabilities: writable (`0o644` / `0o755`) when there is a function that changes the node, else read-only (`0o444` / `0o555`); `0o777` for a symlink */
  mode?: number
  /** Size in bytes. @default the length of what `read` returns (the target's for a symlink, 4096 for a directory) */
  size?: number
  /** @default the caller's user id */
  uid?: number
  /** @default the caller's group id */
  gid?: number
  /** Modification time in milliseconds. @default when FacetFS started */
  mtimeMs?: number
  /** @default `mtimeMs` */
  atimeMs?: number
  /** @default `mtimeMs` */
  ctimeMs?: number
  /** Hard links. @default 1 for files and symlinks, 2 for directories */
  nlink?: number
  /** A stable inode number. @default one the router assigns */
  ino?: number
}

/** Fixed {@link Attributes}, or a function giving them for each `stat`. */
export type AttributesOf = Attributes | ((ctx: OpContext) => MaybePromise<Attributes>)

/** Lifecycle and figures, passed on as they are (see `NodeSetup`): a node holding a connection or a watcher starts it in `setup` and stops it in `dispose`. */
export interface LifecycleCapabilities {
  /** Called when the node's view is mounted (or when the folder holding it first shows it). */
  setup?(ctx: NodeContext): void
  /** Undoes `setup`; called once, after `ctx.signal` is aborted. */
  dispose?(): MaybePromise<void>
  /** Figures by path in the view, for `/proc/stats.json`. */
  stats?(): Record<string, ViewStats>
}

/**
 * What a folder made by {@link dirFrom} can do: each function is one operation on its
 * entries, named after the syscall. Leave out what the folder cannot do: the operation
 * fails as the router documents for it (`EROFS` for a change), and a folder with no
 * function that changes it has no write bits. Throw `vfsError(code, reason)` to refuse;
 * a Node system error (from `node:fs`) keeps its code; anything else is `EIO`.
 */
export interface DirCapabilities extends LifecycleCapabilities {
  /** The folder's attributes; those left out are filled in (see {@link Attributes}). */
  attributes?: AttributesOf
  /** The child named `name`, or `undefined` when there is none (`ENOENT`). Without it the child is found in what `readdir` returns, which must then give nodes (a record). */
  lookup?(name: string, ctx: OpContext): MaybePromise<VNode | undefined>
  /**
   * Every entry: a record of child nodes (which also serves lookups when there is no
   * `lookup`), or a list of `{ name, kind }`. Called once per listing; the router's pages
   * are cut from that one answer. Without it the folder lists as empty.
   */
  readdir?(ctx: OpContext): MaybePromise<Record<string, VNode> | readonly DirEntry[]>
  /**
   * For a folder too large to list at once: one page of at most `page.limit` entries
   * after `page.cursor` (absent for the first), with the cursor of the next page (absent
   * on the last), as a paged collection `list` does. Used instead of `readdir`.
   */
  readdirPage?(page: PageRequest, ctx: OpContext): MaybePromise<DirPage>
  /** Makes an empty file `name` (free, and a valid name) and returns its node, which is then opened for writing. */
  create?(name: string, mode: number, ctx: OpContext): MaybePromise<VNode>
  /** Makes a folder `name` (free, and a valid name) and returns its node. */
  mkdir?(name: string, mode: number, ctx: OpContext): MaybePromise<VNode>
  /** Makes a symlink `name` to `target` and returns its node. */
  symlink?(name: string, target: string, ctx: OpContext): MaybePromise<VNode>
  /** Removes the file or symlink `name`, which exists. */
  unlink?(name: string, ctx: OpContext): MaybePromise<void>
  /** Removes the folder `name`, which exists; throw `ENOTEMPTY` when it has entries. */
  rmdir?(name: string, ctx: OpContext): MaybePromise<void>
  /**
   * Moves child `name` to `newName` in the folder whose capabilities are `to` (this very
   * object for a rename in place), replacing what is there. A destination not made by
   * {@link dirFrom} is refused with `EXDEV` before this is called.
   */
  rename?(name: string, to: DirCapabilities, newName: string, ctx: OpContext): MaybePromise<void>
  /** Changes mode, owner or times (`chmod`, `chown`, `touch`); without it those fail with `EROFS`. */
  setattr?(changes: AttrChanges, ctx: OpContext): MaybePromise<void>
}

/**
 * What a file made by {@link fileFrom} can do. The simple form works on whole contents:
 * `read` returns them and `write` receives them. Each open file gets its own copy, read
 * when it is opened (empty with `O_TRUNC`); writes and truncations change that copy, and
 * the close (each `flush`) of a file that changed passes all of it to `write`: what
 * `write` throws fails the `close`, so `vfsError('EINVAL', reason)` refuses bad input.
 * A file whose content lives where ranges can be read and written in place (a host file
 * descriptor) gives `open` instead. Without `write` (and `open`) the file is read-only:
 * no write bits, and opening it for writing is `EROFS`.
 */
export interface FileCapabilities extends LifecycleCapabilities {
  /** The file's attributes; those left out are filled in (see {@link Attributes}): give `size` when `read` is costly, as `stat` would otherwise call it. */
  attributes?: AttributesOf
  /** The whole content: text (UTF-8) or bytes. Without it the file reads as empty. */
  read?(ctx: OpContext): MaybePromise<Content>
  /** Stores the whole new content, on the close of a file written or truncated through FacetFS. */
  write?(content: Buffer, ctx: OpContext): MaybePromise<void>
  /** Sets the size without an open file (`truncate(2)`). Without it, and with `write`, the content is read, cut or zero-filled, and written. */
  truncate?(size: number, ctx: OpContext): MaybePromise<void>
  /** Opens the file and returns per-open state whose `read`/`write` take ranges; it replaces the whole-content handling above for open files. */
  open?(flags: OpenFlags, ctx: OpContext): MaybePromise<FileHandle>
  /** Changes mode, owner or times; without it those fail with `EROFS`. */
  setattr?(changes: AttrChanges, ctx: OpContext): MaybePromise<void>
  /** Why a file without `write` cannot be changed, shown with its `EROFS` (e.g. 'remove it and enqueue a new one'). */
  readOnlyReason?: string
}

/** What a symlink made by {@link symlinkFrom} can do. */
export interface SymlinkCapabilities extends LifecycleCapabilities {
  /** The symlink's attributes; those left out are filled in (see {@link Attributes}). */
  attributes?: AttributesOf
  /** The target, as stored. */
  readlink(ctx: OpContext): MaybePromise<string>
  /** Changes owner or times (`chown -h`, `touch -h`); without it those fail with `EROFS`. */
  setattr?(changes: AttrChanges, ctx: OpContext): MaybePromise<void>
}

const EMPTY = new Uint8Array(0)

function toBytes(content: Content): Uint8Array {
  return typeof content === 'string' ? Buffer.from(content) : content
}

async function attributesOf(of: AttributesOf | undefined, ctx: OpContext): Promise<Attributes> {
  return typeof of === 'function' ? of(ctx) : (of ?? {})
}

/** The full {@link Attr} from those given, each missing one from its default. */
function filled(a: Attributes, mode: number, size: number, ctx: OpContext): Attr {
  const mtimeMs = a.mtimeMs ?? startedMs
  const out: Attr = {
    mode: a.mode ?? mode,
    size: a.size ?? size,
    uid: a.uid ?? ctx.uid,
    gid: a.gid ?? ctx.gid,
    atimeMs: a.atimeMs ?? mtimeMs,
    mtimeMs,
    ctimeMs: a.ctimeMs ?? mtimeMs,
  }
  if (a.nlink !== undefined) out.nlink = a.nlink
  if (a.ino !== undefined) out.ino = a.ino
  return out
}

/** Copies the lifecycle capabilities onto `node`, so the router and `dir()` call them. */
function withLifecycle(node: Record<string, unknown>, caps: LifecycleCapabilities): void {
  if (caps.setup && caps.dispose) {
    node.setup = caps.setup.bind(caps)
    node.dispose = caps.dispose.bind(caps)
  }
  if (caps.stats) node.stats = caps.stats.bind(caps)
}

/** The capabilities each folder made by {@link dirFrom} was made from, to hand a rename its destination's. */
const capabilitiesOf = new WeakMap<VNode, DirCapabilities>()

/** How many listings of one folder are kept for the pages still to come. */
const LISTINGS_KEPT = 8

/**
 * A folder from its capabilities: each function is one operation, with plain names and
 * values; the attributes it leaves out are filled in. A record from `readdir` is set up
 * with the folder like `dir()`'s children (each collection in it starts watching when
 * first listed).
 *
 * ```ts
 * const notes = new Map<string, string>()
 * dirFrom({
 *   readdir: () => Object.fromEntries([...notes.keys()].map(n => [n, note(n)])),
 *   create: name => (notes.set(name, ''), note(name)),
 *   unlink: name => void notes.delete(name),
 * })
 * ```
 */
export function dirFrom(caps: DirCapabilities): VNode {
  const writable = !!(caps.create || caps.mkdir || caps.symlink || caps.unlink || caps.rmdir || caps.rename)
  const live = new LiveChildren()
  const listings = new Map<number, DirEntry[]>()
  let listed = 0

  async function list(ctx: OpContext): Promise<{ entries: DirEntry[]; nodes?: Record<string, VNode> }> {
    const got = caps.readdir ? await caps.readdir(ctx) : []
    if (Array.isArray(got)) {
      for (const e of got as readonly DirEntry[]) checkName(e.name)
      return { entries: [...(got as readonly DirEntry[])] }
    }
    const nodes = got as Record<string, VNode>
    for (const name of Object.keys(nodes)) checkName(name)
    live.seen(nodes)
    return { entries: Object.entries(nodes).map(([name, node]) => ({ name, kind: node.kind, node })), nodes }
  }

  const node: Record<string, unknown> & VNode = {
    kind: 'dir',
    async getattr(ctx: OpContext): Promise<Attr> {
      return filled(await attributesOf(caps.attributes, ctx), writable ? 0o755 : 0o555, 4096, ctx)
    },
    async lookup(name: string, ctx: OpContext): Promise<VNode | undefined> {
      if (caps.lookup) return caps.lookup(name, ctx)
      const { nodes } = await list(ctx)
      return nodes && Object.prototype.hasOwnProperty.call(nodes, name) ? nodes[name] : undefined
    },
    async readdir(page: PageRequest, ctx: OpContext): Promise<DirPage> {
      if (caps.readdirPage) return caps.readdirPage(page, ctx)
      // a cursor is `<listing>.<index>`: every page of one listing comes from one readdir answer
      let id: number
      let start = 0
      let entries: DirEntry[] | undefined
      if (page.cursor === undefined) {
        id = ++listed
      } else {
        const m = /^(\d+)\.(\d+)$/.exec(page.cursor)
        if (!m) throw vfsError('EINVAL', 'bad cursor')
        id = Number(m[1])
        start = Number(m[2])
        entries = listings.get(id)
      }
      if (!entries) {
        entries = (await list(ctx)).entries
        listings.set(id, entries)
        if (listings.size > LISTINGS_KEPT) listings.delete(listings.keys().next().value!)
      }
      const slice = entries.slice(start, start + page.limit)
      const next = start + slice.length
      if (next < entries.length) return { entries: slice, cursor: `${id}.${next}` }
      listings.delete(id)
      return { entries: slice }
    },
    setup(ctx: NodeContext): void {
      live.setup(ctx)
      caps.setup?.(ctx)
    },
    async dispose(): Promise<void> {
      await live.dispose()
      await caps.dispose?.()
    },
    stats(): Record<string, ViewStats> {
      return { ...live.stats(), ...caps.stats?.() }
    },
  }
  if (caps.create) node.create = caps.create.bind(caps)
  if (caps.mkdir) node.mkdir = caps.mkdir.bind(caps)
  if (caps.symlink) node.symlink = caps.symlink.bind(caps)
  if (caps.unlink) node.unlink = caps.unlink.bind(caps)
  if (caps.rmdir) node.rmdir = caps.rmdir.bind(caps)
  if (caps.setattr) node.setattr = caps.setattr.bind(caps)
  const rename = caps.rename
  if (rename) {
    node.rename = (name: string, newParent: VNode, newName: string, ctx: OpContext) => {
      const to = capabilitiesOf.get(newParent)
      if (!to) throw vfsError('EXDEV', 'the destination folder is not one this view can move into')
      return rename.call(caps, name, to, newName, ctx)
    }
  }
  capabilitiesOf.set(node, caps)
  return node
}

/** The open file of a whole-content {@link fileFrom}: its own copy, passed to `write` on the flush after a change. */
function contentHandle(caps: FileCapabilities, initial: Uint8Array, directIo: boolean, attrs: (ctx: OpContext, size: number) => Promise<Attr>): FileHandle {
  let buf = Buffer.from(initial)
  let len = buf.length
  let dirty = false
  const resize = (size: number) => {
    if (size > buf.length) {
      const next = Buffer.alloc(Math.max(size, buf.length * 2, 4096))
      buf.copy(next, 0, 0, len)
      buf = next
    } else if (size < len) {
      buf.fill(0, size, len)
    }
  }
  const handle: FileHandle = {
    directIo,
    read: (offset, length) => (offset >= len ? EMPTY : buf.subarray(offset, Math.min(len, offset + length))),
    getattr: ctx => attrs(ctx, len),
  }
  const write = caps.write
  if (write) {
    Object.assign(handle, {
      copiesWrites: true,
      write(offset: number, data: Uint8Array): number {
        const end = offset + data.length
        resize(end)
        buf.set(data, offset)
        len = Math.max(len, end)
        dirty = true
        return data.length
      },
      truncate(size: number): void {
        resize(size)
        len = size
        dirty = true
      },
      async flush(ctx: OpContext): Promise<void> {
        if (!dirty) return
        await write.call(caps, Buffer.from(buf.subarray(0, len)), ctx)
        dirty = false
      },
    } satisfies FileHandle)
  }
  return handle
}

/**
 * A file from its capabilities: `read` returns the whole content and `write` receives
 * it on close (see {@link FileCapabilities}); the attributes it leaves out are filled
 * in, the size from the content. Without `write` it is read-only.
 *
 * ```ts
 * let text = 'hello\n'
 * fileFrom({ read: () => text, write: content => void (text = content.toString()) })
 * ```
 */
export function fileFrom(caps: FileCapabilities): VNode {
  const mode = caps.write || caps.open ? 0o644 : 0o444
  /** The size the last `stat` reported, so an open file whose content differs is served with direct I/O. */
  let reported: number | undefined
  const read = async (ctx: OpContext): Promise<Uint8Array> => (caps.read ? toBytes(await caps.read(ctx)) : EMPTY)
  const attrs = async (ctx: OpContext, size?: number): Promise<Attr> => {
    const a = await attributesOf(caps.attributes, ctx)
    const attr = filled(a, mode, size ?? a.size ?? (await read(ctx)).length, ctx)
    if (size !== undefined) attr.size = size
    return attr
  }
  const node: Record<string, unknown> & VNode = {
    kind: 'file',
    async getattr(ctx: OpContext): Promise<Attr> {
      const a = await attrs(ctx)
      reported = a.size
      return a
    },
    async open(flags: OpenFlags, ctx: OpContext): Promise<FileHandle> {
      if (caps.open) return caps.open(flags, ctx)
      if (flags.write && !caps.write) throw vfsError('EROFS', caps.readOnlyReason)
      const content = flags.truncate && flags.write ? EMPTY : await read(ctx)
      return contentHandle(caps, content, content.length !== reported, attrs)
    },
  }
  const truncate = caps.truncate
  const write = caps.write
  if (truncate) node.truncate = truncate.bind(caps)
  else if (write) {
    node.truncate = async (size: number, ctx: OpContext) => {
      const content = await read(ctx)
      const next = Buffer.alloc(size)
      next.set(content.subarray(0, size))
      await write.call(caps, next, ctx)
    }
  }
  if (caps.setattr) node.setattr = caps.setattr.bind(caps)
  withLifecycle(node, caps)
  return node
}

/** A symlink from its capabilities: `readlink` gives the target; the attributes it leaves out are filled in, the size from the target. */
export function symlinkFrom(caps: SymlinkCapabilities): VNode {
  const node: Record<string, unknown> & VNode = {
    kind: 'symlink',
    readlink: (ctx: OpContext) => caps.readlink(ctx),
    async getattr(ctx: OpContext): Promise<Attr> {
      const a = await attributesOf(caps.attributes, ctx)
      return filled(a, 0o777, a.size ?? Buffer.byteLength(await caps.readlink(ctx)), ctx)
    },
  }
  if (caps.setattr) node.setattr = caps.setattr.bind(caps)
  withLifecycle(node, caps)
  return node
}
