import { constants as fsc } from 'node:fs'
import { toVfsError, vfsError, VfsError } from './errors.ts'
import { createLogger, type Logger } from './log.ts'
import { MountTable, type ChangeType, type Mount, type MountChange, type MountEntry } from './mounts.ts'
import {
  can,
  type Attr,
  type DirEntry,
  type FileHandle,
  type NodeKind,
  type OpContext,
  type OpenFlags,
  type StatFs,
  type VNode,
} from './node.ts'
import { basename, checkName, isWithin, normalize, split } from './path.ts'

/** What `stat` returns: a node's attributes with full mode bits, in Node's field names. */
export interface Stat {
  kind: NodeKind
  /** File-type bits plus permissions, e.g. `0o100644`. */
  mode: number
  size: number
  uid: number
  gid: number
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
  nlink: number
  ino: number
  blksize: number
  blocks: number
}

/** A change anywhere in the tree, as every front door sees it. */
export interface ChangeEvent {
  type: ChangeType
  /** Absolute VFS path. */
  path: string
  /** The path before a rename. */
  oldPath?: string
  kind?: NodeKind
  /** The mount point the change happened in. */
  mount: string
}

/** Receives change events from {@link Vfs.watch}. */
export type ChangeListener = (event: ChangeEvent) => void

/** Options for {@link Vfs.readdir}. */
export interface ReaddirOptions {
  /** The most entries to return. @default 1000 */
  limit?: number
  /** From a previous page's `cursor`. */
  cursor?: string
}

/** Options for {@link createVfs}. */
export interface VfsOptions {
  /** Mounts by mount point, e.g. `{ '/scratch': memoryMount() }`. */
  mounts?: Record<string, Mount>
  /** Where the router and mounts log. @default a pino logger at `FACET_LOG_LEVEL` or 'warn' */
  logger?: Logger
}

/** A mounted tree as `mounts()` lists it. */
export interface MountInfo {
  path: string
  name: string
}

/** The `OpContext` fields a caller may set; the rest come from the VFS. */
export type CallerContext = Partial<OpContext>

/** The largest single read or write the router accepts, in bytes. */
export const MAX_IO = 16 * 1024 * 1024

const S_IFMT = { file: fsc.S_IFREG, dir: fsc.S_IFDIR, symlink: fsc.S_IFLNK } as const
const MAX_SYMLINKS = 40
const DEFAULT_PAGE = 1000

/** Decodes POSIX open flags. */
export function decodeFlags(raw: number): OpenFlags {
  const access = raw & 3
  return {
    raw,
    read: access === fsc.O_RDONLY || access === fsc.O_RDWR,
    write: access === fsc.O_WRONLY || access === fsc.O_RDWR,
    append: (raw & fsc.O_APPEND) !== 0,
    truncate: (raw & fsc.O_TRUNC) !== 0,
    create: (raw & fsc.O_CREAT) !== 0,
    exclusive: (raw & fsc.O_EXCL) !== 0,
  }
}

interface Resolved {
  node: VNode
  entry: MountEntry | undefined
  /** The normalised path after following symlinks. */
  path: string
  /** True when this path is a mount point. */
  isMountPoint: boolean
  /** Table names below this path (mount points and their ancestors). */
  mountChildren: string[]
}

interface OpenFile {
  path: string
  node: VNode
  handle: FileHandle
  flags: OpenFlags
  entry: MountEntry | undefined
  dirty: boolean
}

const syntheticDir: VNode = { kind: 'dir' }

/**
 * The router: one path-level API over a table of mounts, used by every front door.
 *
 * Every method normalises its path, finds the mount by longest prefix, walks the
 * mount's nodes, and reports failures as {@link VfsError}s carrying the syscall and
 * the full path. Every mutation emits a {@link ChangeEvent}.
 */
export class Vfs {
  /** Where the router logs. */
  readonly logger: Logger
  private readonly table = new MountTable()
  private readonly files = new Map<number, OpenFile>()
  private nextFh = 1
  private readonly listeners = new Set<{ prefix: string; listener: ChangeListener }>()
  private readonly inodes = new WeakMap<VNode, number>()
  private nextIno = 2
  private readonly baseCtx: OpContext
  private readonly startedMs = Date.now()
  private readonly opCounts = new Map<string, Record<string, number>>()
  private closed = false

  constructor(options: VfsOptions = {}) {
    this.logger = options.logger ?? createLogger()
    this.baseCtx = {
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      logger: this.logger,
    }
    for (const [path, mount] of Object.entries(options.mounts ?? {})) this.mount(path, mount)
  }

  // ---- mount table

  /** Mounts `mount` at `path`; `EEXIST` when a mount is there already. */
  mount(path: string, mount: Mount): void {
    const names = split(path)
    const entry: MountEntry = { path: '/' + names.join('/'), mount, mountedAtMs: Date.now() }
    try {
      this.table.add(names, entry)
    } catch {
      throw new VfsError('EEXIST', 'a mount is already there', 'mount', entry.path)
    }
    this.attach(entry)
  }

  /**
   * Swaps the mount at `path` for `mount` in place (as `facet dev` does on reload).
   * Handles open on the old mount keep working against it until released.
   */
  async replace(path: string, mount: Mount): Promise<void> {
    const names = split(path)
    const entry: MountEntry = { path: '/' + names.join('/'), mount, mountedAtMs: Date.now() }
    const old = this.table.replace(names, entry)
    if (!old) throw new VfsError('ENOENT', 'nothing is mounted there', 'replace', entry.path)
    this.attach(entry)
    this.emit({ type: 'update', path: entry.path, kind: 'dir', mount: entry.path })
    await this.closeMount(old)
  }

  /** Unmounts the mount at `path` and closes it. */
  async unmount(path: string): Promise<void> {
    const names = split(path)
    const old = this.table.remove(names)
    if (!old) throw new VfsError('ENOENT', 'nothing is mounted there', 'unmount', '/' + names.join('/'))
    await this.closeMount(old)
  }

  /** Lists the mounts, shallowest first. */
  mounts(): MountInfo[] {
    return this.table.entries().map(e => ({ path: e.path, name: e.mount.name }))
  }

  /** Lists the mount objects by mount point, shallowest first (front doors read their extras, e.g. `graphql`). */
  mountObjects(): Array<{ path: string; mount: Mount }> {
    return this.table.entries().map(e => ({ path: e.path, mount: e.mount }))
  }

  /** Closes every mount. Open handles are dropped. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.files.clear()
    for (const entry of this.table.entries().reverse()) await this.closeMount(entry)
  }

  // ---- change bus

  /** Calls `listener` for every change at or below `prefix`; returns the function that stops it. */
  watch(prefix: string, listener: ChangeListener): () => void {
    const sub = { prefix: normalize(prefix), listener }
    this.listeners.add(sub)
    return () => this.listeners.delete(sub)
  }

  private emit(event: ChangeEvent): void {
    for (const sub of this.listeners) {
      if (isWithin(event.path, sub.prefix) || (event.oldPath !== undefined && isWithin(event.oldPath, sub.prefix))) {
        try {
          sub.listener(event)
        } catch (err) {
          this.logger.error({ err }, 'change listener threw')
        }
      }
    }
  }

  // ---- metadata

  /** Attributes of `path`, following a final symlink. */
  stat(path: string, caller?: CallerContext): Promise<Stat> {
    return this.run('stat', path, caller, async (p, ctx) => this.statOf(await this.resolve(p, ctx, true), ctx))
  }

  /** Attributes of `path` itself, not following a final symlink. */
  lstat(path: string, caller?: CallerContext): Promise<Stat> {
    return this.run('lstat', path, caller, async (p, ctx) => this.statOf(await this.resolve(p, ctx, false), ctx))
  }

  /**
   * `lstat` of many entries of the folder `path` at once (a readdirplus): the folder is
   * resolved once, not once per entry, so listing with attributes costs little more than
   * listing. A name that is missing, or whose attributes fail, gives `undefined`; `lstat`
   * of that one path gives its error.
   */
  lstatEntries(path: string, names: readonly string[], caller?: CallerContext): Promise<Array<Stat | undefined>> {
    return this.run('lstat', path, caller, async (p, ctx) => {
      const dir = await this.resolve(p, ctx, true)
      if (dir.node.kind !== 'dir') throw vfsError('ENOTDIR')
      const out: Array<Stat | undefined> = []
      for (const name of names) {
        try {
          if (dir.mountChildren.includes(name)) {
            out.push(await this.statOf(await this.resolve(normalize(p + '/' + name), ctx, false), ctx))
          } else {
            const found = can.lookup(dir.node) ? dir.node.lookup(checkName(name), ctx) : this.childOf(dir.node, checkName(name), ctx)
            const child = found instanceof Promise ? await found : found
            if (!child) {
              out.push(undefined)
              continue
            }
            const attr = can.getattr(child) ? child.getattr(ctx) : this.attrOf(child, ctx)
            out.push(this.toStat(child, attr instanceof Promise ? await attr : attr))
          }
        } catch {
          out.push(undefined)
        }
      }
      return out
    })
  }

  /** Succeeds when `path` exists (`access(2)` with `F_OK`). */
  access(path: string, caller?: CallerContext): Promise<void> {
    return this.run('access', path, caller, async (p, ctx) => {
      await this.resolve(p, ctx, true)
    })
  }

  /** Filesystem figures for the mount holding `path`. */
  statfs(path: string, caller?: CallerContext): Promise<StatFs> {
    return this.run('statfs', path, caller, async (p, ctx) => {
      const r = await this.resolve(p, ctx, true)
      const root = r.entry?.mount.root
      if (root && can.statfs(root)) return root.statfs(ctx)
      return { bsize: 4096, blocks: 1 << 28, bfree: 1 << 27, bavail: 1 << 27, files: 1 << 24, ffree: 1 << 23, namemax: 255 }
    })
  }

  /**
   * Lists a directory a page at a time: `{ entries, cursor }`, with `cursor` absent on
   * the last page. Mount points below the directory are listed on its first page.
   */
  readdir(path: string, options: ReaddirOptions = {}, caller?: CallerContext): Promise<{ entries: DirEntry[]; cursor?: string }> {
    return this.run('scandir', path, caller, async (p, ctx) => {
      const r = await this.resolve(p, ctx, true)
      if (r.node.kind !== 'dir') throw vfsError('ENOTDIR')
      const limit = Math.max(1, Math.min(options.limit ?? DEFAULT_PAGE, 100_000))
      const page = can.readdir(r.node) ? await r.node.readdir({ limit, cursor: options.cursor }, ctx) : { entries: [] }
      if (r.mountChildren.length === 0) return page
      const shadow = new Set(r.mountChildren)
      const below = page.entries.filter(e => !shadow.has(e.name))
      const entries: DirEntry[] =
        options.cursor === undefined ? [...r.mountChildren.map(name => ({ name, kind: 'dir' as const })), ...below] : below
      return page.cursor === undefined ? { entries } : { entries, cursor: page.cursor }
    })
  }

  /** Every entry of a directory, paging through it. */
  async readdirAll(path: string, caller?: CallerContext): Promise<DirEntry[]> {
    const all: DirEntry[] = []
    let cursor: string | undefined
    do {
      const page = await this.readdir(path, { limit: 10_000, cursor }, caller)
      all.push(...page.entries)
      cursor = page.cursor
    } while (cursor !== undefined)
    return all
  }

  /** The target of the symlink at `path`; `EINVAL` when it is not a symlink. */
  readlink(path: string, caller?: CallerContext): Promise<string> {
    return this.run('readlink', path, caller, async (p, ctx) => {
      const r = await this.resolve(p, ctx, false)
      return this.readlinkOf(r.node, ctx)
    })
  }

  /** Sets the permission bits of `path`. */
  chmod(path: string, mode: number, caller?: CallerContext): Promise<void> {
    return this.setattr('chmod', path, { mode: mode & 0o7777 }, caller)
  }

  /** Sets the owner of `path`; `-1` leaves a field as it is. */
  chown(path: string, uid: number, gid: number, caller?: CallerContext): Promise<void> {
    const changes: { uid?: number; gid?: number } = {}
    if (uid !== -1) changes.uid = uid
    if (gid !== -1) changes.gid = gid
    return this.setattr('chown', path, changes, caller)
  }

  /** Sets the access and modification times of `path`, in milliseconds. */
  utimens(path: string, atimeMs: number, mtimeMs: number, caller?: CallerContext): Promise<void> {
    return this.setattr('utime', path, { atimeMs, mtimeMs }, caller)
  }

  private setattr(syscall: string, path: string, changes: Record<string, number>, caller?: CallerContext): Promise<void> {
    return this.run(syscall, path, caller, async (p, ctx) => {
      const r = await this.resolve(p, ctx, true)
      if (!can.setattr(r.node)) throw vfsError('EROFS')
      await r.node.setattr(changes, ctx)
      this.emitChange('update', r, r.node.kind)
    })
  }

  // ---- namespace changes

  /** Makes a directory; `EEXIST` when `path` exists. */
  mkdir(path: string, mode = 0o755, caller?: CallerContext): Promise<void> {
    return this.run('mkdir', path, caller, async (p, ctx) => {
      const { parent, name } = await this.freeChild(p, ctx)
      if (!can.mkdir(parent.node)) throw vfsError('EROFS')
      await parent.node.mkdir(name, mode & 0o7777, ctx)
      this.emitChange('create', { ...parent, path: p }, 'dir')
    })
  }

  /** Makes a symlink at `path` pointing at `target`. */
  symlink(target: string, path: string, caller?: CallerContext): Promise<void> {
    return this.run('symlink', path, caller, async (p, ctx) => {
      if (typeof target !== 'string' || target === '' || target.includes('\0')) throw vfsError('EINVAL', 'invalid symlink target')
      if (Buffer.byteLength(target) > 4096) throw vfsError('ENAMETOOLONG')
      const { parent, name } = await this.freeChild(p, ctx)
      if (!can.symlink(parent.node)) throw vfsError('EROFS')
      await parent.node.symlink(name, target, ctx)
      this.emitChange('create', { ...parent, path: p }, 'symlink')
    })
  }

  /** Removes a file or symlink. */
  unlink(path: string, caller?: CallerContext): Promise<void> {
    return this.run('unlink', path, caller, async (p, ctx) => {
      const { parent, name, child } = await this.existingChild(p, ctx)
      if (child.kind === 'dir') throw vfsError('EISDIR')
      if (!can.unlink(parent.node)) throw vfsError('EROFS')
      await parent.node.unlink(name, ctx)
      this.emitChange('delete', { ...parent, path: p }, child.kind)
    })
  }

  /** Removes an empty directory. */
  rmdir(path: string, caller?: CallerContext): Promise<void> {
    return this.run('rmdir', path, caller, async (p, ctx) => {
      if (p === '/') throw vfsError('EBUSY', 'the root cannot be removed')
      const { parent, name, child } = await this.existingChild(p, ctx)
      if (child.kind !== 'dir') throw vfsError('ENOTDIR')
      if (!can.rmdir(parent.node)) throw vfsError('EROFS')
      await parent.node.rmdir(name, ctx)
      this.emitChange('delete', { ...parent, path: p }, 'dir')
    })
  }

  /** Moves `from` to `to` within one mount, replacing `to`; `EXDEV` across mounts. */
  rename(from: string, to: string, caller?: CallerContext): Promise<void> {
    return this.run('rename', from, caller, async (src, ctx) => {
      const dst = normalize(to)
      if (src === dst) return
      if (isWithin(dst, src)) throw vfsError('EINVAL', 'cannot move a directory into itself')
      const a = await this.existingChild(src, ctx)
      const b = await this.parentOf(dst, ctx)
      if (a.parent.entry !== b.parent.entry) throw vfsError('EXDEV', 'source and target are in different mounts')
      const target = await this.childOf(b.parent.node, b.name, ctx)
      if (b.isMountPoint) throw vfsError('EBUSY', 'the target is a mount point')
      if (target) {
        if (a.child.kind === 'dir' && target.kind !== 'dir') throw vfsError('ENOTDIR')
        if (a.child.kind !== 'dir' && target.kind === 'dir') throw vfsError('EISDIR')
      }
      if (!can.rename(a.parent.node)) throw vfsError('EROFS')
      await a.parent.node.rename(a.name, b.parent.node, b.name, ctx)
      const mount = a.parent.entry?.path ?? '/'
      this.emit({ type: 'rename', path: dst, oldPath: src, kind: a.child.kind, mount })
    }, to)
  }

  // ---- content

  /** Sets the size of the file at `path`, cutting or zero-filling. */
  truncate(path: string, size: number, caller?: CallerContext): Promise<void> {
    return this.run('truncate', path, caller, async (p, ctx) => {
      checkSize(size)
      const r = await this.resolve(p, ctx, true)
      if (r.node.kind === 'dir') throw vfsError('EISDIR')
      if (!can.truncate(r.node)) throw vfsError('EROFS')
      await r.node.truncate(size, ctx)
      this.emitChange('update', r, 'file')
    })
  }

  /**
   * Opens the file at `path` with POSIX `flags` and returns a handle number.
   * `O_CREAT` creates it (with `mode`), `O_EXCL` refuses an existing one, `O_TRUNC` empties it.
   */
  open(path: string, flags: number = fsc.O_RDONLY, mode = 0o644, caller?: CallerContext): Promise<number> {
    return this.run('open', path, caller, (p, ctx) => this.openAt(p, decodeFlags(flags), mode, ctx))
  }

  /** Creates and opens a file, like `open` with `O_CREAT`. */
  create(path: string, mode = 0o644, flags: number = fsc.O_WRONLY, caller?: CallerContext): Promise<number> {
    return this.run('open', path, caller, (p, ctx) => this.openAt(p, decodeFlags(flags | fsc.O_CREAT), mode, ctx))
  }

  /** Reads up to `length` bytes at `offset` through handle `fh`; fewer only at the end of the file. */
  read(fh: number, offset: number, length: number, caller?: CallerContext): Promise<Uint8Array> {
    return this.runFh('read', fh, caller, async (f, ctx) => {
      if (!f.flags.read) throw vfsError('EBADF', 'not open for reading')
      checkRange(offset, length)
      if (length === 0) return EMPTY
      if (f.handle.read) return f.handle.read(offset, length, ctx)
      if (can.read(f.node)) return f.node.read(offset, length, ctx)
      return EMPTY
    })
  }

  /**
   * Reads through handle `fh` at `offset` into `dest` (as much as fits; less only at the end
   * of the file) and returns the bytes read. A handle with `readInto` fills `dest` directly
   * (FUSE lends the kernel's buffer: no copy kept, nothing allocated); others are read and copied.
   */
  readInto(fh: number, offset: number, dest: Uint8Array, caller?: CallerContext): Promise<number> {
    return this.runFh('read', fh, caller, async (f, ctx) => {
      if (!f.flags.read) throw vfsError('EBADF', 'not open for reading')
      checkRange(offset, dest.length)
      if (dest.length === 0) return 0
      if (f.handle.readInto) return f.handle.readInto(offset, dest, ctx)
      const data = f.handle.read ? await f.handle.read(offset, dest.length, ctx) : can.read(f.node) ? await f.node.read(offset, dest.length, ctx) : EMPTY
      const n = Math.min(data.length, dest.length)
      dest.set(n === data.length ? data : data.subarray(0, n))
      return n
    })
  }

  /** Writes `data` at `offset` through handle `fh` (at the end when opened with `O_APPEND`); returns the bytes written. */
  write(fh: number, offset: number, data: Uint8Array, caller?: CallerContext): Promise<number> {
    return this.writeAt(fh, offset, data, false, caller)
  }

  /**
   * Like {@link write}, for a caller that lends `data` only until the returned promise
   * settles (FUSE lends the kernel's buffer): a handle that copies what it keeps
   * (`copiesWrites`) gets it as is, any other a copy of its own.
   */
  writeLent(fh: number, offset: number, data: Uint8Array, caller?: CallerContext): Promise<number> {
    return this.writeAt(fh, offset, data, true, caller)
  }

  private writeAt(fh: number, offset: number, data: Uint8Array, lent: boolean, caller: CallerContext | undefined): Promise<number> {
    return this.runFh('write', fh, caller, async (f, ctx) => {
      if (!f.flags.write) throw vfsError('EBADF', 'not open for writing')
      checkRange(offset, data.length)
      if (f.flags.append) offset = (await this.attrOfHandle(f, ctx)).size
      f.dirty = true
      if (lent && !f.handle.copiesWrites) data = Buffer.from(data)
      if (f.handle.write) return f.handle.write(offset, data, ctx)
      if (can.write(f.node)) return f.node.write(offset, data, ctx)
      throw vfsError('EROFS')
    })
  }

  /** Attributes of the file open as `fh`, with its unflushed writes. */
  fstat(fh: number, caller?: CallerContext): Promise<Stat> {
    return this.runFh('fstat', fh, caller, async (f, ctx) => this.toStat(f.node, await this.attrOfHandle(f, ctx)))
  }

  /** Sets the size of the file open as `fh`. */
  ftruncate(fh: number, size: number, caller?: CallerContext): Promise<void> {
    return this.runFh('ftruncate', fh, caller, async (f, ctx) => {
      if (!f.flags.write) throw vfsError('EBADF', 'not open for writing')
      checkSize(size)
      f.dirty = true
      if (f.handle.truncate) return f.handle.truncate(size, ctx)
      if (can.truncate(f.node)) return f.node.truncate(size, ctx)
      throw vfsError('EROFS')
    })
  }

  /** Applies buffered writes of `fh`; called on each close of a descriptor. Errors here are the caller's `close` errors. */
  flush(fh: number, caller?: CallerContext): Promise<void> {
    return this.runFh('close', fh, caller, async (f, ctx) => {
      await f.handle.flush?.(ctx)
      if (f.dirty) {
        f.dirty = false
        this.emit({ type: 'update', path: f.path, kind: 'file', mount: f.entry?.path ?? '/' })
      }
    })
  }

  /** Makes the data written through `fh` durable. */
  fsync(fh: number, datasync = false, caller?: CallerContext): Promise<void> {
    return this.runFh('fsync', fh, caller, async (f, ctx) => {
      if (f.handle.fsync) return f.handle.fsync(datasync, ctx)
      if (can.fsync(f.node)) return f.node.fsync(datasync, ctx)
    })
  }

  /** Closes handle `fh` for good, after a final flush of unflushed writes. */
  release(fh: number, caller?: CallerContext): Promise<void> {
    return this.runFh('close', fh, caller, async (f, ctx) => {
      this.files.delete(fh)
      try {
        if (f.dirty) {
          f.dirty = false
          await f.handle.flush?.(ctx)
          this.emit({ type: 'update', path: f.path, kind: 'file', mount: f.entry?.path ?? '/' })
        }
      } finally {
        await f.handle.release?.(ctx)
      }
    })
  }

  /** How many handles are open. */
  get openHandles(): number {
    return this.files.size
  }

  /** Operation counts per mount point and syscall since the VFS started (kept across `replace`), and the open handles per mount. */
  opStats(): { mounts: Record<string, { ops: Record<string, number>; openHandles: number }>; openHandles: number } {
    const mounts: Record<string, { ops: Record<string, number>; openHandles: number }> = {}
    for (const e of this.table.entries()) mounts[e.path] = { ops: { ...this.opCounts.get(e.path) }, openHandles: 0 }
    for (const f of this.files.values()) {
      const m = f.entry && mounts[f.entry.path]
      if (m) m.openHandles++
    }
    return { mounts, openHandles: this.files.size }
  }

  private count(syscall: string, entry: MountEntry | undefined): void {
    if (!entry) return
    let ops = this.opCounts.get(entry.path)
    if (!ops) this.opCounts.set(entry.path, (ops = {}))
    ops[syscall] = (ops[syscall] ?? 0) + 1
  }

  /** Reads the whole file at `path`. */
  async readFile(path: string, caller?: CallerContext): Promise<Buffer> {
    const fh = await this.open(path, fsc.O_RDONLY, 0, caller)
    try {
      const chunks: Uint8Array[] = []
      let offset = 0
      for (;;) {
        const chunk = await this.read(fh, offset, 1 << 20, caller)
        if (chunk.length === 0) break
        chunks.push(chunk)
        offset += chunk.length
      }
      return Buffer.concat(chunks)
    } finally {
      await this.release(fh, caller)
    }
  }

  /** Writes `data` as the whole content of `path`, creating it when missing. Parse or validation errors of a view surface here. */
  async writeFile(path: string, data: string | Uint8Array, caller?: CallerContext): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    const fh = await this.open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o644, caller)
    let failed = true
    try {
      for (let offset = 0; offset < bytes.length; offset += MAX_IO) {
        await this.write(fh, offset, bytes.subarray(offset, offset + MAX_IO), caller)
      }
      await this.flush(fh, caller)
      failed = false
    } finally {
      if (failed) this.files.delete(fh)
      else await this.release(fh, caller)
    }
  }

  // ---- internals

  private ctx(caller?: CallerContext): OpContext {
    if (!caller) return this.baseCtx
    return { ...this.baseCtx, ...caller, logger: caller.logger ?? this.baseCtx.logger }
  }

  private async run<T>(syscall: string, path: string, caller: CallerContext | undefined, fn: (p: string, ctx: OpContext) => Promise<T>, dest?: string): Promise<T> {
    let p = path
    try {
      p = normalize(path)
      this.count(syscall, this.table.entryOf(p))
      return await fn(p, this.ctx(caller))
    } catch (err) {
      throw toVfsError(err, syscall, p, this.report).at(syscall, p, dest)
    }
  }

  private async runFh<T>(syscall: string, fh: number, caller: CallerContext | undefined, fn: (f: OpenFile, ctx: OpContext) => Promise<T>): Promise<T> {
    const f = this.files.get(fh)
    if (!f) throw new VfsError('EBADF', `no open file ${fh}`, syscall)
    this.count(syscall, f.entry)
    try {
      return await fn(f, this.ctx(caller))
    } catch (err) {
      throw toVfsError(err, syscall, f.path, this.report)
    }
  }

  private readonly report = (err: unknown, syscall: string, path: string): void => {
    this.logger.error({ err, syscall, path }, 'unexpected error in a mount; reported as EIO')
  }

  private attach(entry: MountEntry): void {
    entry.mount.attach?.({
      mountPoint: entry.path,
      logger: this.logger,
      vfs: this,
      emit: (change: MountChange) => {
        const join = (rel: string) => (entry.path === '/' ? normalize(rel) : normalize(entry.path + '/' + rel))
        const event: ChangeEvent = { type: change.type, path: join(change.path), mount: entry.path }
        if (change.oldPath !== undefined) event.oldPath = join(change.oldPath)
        if (change.kind !== undefined) event.kind = change.kind
        this.emit(event)
      },
    })
  }

  private async closeMount(entry: MountEntry): Promise<void> {
    try {
      await entry.mount.close?.()
    } catch (err) {
      this.logger.error({ err, mount: entry.path }, 'closing a mount failed')
    }
  }

  private emitChange(type: ChangeType, r: { path: string; entry: MountEntry | undefined }, kind: NodeKind): void {
    if (this.listeners.size === 0) return
    this.emit({ type, path: r.path, kind, mount: r.entry?.path ?? '/' })
  }

  /** Walks to the node at normalised path `p`, following symlinks on the way (and the last one when `follow`). */
  private async resolve(p: string, ctx: OpContext, follow: boolean, hops = 0): Promise<Resolved> {
    const names = p === '/' ? [] : p.slice(1).split('/')
    const match = this.table.match(names)
    const mountChildren = this.table.childNames(match.exact)
    const isMountPoint = match.exact?.entry !== undefined
    const entry = match.entry
    if (!entry) {
      if (match.exact) return { node: syntheticDir, entry: undefined, path: p, isMountPoint, mountChildren }
      throw vfsError('ENOENT')
    }
    let node = entry.mount.root
    for (let i = match.depth; i < names.length; i++) {
      if (node.kind !== 'dir') throw vfsError('ENOTDIR')
      const child = await this.childOf(node, names[i]!, ctx)
      if (!child) {
        if (match.exact && i === names.length - 1 && !isMountPoint) {
          return { node: syntheticDir, entry, path: p, isMountPoint, mountChildren }
        }
        throw vfsError('ENOENT')
      }
      if (child.kind === 'symlink' && (follow || i < names.length - 1)) {
        if (++hops > MAX_SYMLINKS) throw vfsError('ELOOP')
        const target = await this.readlinkOf(child, ctx)
        const base = target.startsWith('/') ? '' : '/' + names.slice(0, i).join('/')
        const rest = names.slice(i + 1).join('/')
        return this.resolve(normalize(`${base}/${target}/${rest}`), ctx, follow, hops)
      }
      node = child
    }
    if (match.exact && !isMountPoint && node.kind !== 'dir') node = syntheticDir
    return { node, entry, path: p, isMountPoint, mountChildren }
  }

  private async childOf(dir: VNode, name: string, ctx: OpContext): Promise<VNode | undefined> {
    if (can.lookup(dir)) return dir.lookup(name, ctx)
    if (!can.readdir(dir)) return undefined
    let cursor: string | undefined
    do {
      const page = await dir.readdir({ limit: DEFAULT_PAGE, cursor }, ctx)
      const found = page.entries.find(e => e.name === name)
      if (found) return found.node
      cursor = page.cursor
    } while (cursor !== undefined)
    return undefined
  }

  private async parentOf(p: string, ctx: OpContext): Promise<{ parent: Resolved; name: string; isMountPoint: boolean }> {
    if (p === '/') throw vfsError('EBUSY', 'the root has no parent')
    const name = checkName(basename(p))
    const parentPath = p.slice(0, p.length - name.length - 1) || '/'
    const parent = await this.resolve(parentPath, ctx, true)
    if (parent.node.kind !== 'dir') throw vfsError('ENOTDIR')
    return { parent, name, isMountPoint: parent.mountChildren.includes(name) }
  }

  private async freeChild(p: string, ctx: OpContext): Promise<{ parent: Resolved; name: string }> {
    const { parent, name, isMountPoint } = await this.parentOf(p, ctx)
    if (isMountPoint || (await this.childOf(parent.node, name, ctx))) throw vfsError('EEXIST')
    if (parent.node === syntheticDir) throw vfsError('EROFS', 'no mount holds this folder')
    return { parent, name }
  }

  private async existingChild(p: string, ctx: OpContext): Promise<{ parent: Resolved; name: string; child: VNode }> {
    const { parent, name, isMountPoint } = await this.parentOf(p, ctx)
    if (isMountPoint) throw vfsError('EBUSY', 'it is a mount point')
    const child = await this.childOf(parent.node, name, ctx)
    if (!child) throw vfsError('ENOENT')
    return { parent, name, child }
  }

  private async openAt(p: string, flags: OpenFlags, mode: number, ctx: OpContext): Promise<number> {
    let r: Resolved | undefined
    let created = false
    if (flags.create) {
      const { parent, name, isMountPoint } = await this.parentOf(p, ctx)
      const existing = isMountPoint ? syntheticDir : await this.childOf(parent.node, name, ctx)
      if (existing && flags.exclusive) throw vfsError('EEXIST')
      if (existing) {
        r = existing.kind === 'symlink' ? await this.resolve(p, ctx, true) : { ...parent, node: existing, path: p, isMountPoint, mountChildren: [] }
      } else {
        if (!can.create(parent.node)) throw vfsError('EROFS')
        const node = await parent.node.create(name, mode & 0o7777, ctx)
        r = { ...parent, node, path: p, isMountPoint: false, mountChildren: [] }
        created = true
      }
    } else {
      r = await this.resolve(p, ctx, true)
    }
    const node = r.node
    if (node.kind === 'dir') throw vfsError('EISDIR')
    if (flags.write && !can.open(node) && !can.write(node)) throw vfsError('EROFS')
    const handle: FileHandle = can.open(node) ? await node.open(flags, ctx) : {}
    if (flags.write && !handle.write && !can.write(node)) {
      await handle.release?.(ctx)
      throw vfsError('EROFS')
    }
    const f: OpenFile = { path: r.path, node, handle, flags, entry: r.entry, dirty: false }
    if (flags.truncate && flags.write && !created) {
      try {
        if (handle.truncate) await handle.truncate(0, ctx)
        else if (can.truncate(node)) await node.truncate(0, ctx)
        else throw vfsError('EROFS')
      } catch (err) {
        await handle.release?.(ctx)
        throw err
      }
      f.dirty = true
    }
    const fh = this.nextFh++
    this.files.set(fh, f)
    if (created) this.emitChange('create', r, 'file')
    return fh
  }

  private async attrOfHandle(f: OpenFile, ctx: OpContext): Promise<Attr> {
    if (f.handle.getattr) return f.handle.getattr(ctx)
    return this.attrOf(f.node, ctx)
  }

  private async attrOf(node: VNode, ctx: OpContext): Promise<Attr> {
    if (can.getattr(node)) return node.getattr(ctx)
    const t = this.startedMs
    let mode = 0o777
    let size = 0
    if (node.kind === 'dir') mode = can.create(node) || can.mkdir(node) ? 0o755 : 0o555
    else if (node.kind === 'file') mode = can.write(node) ? 0o644 : 0o444
    else size = Buffer.byteLength(await this.readlinkOf(node, ctx))
    return { mode, size, uid: 0, gid: 0, atimeMs: t, mtimeMs: t, ctimeMs: t }
  }

  private async statOf(r: Resolved, ctx: OpContext): Promise<Stat> {
    return this.toStat(r.node, await this.attrOf(r.node, ctx))
  }

  private toStat(node: VNode, a: Attr): Stat {
    let ino = a.ino ?? this.inodes.get(node)
    if (ino === undefined) {
      ino = this.nextIno++
      this.inodes.set(node, ino)
    }
    return {
      kind: node.kind,
      mode: S_IFMT[node.kind] | (a.mode & 0o7777),
      size: a.size,
      uid: a.uid,
      gid: a.gid,
      atimeMs: a.atimeMs,
      mtimeMs: a.mtimeMs,
      ctimeMs: a.ctimeMs,
      nlink: a.nlink ?? (node.kind === 'dir' ? 2 : 1),
      ino,
      blksize: 4096,
      blocks: Math.ceil(a.size / 512),
    }
  }

  private async readlinkOf(node: VNode, ctx: OpContext): Promise<string> {
    if (node.kind !== 'symlink') throw vfsError('EINVAL', 'not a symlink')
    return can.readlink(node) ? node.readlink(ctx) : ''
  }
}

const EMPTY = new Uint8Array(0)

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw vfsError('EINVAL', `bad offset ${offset}`)
  if (!Number.isSafeInteger(length) || length < 0) throw vfsError('EINVAL', `bad length ${length}`)
  if (length > MAX_IO) throw vfsError('EINVAL', `a single transfer is limited to ${MAX_IO} bytes`)
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw vfsError('EINVAL', `bad size ${size}`)
}

/** Makes a VFS with the given mounts. Each call returns an independent instance. */
export function createVfs(options: VfsOptions = {}): Vfs {
  return new Vfs(options)
}
