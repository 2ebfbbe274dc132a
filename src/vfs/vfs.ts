import { constants as fsc } from 'node:fs'
import { checkAccess, isRoot, R_OK, routerChecks, W_OK, X_OK } from './access.ts'
import { ChangeBus, type ChangeEvent, type ChangeListener } from './changes.ts'
import { toVfsError, vfsError, VfsError } from './errors.ts'
import { checkRange, checkSize, decodeFlags, HandleTable, MAX_IO, type OpenFile } from './handles.ts'
import { createLogger, type Logger } from './log.ts'
import type { LockTable } from './locks/table.ts'
import { badMountName, MountTable, type ChangeType, type Mount, type MountEntry } from './mounts.ts'
import { can, type Attr, type DirEntry, type NodeKind, type OpContext, type SpecialKind, type StatFs, type VNode } from './node.ts'
import { checkName, isWithin, normalize, split } from './path.ts'
import { mutable, Resolver, syntheticDir } from './resolver.ts'
import { MountLives } from './mount-lives.ts'
import { openAt, type OpenDeps } from './open.ts'
import { needsBefore, ownerRequest, planSetattr, type SetattrRequest } from './setattr.ts'
import { InodeNumbers, msToNs, type Stat } from './stat.ts'
import { checkXattrName, holdsUserXattrs, readNeedsAccess, writeNeedsAccess, XATTR_CREATE, XATTR_REPLACE, XATTR_SIZE_MAX } from './xattr.ts'

export type { ChangeEvent, ChangeListener } from './changes.ts'
export type { SpecialKind } from './node.ts'
export type { Stat } from './stat.ts'
export type { NodeTimeSpec, SetattrRequest } from './setattr.ts'

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
  /** The mount point, e.g. `'/db'`. */
  path: string
  /** The mount's kebab-case name, e.g. `'sql'`. */
  name: string
}

/** The `OpContext` fields a caller may set; the rest come from the VFS. */
export type CallerContext = Partial<OpContext>

/** Whether a path op acts on a final symlink's target (the default) or on the link itself. */
export interface FollowOption {
  /** @default true */
  follow?: boolean
}

/** How {@link Vfs.rename} treats an existing target: replace it, refuse (`EEXIST`), or swap the two. */
export type RenameMode = 'replace' | 'noreplace' | 'exchange'

const DEFAULT_PAGE = 1000


/**
 * The router: one path-level API over a table of mounts, used by every front door.
 *
 * Every method normalises its path, finds the mount by longest prefix, walks the
 * mount's nodes, checks the caller's rights (unless the kernel did, for FUSE), and
 * reports failures as {@link VfsError}s carrying the syscall and the full path. Every
 * mutation emits a {@link ChangeEvent}.
 */
export class Vfs {
  /** Where the router logs. */
  readonly logger: Logger
  private readonly table = new MountTable()
  private readonly files = new HandleTable()
  private readonly bus: ChangeBus
  private readonly paths: Resolver
  private readonly openDeps: OpenDeps
  private readonly baseCtx: OpContext
  private readonly opCounts = new Map<string, Record<string, number>>()
  private closed = false
  private nextMountId = 1
  private readonly lives: MountLives

  constructor(options: VfsOptions = {}) {
    this.logger = options.logger ?? createLogger()
    this.bus = new ChangeBus(this.logger)
    this.paths = new Resolver(this.table, new InodeNumbers(), Date.now())
    this.lives = new MountLives(this, this.bus, this.logger)
    this.openDeps = { paths: this.paths, files: this.files, emitChange: (type, r, kind) => this.emitChange(type, r, kind) }
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
    const entry: MountEntry = { path: '/' + names.join('/'), mount, mountedAtMs: Date.now(), id: this.nextMountId++ }
    checkMount(entry, 'mount')
    try {
      this.table.add(names, entry)
    } catch {
      throw new VfsError('EEXIST', 'a mount is already there', 'mount', entry.path)
    }
    this.lives.start(entry)
  }

  /**
   * Swaps the mount at `path` for `mount` in place (as `facet dev` does on reload).
   * Handles open on the old mount keep working against it until released.
   */
  async replace(path: string, mount: Mount): Promise<void> {
    const names = split(path)
    const entry: MountEntry = { path: '/' + names.join('/'), mount, mountedAtMs: Date.now(), id: this.nextMountId++ }
    checkMount(entry, 'replace')
    const old = this.table.replace(names, entry)
    if (!old) throw new VfsError('ENOENT', 'nothing is mounted there', 'replace', entry.path)
    this.lives.start(entry)
    this.bus.emit({ type: 'update', path: entry.path, kind: 'dir', mount: entry.path })
    await this.lives.stop(old)
  }

  /** Unmounts the mount at `path` and closes it. */
  async unmount(path: string): Promise<void> {
    const names = split(path)
    const old = this.table.remove(names)
    if (!old) throw new VfsError('ENOENT', 'nothing is mounted there', 'unmount', '/' + names.join('/'))
    await this.lives.stop(old)
  }

  /** Lists the mounts, shallowest first. */
  mounts(): MountInfo[] {
    return this.table.entries().map(e => ({ path: e.path, name: e.mount.name }))
  }

  /** Lists the mount objects by mount point, shallowest first (front doors read their extras, e.g. `graphql`). */
  mountObjects(): Array<{
    /** The mount point, e.g. `'/db'`. */
    path: string
    /** The mount there, as given to `mount` or `replace`. */
    mount: Mount
  }> {
    return this.table.entries().map(e => ({ path: e.path, mount: e.mount }))
  }

  /** Closes every mount. Open handles are dropped. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.files.clear()
    for (const entry of this.table.entries().reverse()) await this.lives.stop(entry)
  }

  // ---- change bus

  /** Calls `listener` for every change at or below `prefix`; returns the function that stops it. */
  watch(prefix: string, listener: ChangeListener): () => void {
    return this.bus.watch(prefix, listener)
  }

  // ---- metadata

  /** Attributes of `path`, following a final symlink. */
  stat(path: string, caller?: CallerContext): Promise<Stat> {
    return this.run('stat', path, caller, async (p, ctx) => this.paths.statOf(await this.paths.resolve(p, ctx, true), ctx))
  }

  /** Attributes of `path` itself, not following a final symlink. */
  lstat(path: string, caller?: CallerContext): Promise<Stat> {
    return this.run('lstat', path, caller, async (p, ctx) => this.paths.statOf(await this.paths.resolve(p, ctx, false), ctx))
  }

  /**
   * `lstat` of many entries of the folder `path` at once (a readdirplus): the folder is
   * resolved once, not once per entry, so listing with attributes costs little more than
   * listing. A name that is missing, or whose attributes fail, gives `undefined`; `lstat`
   * of that one path gives its error.
   */
  lstatEntries(path: string, names: readonly string[], caller?: CallerContext): Promise<Array<Stat | undefined>> {
    return this.run('lstat', path, caller, async (p, ctx) => {
      const dir = await this.paths.resolve(p, ctx, true)
      if (dir.node.kind !== 'dir') throw vfsError('ENOTDIR')
      await this.paths.require(dir.node, X_OK, ctx)
      const out: Array<Stat | undefined> = []
      for (const name of names) {
        try {
          if (dir.mountChildren.includes(name)) {
            out.push(await this.paths.statOf(await this.paths.resolve(normalize(p + '/' + name), ctx, false), ctx))
          } else {
            const found = can.lookup(dir.node) ? dir.node.lookup(checkName(name), ctx) : this.paths.childOf(dir.node, checkName(name), ctx)
            const child = found instanceof Promise ? await found : found
            if (!child) {
              out.push(undefined)
              continue
            }
            const attr = can.getattr(child) ? child.getattr(ctx) : this.paths.attrOf(child, ctx)
            out.push(this.paths.toStat(child, attr instanceof Promise ? await attr : attr, dir.entry))
          }
        } catch {
          out.push(undefined)
        }
      }
      return out
    })
  }

  /** Succeeds when `path` exists and the caller has the rights `mode` asks for (`access(2)`: `F_OK`, or `R_OK | W_OK | X_OK`); `W_OK` on a part that cannot change is `EROFS`, even for root. */
  access(path: string, mode: number = fsc.F_OK, caller?: CallerContext): Promise<void> {
    return this.run('access', path, caller, async (p, ctx) => {
      const r = await this.paths.resolve(p, ctx, true)
      if (mode === fsc.F_OK) return
      const a = await this.paths.attrOf(r.node, ctx)
      // as access(2) on a read-only filesystem: EROFS for W_OK, whoever asks
      if (mode & W_OK && (r.node === syntheticDir || !mutable(r.node, a))) throw vfsError('EROFS')
      checkAccess(a, mode & 7, ctx, r.node.kind === 'dir')
    })
  }

  /** Filesystem figures for the mount holding `path`. */
  statfs(path: string, caller?: CallerContext): Promise<StatFs> {
    return this.run('statfs', path, caller, async (p, ctx) => {
      const r = await this.paths.resolve(p, ctx, true)
      const root = r.entry?.mount.root
      if (root && can.statfs(root)) return root.statfs(ctx)
      return { bsize: 4096, blocks: 1 << 28, bfree: 1 << 27, bavail: 1 << 27, files: 1 << 24, ffree: 1 << 23, namemax: 255 }
    })
  }

  /**
   * Lists a directory a page at a time: `{ entries, cursor }`, with `cursor` absent on
   * the last page. Mount points below the directory are listed on its first page.
   */
  readdir(path: string, options: ReaddirOptions = {}, caller?: CallerContext): Promise<{
    /** The entries of this page, at most `options.limit`. */
    entries: DirEntry[]
    /** Pass back as `options.cursor` to get the next page; absent on the last page. */
    cursor?: string
  }> {
    return this.run('scandir', path, caller, async (p, ctx) => {
      const r = await this.paths.resolve(p, ctx, true)
      if (r.node.kind !== 'dir') throw vfsError('ENOTDIR')
      await this.paths.require(r.node, R_OK, ctx)
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
      const r = await this.paths.resolve(p, ctx, false)
      return this.paths.readlinkOf(r.node, ctx)
    })
  }

  /** Sets the permission bits of `path`. */
  chmod(path: string, mode: number, caller?: CallerContext): Promise<void> {
    return this.setattrAt('chmod', path, { mode }, true, caller)
  }

  /** Sets the owner of `path`; `-1` leaves a field as it is. */
  chown(path: string, uid: number, gid: number, caller?: CallerContext): Promise<void> {
    return this.setattrAt('chown', path, ownerRequest(uid, gid), true, caller)
  }

  /** Sets the owner of `path` itself, not of a symlink's target; `-1` leaves a field as it is. */
  lchown(path: string, uid: number, gid: number, caller?: CallerContext): Promise<void> {
    return this.setattrAt('lchown', path, ownerRequest(uid, gid), false, caller)
  }

  /** Sets the access and modification times of `path`, in milliseconds. */
  utimens(path: string, atimeMs: number, mtimeMs: number, caller?: CallerContext): Promise<void> {
    return this.setattrAt('utime', path, { atime: msToNs(atimeMs), mtime: msToNs(mtimeMs) }, true, caller)
  }

  /** Sets the times of `path` itself, not of a symlink's target, in milliseconds. */
  lutimes(path: string, atimeMs: number, mtimeMs: number, caller?: CallerContext): Promise<void> {
    return this.setattrAt('lutime', path, { atime: msToNs(atimeMs), mtime: msToNs(mtimeMs) }, false, caller)
  }

  /**
   * Changes mode, owner and times of `path` in one call, as `setattr` in the kernel
   * does: times in nanoseconds, `'now'` or `'omit'`. POSIX rules apply: only the owner
   * (or the superuser) changes the mode or sets explicit times (`EPERM`), setting the
   * current time needs ownership or write access (`EACCES`), only the superuser gives a
   * file away, and an owner change clears setuid/setgid on files.
   */
  setattr(path: string, changes: SetattrRequest, options: FollowOption = {}, caller?: CallerContext): Promise<void> {
    return this.setattrAt('setattr', path, changes, options.follow ?? true, caller)
  }

  private setattrAt(syscall: string, path: string, req: SetattrRequest, follow: boolean, caller?: CallerContext): Promise<void> {
    return this.run(syscall, path, caller, async (p, ctx) => this.applySetattr(await this.paths.resolve(p, ctx, follow), req, ctx))
  }

  /** Like {@link setattr}, on the file open as `fh` (`fchmod`, `fchown`, `futimens`), which may have no name left. */
  fsetattr(fh: number, changes: SetattrRequest, caller?: CallerContext): Promise<void> {
    return this.runFh('fsetattr', fh, caller, (f, ctx) => this.applySetattr(f, changes, ctx))
  }

  private async applySetattr(r: { node: VNode; path: string; entry: MountEntry | undefined }, req: SetattrRequest, ctx: OpContext): Promise<void> {
    const before = needsBefore(req, ctx) ? await this.paths.attrOf(r.node, ctx) : undefined
    const changes = planSetattr(req, before, r.node.kind, ctx)
    if (!changes) return
    if (!can.setattr(r.node)) throw vfsError('EROFS')
    await r.node.setattr(changes, ctx)
    this.emitChange('update', r, r.node.kind)
  }

  // ---- namespace changes

  /** Makes a directory; `EEXIST` when `path` exists. */
  mkdir(path: string, mode = 0o755, caller?: CallerContext): Promise<void> {
    return this.run('mkdir', path, caller, async (p, ctx) => {
      const { parent, name } = await this.paths.freeChild(p, ctx)
      if (!can.mkdir(parent.node)) throw vfsError('EROFS')
      const owned = await this.paths.ownerCtx(parent.node, mode & 0o7777, true, ctx)
      await parent.node.mkdir(name, owned.mode, owned.ctx)
      this.emitChange('create', { ...parent, path: p }, 'dir')
    })
  }

  /** Makes a symlink at `path` pointing at `target`. */
  symlink(target: string, path: string, caller?: CallerContext): Promise<void> {
    return this.run('symlink', path, caller, async (p, ctx) => {
      if (typeof target !== 'string' || target === '' || target.includes('\0')) throw vfsError('EINVAL', 'invalid symlink target')
      if (Buffer.byteLength(target) > 4095) throw vfsError('ENAMETOOLONG')
      const { parent, name } = await this.paths.freeChild(p, ctx)
      if (!can.symlink(parent.node)) throw vfsError('EROFS')
      const owned = await this.paths.ownerCtx(parent.node, 0o777, false, ctx)
      await parent.node.symlink(name, target, owned.ctx)
      this.emitChange('create', { ...parent, path: p }, 'symlink')
    })
  }

  /** Makes a fifo, a character or block device node, or a socket at `path` (`mknod(2)`); `EPERM` where the mount has none. */
  mknod(path: string, kind: SpecialKind, mode = 0o644, rdev = 0, caller?: CallerContext): Promise<void> {
    return this.run('mknod', path, caller, async (p, ctx) => {
      if (routerChecks(ctx) && (kind === 'chardev' || kind === 'blockdev') && !isRoot(ctx)) throw vfsError('EPERM', 'only the superuser makes device nodes')
      const { parent, name } = await this.paths.freeChild(p, ctx)
      if (!can.mknod(parent.node)) {
        // a read-only folder refuses with EROFS first, whoever checked the caller's rights
        if (!mutable(parent.node, await this.paths.attrOf(parent.node, ctx))) throw vfsError('EROFS')
        throw vfsError('EPERM', 'this mount holds no special files')
      }
      const owned = await this.paths.ownerCtx(parent.node, mode & 0o7777, false, ctx)
      await parent.node.mknod(name, kind, owned.mode, kind === 'chardev' || kind === 'blockdev' ? rdev : 0, owned.ctx)
      this.emitChange('create', { ...parent, path: p }, kind)
    })
  }

  /** Makes `newPath` another name of the file at `existing` (a hard link); `EPERM` for a folder or where the mount has none, `EXDEV` across mounts. */
  link(existing: string, newPath: string, caller?: CallerContext): Promise<void> {
    return this.run('link', existing, caller, async (src, ctx) => {
      const dst = normalize(newPath)
      const a = await this.paths.resolve(src, ctx, false)
      if (a.node.kind === 'dir') throw vfsError('EPERM', 'folders cannot be hard-linked')
      if (a.node === syntheticDir) throw vfsError('EPERM')
      const { parent, name } = await this.paths.freeChild(dst, ctx)
      if (parent.entry !== a.entry) throw vfsError('EXDEV', 'source and target are in different mounts')
      if (!can.link(parent.node)) throw vfsError('EPERM', 'this mount has no hard links')
      await parent.node.link(name, a.node, ctx)
      this.emitChange('create', { ...parent, path: dst }, a.node.kind)
      this.emitChange('update', a, a.node.kind)
    }, newPath)
  }

  /** Removes a file, symlink or special file. */
  unlink(path: string, caller?: CallerContext): Promise<void> {
    return this.run('unlink', path, caller, async (p, ctx) => {
      const { parent, name, child } = await this.paths.existingChild(p, ctx)
      if (child.kind === 'dir') throw vfsError('EISDIR')
      await this.paths.mayRemove(parent.node, child, ctx)
      if (!can.unlink(parent.node)) throw vfsError('EROFS')
      await parent.node.unlink(name, ctx)
      this.emitChange('delete', { ...parent, path: p }, child.kind)
    })
  }

  /** Removes an empty directory. */
  rmdir(path: string, caller?: CallerContext): Promise<void> {
    return this.run('rmdir', path, caller, async (p, ctx) => {
      if (p === '/') throw vfsError('EBUSY', 'the root cannot be removed')
      const { parent, name, child } = await this.paths.existingChild(p, ctx)
      if (child.kind !== 'dir') throw vfsError('ENOTDIR')
      await this.paths.mayRemove(parent.node, child, ctx)
      if (!can.rmdir(parent.node)) throw vfsError('EROFS')
      await parent.node.rmdir(name, ctx)
      this.emitChange('delete', { ...parent, path: p }, 'dir')
    })
  }

  /**
   * Moves `from` to `to` within one mount (`EXDEV` across mounts). `mode` says what to
   * do with an existing `to`: replace it (the default), refuse with `EEXIST`
   * (`RENAME_NOREPLACE`), or swap the two (`RENAME_EXCHANGE`; `ENOENT` when `to` is missing).
   */
  rename(from: string, to: string, caller?: CallerContext, mode: RenameMode = 'replace'): Promise<void> {
    return this.run('rename', from, caller, async (src, ctx) => {
      const dst = normalize(to)
      if (src === dst) {
        await this.paths.resolve(src, ctx, false)
        return
      }
      const a = await this.paths.existingChild(src, ctx)
      const b = await this.paths.parentOf(dst, ctx)
      if (a.parent.entry !== b.parent.entry) throw vfsError('EXDEV', 'source and target are in different mounts')
      if (b.isMountPoint) throw vfsError('EBUSY', 'the target is a mount point')
      const target = await this.paths.childOf(b.parent.node, b.name, ctx)
      if (mode === 'exchange') {
        if (!target) throw vfsError('ENOENT')
        if ((a.child.kind === 'dir' && isWithin(dst, src)) || (target.kind === 'dir' && isWithin(src, dst))) throw vfsError('EINVAL', 'cannot move a directory into itself')
      } else if (a.child.kind === 'dir' && isWithin(dst, src)) throw vfsError('EINVAL', 'cannot move a directory into itself')
      if (target && mode === 'noreplace') throw vfsError('EEXIST')
      if (target === a.child) return
      if (target && mode === 'replace') {
        if (a.child.kind === 'dir' && target.kind !== 'dir') throw vfsError('ENOTDIR')
        if (a.child.kind !== 'dir' && target.kind === 'dir') throw vfsError('EISDIR')
      }
      await this.paths.mayRemove(a.parent.node, a.child, ctx)
      if (b.parent.node !== a.parent.node) await this.paths.require(b.parent.node, W_OK | X_OK, ctx)
      if (target) await this.paths.mayRemove(b.parent.node, target, ctx, b.parent.node !== a.parent.node)
      if (a.child.kind === 'dir' && b.parent.node !== a.parent.node) await this.paths.require(a.child, W_OK, ctx)
      const m = a.parent.entry?.path ?? '/'
      if (mode === 'exchange') {
        if (!can.exchange(a.parent.node)) throw vfsError('EINVAL', 'this mount cannot exchange names')
        await a.parent.node.exchange(a.name, b.parent.node, b.name, ctx)
        this.bus.emit({ type: 'rename', path: dst, oldPath: src, kind: a.child.kind, mount: m })
        this.bus.emit({ type: 'rename', path: src, oldPath: dst, kind: target!.kind, mount: m })
        return
      }
      if (!can.rename(a.parent.node)) throw vfsError('EROFS')
      await a.parent.node.rename(a.name, b.parent.node, b.name, ctx)
      this.bus.emit({ type: 'rename', path: dst, oldPath: src, kind: a.child.kind, mount: m })
    }, to)
  }

  // ---- extended attributes

  /**
   * The value of extended attribute `name` of `path`; `ENODATA` when it has none, and
   * `EOPNOTSUPP` when its mount keeps no extended attributes (a view), as a local
   * filesystem without them answers: tools such as `ls -l` then stop asking for every
   * file's security label, which through FUSE costs a path walk per file.
   */
  getxattr(path: string, name: string, options: FollowOption = {}, caller?: CallerContext): Promise<Uint8Array> {
    return this.run('getxattr', path, caller, async (p, ctx) => {
      const r = await this.paths.resolve(p, ctx, options.follow ?? true)
      checkXattrName(name)
      if (readNeedsAccess(name) && !holdsUserXattrs(r.node)) throw vfsError('ENODATA')
      if (readNeedsAccess(name)) await this.paths.require(r.node, R_OK, ctx)
      if (!can.getxattr(r.node)) throw vfsError('EOPNOTSUPP', 'this mount keeps no extended attributes')
      const value = await r.node.getxattr(name, ctx)
      if (value === undefined) throw vfsError('ENODATA')
      return value
    })
  }

  /** Sets extended attribute `name` of `path` (`flags`: 1 `XATTR_CREATE` fails with `EEXIST` when it exists, 2 `XATTR_REPLACE` with `ENODATA` when it does not). */
  setxattr(path: string, name: string, value: Uint8Array, flags = 0, options: FollowOption = {}, caller?: CallerContext): Promise<void> {
    return this.run('setxattr', path, caller, async (p, ctx) => {
      const r = await this.paths.resolve(p, ctx, options.follow ?? true)
      checkXattrName(name)
      if (value.length > XATTR_SIZE_MAX) throw vfsError('E2BIG')
      if (writeNeedsAccess(r.node, name, ctx)) await this.paths.require(r.node, W_OK, ctx)
      if (!can.setxattr(r.node)) throw vfsError('EOPNOTSUPP', 'this mount keeps no extended attributes')
      if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
        const exists = can.getxattr(r.node) && (await r.node.getxattr(name, ctx)) !== undefined
        if (flags & XATTR_CREATE && exists) throw vfsError('EEXIST')
        if (flags & XATTR_REPLACE && !exists) throw vfsError('ENODATA')
      }
      await r.node.setxattr(name, Uint8Array.from(value), ctx)
      this.emitChange('update', r, r.node.kind)
    })
  }

  /** The names of `path`'s extended attributes. */
  listxattr(path: string, options: FollowOption = {}, caller?: CallerContext): Promise<string[]> {
    return this.run('listxattr', path, caller, async (p, ctx) => {
      const r = await this.paths.resolve(p, ctx, options.follow ?? true)
      return can.listxattr(r.node) ? r.node.listxattr(ctx) : []
    })
  }

  /** Removes extended attribute `name` of `path`; `ENODATA` when it has none, `EOPNOTSUPP` when its mount keeps none. */
  removexattr(path: string, name: string, options: FollowOption = {}, caller?: CallerContext): Promise<void> {
    return this.run('removexattr', path, caller, async (p, ctx) => {
      const r = await this.paths.resolve(p, ctx, options.follow ?? true)
      checkXattrName(name)
      if (writeNeedsAccess(r.node, name, ctx)) await this.paths.require(r.node, W_OK, ctx)
      if (!can.getxattr(r.node)) throw vfsError('EOPNOTSUPP', 'this mount keeps no extended attributes')
      if ((await r.node.getxattr(name, ctx)) === undefined) throw vfsError('ENODATA')
      if (!can.removexattr(r.node)) throw vfsError('EOPNOTSUPP')
      await r.node.removexattr(name, ctx)
      this.emitChange('update', r, r.node.kind)
    })
  }

  // ---- content

  /** Sets the size of the file at `path`, cutting or zero-filling. */
  truncate(path: string, size: number, caller?: CallerContext): Promise<void> {
    return this.run('truncate', path, caller, async (p, ctx) => {
      checkSize(size)
      const r = await this.paths.resolve(p, ctx, true)
      if (r.node.kind === 'dir') throw vfsError('EISDIR')
      if (r.node.kind !== 'file') throw vfsError('EINVAL')
      await this.paths.require(r.node, W_OK, ctx)
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
    return this.run('open', path, caller, (p, ctx) => openAt(this.openDeps, p, decodeFlags(flags), mode, ctx))
  }

  /** Creates and opens a file, like `open` with `O_CREAT`. */
  create(path: string, mode = 0o644, flags: number = fsc.O_WRONLY, caller?: CallerContext): Promise<number> {
    return this.run('open', path, caller, (p, ctx) => openAt(this.openDeps, p, decodeFlags(flags | fsc.O_CREAT), mode, ctx))
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
   * settles: a handle that copies what it keeps (`copiesWrites`) gets it as is, any
   * other a copy of its own.
   */
  writeLent(fh: number, offset: number, data: Uint8Array, caller?: CallerContext): Promise<number> {
    return this.writeAt(fh, offset, data, true, caller)
  }

  private writeAt(fh: number, offset: number, data: Uint8Array, lent: boolean, caller: CallerContext | undefined): Promise<number> {
    return this.runFh('write', fh, caller, async (f, ctx) => {
      if (!f.flags.write) throw vfsError('EBADF', 'not open for writing')
      checkRange(offset, data.length)
      if (f.flags.append) offset = (await this.attrOfHandle(f, ctx)).size
      if (!Number.isSafeInteger(offset + data.length)) throw vfsError('EFBIG')
      f.dirty = true
      if (lent && !f.handle.copiesWrites) data = Buffer.from(data)
      if (f.handle.write) return f.handle.write(offset, data, ctx)
      if (can.write(f.node)) return f.node.write(offset, data, ctx)
      throw vfsError('EROFS')
    })
  }

  /** Attributes of the file open as `fh`, with its unflushed writes. */
  fstat(fh: number, caller?: CallerContext): Promise<Stat> {
    return this.runFh('fstat', fh, caller, async (f, ctx) => this.paths.toStat(f.node, await this.attrOfHandle(f, ctx), f.entry))
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
      // cleared first: a refused apply is reported here once, never retried by release
      const dirty = f.dirty
      f.dirty = false
      await f.handle.flush?.(ctx)
      if (dirty) this.bus.emit({ type: 'update', path: f.path, kind: 'file', mount: f.entry?.path ?? '/' })
    })
  }

  /** Makes the data written through `fh` durable. */
  fsync(fh: number, datasync = false, caller?: CallerContext): Promise<void> {
    return this.runFh('fsync', fh, caller, async (f, ctx) => {
      if (f.handle.fsync) return f.handle.fsync(datasync, ctx)
      if (can.fsync(f.node)) return f.node.fsync(datasync, ctx)
    })
  }

  /** Makes the entries of the folder at `path` durable (fsync of a directory): names made, moved or removed in it survive a crash once this returns. */
  fsyncdir(path: string, caller?: CallerContext): Promise<void> {
    return this.run('fsync', path, caller, async (p, ctx) => {
      const r = await this.paths.resolve(p, ctx, true)
      if (can.fsync(r.node)) await r.node.fsync(false, ctx)
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
          this.bus.emit({ type: 'update', path: f.path, kind: 'file', mount: f.entry?.path ?? '/' })
        }
      } finally {
        await f.handle.release?.(ctx)
      }
    })
  }

  /**
   * Where the locks on the file open as `fh` are kept: the table of its mount when the
   * mount keeps one (`Mount.locks`), keyed by the file's inode number in that mount; else
   * no table, and the router's own inode number as the key.
   */
  lockTarget(fh: number, caller?: CallerContext): Promise<{
    /** The mount's shared lock table, or `undefined` when locks stay in this process. */
    table: LockTable | undefined
    /** The key of the file's locks: its inode number, as a decimal string. */
    file: string
  }> {
    return this.runFh('lock', fh, caller, async (f, ctx) => {
      const table = f.entry?.mount.locks
      const attr = await this.attrOfHandle(f, ctx)
      if (table && attr.ino !== undefined) return { table, file: String(attr.ino) }
      return { table: undefined, file: String(this.paths.toStat(f.node, attr, f.entry).ino) }
    })
  }

  /** True when handle `fh` wants its reads and writes to bypass the kernel's page cache (see `FileHandle.directIo`). */
  wantsDirectIo(fh: number): boolean {
    return this.files.get(fh)?.handle.directIo === true
  }

  /** How many handles are open. */
  get openHandles(): number {
    return this.files.size
  }

  /** Operation counts per mount point and syscall since the VFS started (kept across `replace`), and the open handles per mount. */
  opStats(): {
    /** Figures by mount point. */
    mounts: Record<string, {
      /** Operation counts by syscall name, e.g. `{ open: 3, read: 12 }`. */
      ops: Record<string, number>
      /** Handles open on this mount. */
      openHandles: number
    }>
    /** Handles open in the whole VFS. */
    openHandles: number
  } {
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
      // at least one write, empty or not: writing nothing is an edit here, unlike a bare O_TRUNC
      let offset = 0
      do {
        await this.write(fh, offset, bytes.subarray(offset, offset + MAX_IO), caller)
        offset += MAX_IO
      } while (offset < bytes.length)
      await this.flush(fh, caller)
      failed = false
    } finally {
      // a refused write still closes its handle: a view then forgets the buffer it refused
      if (failed) await this.release(fh, caller).catch(() => {})
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

  private emitChange(type: ChangeType, r: { path: string; entry: MountEntry | undefined }, kind: NodeKind): void {
    if (!this.bus.active) return
    this.bus.emit({ type, path: r.path, kind, mount: r.entry?.path ?? '/' })
  }

  private async attrOfHandle(f: OpenFile, ctx: OpContext): Promise<Attr> {
    if (f.handle.getattr) return f.handle.getattr(ctx)
    return this.paths.attrOf(f.node, ctx)
  }

}

const EMPTY = new Uint8Array(0)

/** Makes a VFS with the given mounts. Each call returns an independent instance. */
export function createVfs(options: VfsOptions = {}): Vfs {
  return new Vfs(options)
}

/** Refuses a mount whose name is not kebab-case, with `EINVAL` naming it. */
function checkMount(entry: MountEntry, syscall: string): void {
  const why = badMountName(entry.mount.name)
  if (why) throw new VfsError('EINVAL', why, syscall, entry.path)
}
