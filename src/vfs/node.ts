import type { Logger } from './log.ts'
import type { ViewContext, ViewStats } from './mounts.ts'

/** A value or a promise of it: capabilities may answer synchronously to keep hot paths cheap. */
export type MaybePromise<T> = T | Promise<T>

/** A node that holds no data of its own: a named pipe, a device node or a socket. */
export type SpecialKind = 'fifo' | 'chardev' | 'blockdev' | 'socket'

/** What a node is. Fixed for the node's lifetime. */
export type NodeKind = 'file' | 'dir' | 'symlink' | SpecialKind

/** Who is calling and how to stop: passed to every capability. */
export interface OpContext {
  /** The caller's user id (the FUSE caller's, or the process's). */
  readonly uid: number
  /** The caller's group id. */
  readonly gid: number
  /** A FacetFS identity name, when the front door authenticated one. */
  readonly identity?: string | undefined
  /** The caller's supplementary groups, when known. */
  readonly groups?: readonly number[] | undefined
  /** Finds the caller's supplementary groups when `groups` is not given, the first time a check needs them (FUSE reads them from `/proc`). */
  readonly findGroups?: (() => readonly number[]) | undefined
  /** The caller's permissions were checked before the call reached the router (the kernel does, for FUSE). */
  readonly permissionsChecked?: boolean | undefined
  /** Aborts long work when the caller goes away. */
  readonly signal?: AbortSignal | undefined
  /**
   * Nobody waits for this call's outcome: FUSE's RELEASE, sent after close(2) has returned,
   * whose answer the kernel drops. Work done only to report its result may then be deferred
   * (a chain lets a closed file's block follow the group-commit delay instead of forcing one).
   */
  readonly unawaited?: boolean | undefined
  /** Where the mount logs. */
  readonly logger: Logger
}

/** The attributes a node reports. Times are milliseconds since the epoch; a mount that keeps nanoseconds reports them in the `*Ns` fields too. */
export interface Attr {
  /** Permission bits only, e.g. `0o644`; the router adds the file-type bits. */
  mode: number
  /** Exact byte length of what a read returns (of the target text, for a symlink). */
  size: number
  /** The owner's user id. */
  uid: number
  /** The owning group's id. */
  gid: number
  /** Last access time, in milliseconds since the epoch. */
  atimeMs: number
  /** Last modification of the content, in milliseconds since the epoch. */
  mtimeMs: number
  /** Last status change (content, mode, owner or links), in milliseconds since the epoch. */
  ctimeMs: number
  /** Hard links; the router uses 1 for files and 2 for directories when absent. */
  nlink?: number
  /** A stable inode number; the router assigns one when absent. */
  ino?: number
  /** The device number of a character or block device node. */
  rdev?: number
  /** Access time in nanoseconds since the epoch, when the mount keeps that precision. */
  atimeNs?: bigint
  /** Modification time in nanoseconds since the epoch, when the mount keeps that precision. */
  mtimeNs?: bigint
  /** Status change time in nanoseconds since the epoch, when the mount keeps that precision. */
  ctimeNs?: bigint
}

/**
 * Attribute changes for a setattr (chmod, chown, utimens, truncate); absent fields are left alone. A time comes
 * in milliseconds and, for mounts that keep nanoseconds, exactly in the `*Ns` field
 * beside it (the router always sets both). The mount updates the status change time.
 */
export interface AttrChanges {
  /** New permission bits, e.g. `0o600` (chmod). */
  mode?: number
  /** New owner's user id (chown). */
  uid?: number
  /** New owning group's id (chown). */
  gid?: number
  /** New access time, in milliseconds since the epoch (utimens). */
  atimeMs?: number
  /** New modification time, in milliseconds since the epoch (utimens). */
  mtimeMs?: number
  /** The new access time exactly, in nanoseconds since the epoch. */
  atimeNs?: bigint
  /** The new modification time exactly, in nanoseconds since the epoch. */
  mtimeNs?: bigint
}

/** One directory entry. */
export interface DirEntry {
  /** The child's name: one path segment, no `/`. */
  name: string
  /** What the child is; must match the `kind` of the node `lookup` returns for it. */
  kind: NodeKind
  /** The child itself; the router uses it to find children of a directory without `lookup`. */
  node?: VNode
}

/** A page of a directory listing. */
export interface DirPage {
  /** The entries of this page, at most the requested `limit`. */
  entries: DirEntry[]
  /** Pass back to get the next page; absent on the last page. */
  cursor?: string | undefined
}

/** Which page of a listing to return. */
export interface PageRequest {
  /** The most entries to return. */
  limit: number
  /** From a previous page; absent for the first page. */
  cursor?: string | undefined
}

/** Filesystem figures for `df`. Counts are in blocks of `bsize` bytes. */
export interface StatFs {
  /** Block size, in bytes. */
  bsize: number
  /** Size of the filesystem, in blocks. */
  blocks: number
  /** Free blocks. */
  bfree: number
  /** Free blocks an unprivileged caller may use. */
  bavail: number
  /** Inodes in all. */
  files: number
  /** Free inodes. */
  ffree: number
  /** Longest file name, in bytes. */
  namemax: number
}

/** Every node has a kind, which never changes. Capabilities are the interfaces below. */
export interface VNode {
  /** What the node is: a file, directory, symlink or special file. */
  readonly kind: NodeKind
}

/** Reports attributes. Without it the router reports mode 0o444 for files (0o644 when writable), 0o555 for dirs (0o755 when the dir can create), 0o777 for symlinks, size 0 (the readlink length for symlinks), owner root, and the mount's start time. */
export interface NodeGetattr {
  /** Returns the node's current attributes. */
  getattr(ctx: OpContext): MaybePromise<Attr>
}

/** Finds a child by name; returns `undefined` when there is none. Without it the router pages through `readdir` to find the name, else `ENOENT`. */
export interface NodeLookup {
  /** Returns the child called `name`, or `undefined` when there is none. */
  lookup(name: string, ctx: OpContext): MaybePromise<VNode | undefined>
}

/** Lists a directory a page at a time. Without it a directory is empty. */
export interface NodeReaddir {
  /** Returns the page of entries `page` asks for, with a cursor when more follow. */
  readdir(page: PageRequest, ctx: OpContext): MaybePromise<DirPage>
}

/** Open flags the router decodes for mounts. */
export interface OpenFlags {
  /** The raw POSIX flags. */
  readonly raw: number
  /** Opened for reading (`O_RDONLY` or `O_RDWR`). */
  readonly read: boolean
  /** Opened for writing (`O_WRONLY` or `O_RDWR`). */
  readonly write: boolean
  /** Every write goes to the end of the file (`O_APPEND`). */
  readonly append: boolean
  /** The file is cut to size 0 on open (`O_TRUNC`). */
  readonly truncate: boolean
  /** The file may be created by this open (`O_CREAT`). */
  readonly create: boolean
  /** With `create`: the open fails with `EEXIST` when the file exists (`O_EXCL`). */
  readonly exclusive: boolean
}

/** Per-open state of a file: each method is optional and falls back to the node's own. */
export interface FileHandle {
  /** Reads up to `length` bytes at `offset`; fewer only at the end of the file. */
  read?(offset: number, length: number, ctx: OpContext): MaybePromise<Uint8Array>
  /** Reads at `offset` into `dest` (as much as fits; less only at the end of the file) and returns the bytes read. Without it the router calls `read` and copies. */
  readInto?(offset: number, dest: Uint8Array, ctx: OpContext): MaybePromise<number>
  /** Writes `data` at `offset`; returns the bytes written. */
  write?(offset: number, data: Uint8Array, ctx: OpContext): MaybePromise<number>
  /**
   * Asks the kernel to send every read and write of this handle to the mount instead of
   * serving them from its page cache (FUSE `direct_io`): for generated content, whose
   * reads must come from the one rendering the handle holds whatever size the kernel
   * last saw. @default false
   */
  readonly directIo?: boolean
  /** True when `write` is done with `data` once it settles (it copies what it keeps): a caller that lends its buffer (FUSE) then passes it without a copy. @default false */
  readonly copiesWrites?: boolean
  /** Sets the size through this handle (ftruncate). */
  truncate?(size: number, ctx: OpContext): MaybePromise<void>
  /** Current attributes as this handle sees them (fstat), e.g. with unflushed writes. */
  getattr?(ctx: OpContext): MaybePromise<Attr>
  /** Called on each close of a descriptor: apply buffered writes here. */
  flush?(ctx: OpContext): MaybePromise<void>
  /** Makes written data durable. */
  fsync?(datasync: boolean, ctx: OpContext): MaybePromise<void>
  /** Called once when the last descriptor closes. */
  release?(ctx: OpContext): MaybePromise<void>
}

/** Opens a file and returns per-open state. Without it the router uses a handle that forwards to the node's `read`/`write`/`truncate`. Opening for write needs a `write` on the handle or the node, else `EROFS`. */
export interface NodeOpen {
  /** Opens the file with `flags` and returns the handle later calls on this descriptor go to. */
  open(flags: OpenFlags, ctx: OpContext): MaybePromise<FileHandle>
}

/** Reads file content. Without it (and without `open`) a file reads as empty. */
export interface NodeRead {
  /** Reads up to `length` bytes at byte `offset`; fewer only at the end of the file. */
  read(offset: number, length: number, ctx: OpContext): MaybePromise<Uint8Array>
}

/** Writes file content at an offset, growing the file. Without it (and without `open`) the file is read-only: `EROFS`. */
export interface NodeWrite {
  /** Writes `data` at byte `offset` and returns the number of bytes written. */
  write(offset: number, data: Uint8Array, ctx: OpContext): MaybePromise<number>
}

/** Sets the file size, cutting or zero-filling. Without it `EROFS`. */
export interface NodeTruncate {
  /** Sets the file's length to `size` bytes. */
  truncate(size: number, ctx: OpContext): MaybePromise<void>
}

/** Changes mode, owner or times. Without it `EROFS`. */
export interface NodeSetattr {
  /** Applies `changes`; fields absent from it stay as they are. */
  setattr(changes: AttrChanges, ctx: OpContext): MaybePromise<void>
}

/** Makes a new file in this directory. The name is checked and known to be free. Without it `EROFS`. */
export interface NodeCreate {
  /** Makes file `name` with permission bits `mode` and returns its node. */
  create(name: string, mode: number, ctx: OpContext): MaybePromise<VNode>
}

/** Makes a new directory in this directory. The name is checked and known to be free. Without it `EROFS`. */
export interface NodeMkdir {
  /** Makes directory `name` with permission bits `mode` and returns its node. */
  mkdir(name: string, mode: number, ctx: OpContext): MaybePromise<VNode>
}

/** Removes a file or symlink from this directory; the router has checked it exists and is not a directory. Without it `EROFS`. */
export interface NodeUnlink {
  /** Removes child `name`. */
  unlink(name: string, ctx: OpContext): MaybePromise<void>
}

/** Removes an existing child directory, which must be empty (`ENOTEMPTY`). Without it `EROFS`. */
export interface NodeRmdir {
  /** Removes the empty child directory `name`. */
  rmdir(name: string, ctx: OpContext): MaybePromise<void>
}

/**
 * Moves child `name` to `newName` in `newParent`, a directory of the same mount,
 * replacing what is there. The router has checked that the source exists, that a file
 * does not replace a directory (`EISDIR`) nor a directory a file (`ENOTDIR`), and that
 * a directory does not move into itself (`EINVAL`). A directory replacing a non-empty
 * one throws `ENOTEMPTY`. Without it `EROFS`.
 */
export interface NodeRename {
  /** Moves child `name` to `newName` in `newParent`, replacing what is there. */
  rename(name: string, newParent: VNode, newName: string, ctx: OpContext): MaybePromise<void>
}

/** Makes a fifo, device node or socket named `name` in this directory. The name is checked and known to be free. Without it `EPERM`. */
export interface NodeMknod {
  /** Makes special file `name` of `kind` with permission bits `mode` and device number `rdev` (0 unless a device), and returns its node. */
  mknod(name: string, kind: SpecialKind, mode: number, rdev: number, ctx: OpContext): MaybePromise<VNode>
}

/** Adds `name` in this directory as another name (a hard link) of `target`, a non-directory of the same mount. The name is checked and known to be free. Without it `EPERM`. */
export interface NodeLink {
  /** Adds `name` as another name of `target`. */
  link(name: string, target: VNode, ctx: OpContext): MaybePromise<void>
}

/**
 * Swaps child `name` with `newName` in `newParent` (rename with `RENAME_EXCHANGE`);
 * both exist. Without it `EINVAL`, as Linux answers for a filesystem without the flag.
 */
export interface NodeExchange {
  /** Swaps child `name` with `newName` in `newParent` in one step. */
  exchange(name: string, newParent: VNode, newName: string, ctx: OpContext): MaybePromise<void>
}

/** Reads extended attribute `name` (e.g. `user.origin`); `undefined` when there is none. Without it every attribute is absent (`ENODATA`). */
export interface NodeGetxattr {
  /** Returns the value of attribute `name`, or `undefined` when it is not set. */
  getxattr(name: string, ctx: OpContext): MaybePromise<Uint8Array | undefined>
}

/** Sets extended attribute `name`; the router has applied `XATTR_CREATE`/`XATTR_REPLACE`. Without it `EOPNOTSUPP`. */
export interface NodeSetxattr {
  /** Sets attribute `name` to `value`. */
  setxattr(name: string, value: Uint8Array, ctx: OpContext): MaybePromise<void>
}

/** Lists extended attribute names. Without it the list is empty. */
export interface NodeListxattr {
  /** Returns the names of the attributes set on the node. */
  listxattr(ctx: OpContext): MaybePromise<string[]>
}

/** Removes extended attribute `name`, which exists. Without it `EOPNOTSUPP`. */
export interface NodeRemovexattr {
  /** Removes attribute `name`. */
  removexattr(name: string, ctx: OpContext): MaybePromise<void>
}

/** Returns a symlink's target. Without it a symlink reads as `''`. */
export interface NodeReadlink {
  /** Returns the target text of this symlink. */
  readlink(ctx: OpContext): MaybePromise<string>
}

/** Makes a symlink named `name` pointing at `target` in this directory. Without it `EROFS`. */
export interface NodeSymlink {
  /** Makes symlink `name` with target text `target` and returns its node. */
  symlink(name: string, target: string, ctx: OpContext): MaybePromise<VNode>
}

/** Makes the node's data durable (for a directory: its entries). Without it fsync succeeds at once (nothing to flush). */
export interface NodeFsync {
  /** Makes written data durable; with `datasync`, only the data and the metadata needed to read it back. */
  fsync(datasync: boolean, ctx: OpContext): MaybePromise<void>
}

/** Reports filesystem figures. Without it the router reports a large, mostly free disk. */
export interface NodeStatfs {
  /** Returns the figures `df` shows for the filesystem this node is on. */
  statfs(ctx: OpContext): MaybePromise<StatFs>
}

/** What a node with a `setup` is given when its view is mounted: the view's context and where the node sits in it. */
export interface NodeContext extends ViewContext {
  /** The node's path in its view, `'/'` for the root, e.g. `'/books'`; changes below it are reported under it. */
  readonly path: string
}

/**
 * Takes part in its view's lifecycle: a collection starts watching its source in `setup`
 * and stops in `dispose`. The router calls the root's when it mounts and unmounts the
 * view; a folder made by `dir()` calls its children's (a function's children when each
 * first appears, with `dispose` when the function stops returning it); a node wrapping
 * another passes both calls on. Without it a node is not told: it has nothing to start.
 */
export interface NodeSetup {
  /** Starts what the node needs while mounted (watchers, connections); `ctx.signal` aborts when it should stop. */
  setup(ctx: NodeContext): void
  /** Undoes `setup`; called once, after `ctx.signal` is aborted. */
  dispose(): MaybePromise<void>
  /** The figures of this node and those below it that were set up, by path in the view; read by `/proc/stats.json`. */
  stats?(): Record<string, ViewStats>
}

type Method = string

function has<T>(node: VNode, method: Method): node is VNode & T {
  return typeof (node as unknown as Record<string, unknown>)[method] === 'function'
}

/** Type guards, one per capability. */
export const can = {
  getattr: (n: VNode): n is VNode & NodeGetattr => has(n, 'getattr'),
  lookup: (n: VNode): n is VNode & NodeLookup => has(n, 'lookup'),
  readdir: (n: VNode): n is VNode & NodeReaddir => has(n, 'readdir'),
  open: (n: VNode): n is VNode & NodeOpen => has(n, 'open'),
  read: (n: VNode): n is VNode & NodeRead => has(n, 'read'),
  write: (n: VNode): n is VNode & NodeWrite => has(n, 'write'),
  truncate: (n: VNode): n is VNode & NodeTruncate => has(n, 'truncate'),
  setattr: (n: VNode): n is VNode & NodeSetattr => has(n, 'setattr'),
  create: (n: VNode): n is VNode & NodeCreate => has(n, 'create'),
  mkdir: (n: VNode): n is VNode & NodeMkdir => has(n, 'mkdir'),
  unlink: (n: VNode): n is VNode & NodeUnlink => has(n, 'unlink'),
  rmdir: (n: VNode): n is VNode & NodeRmdir => has(n, 'rmdir'),
  rename: (n: VNode): n is VNode & NodeRename => has(n, 'rename'),
  readlink: (n: VNode): n is VNode & NodeReadlink => has(n, 'readlink'),
  symlink: (n: VNode): n is VNode & NodeSymlink => has(n, 'symlink'),
  mknod: (n: VNode): n is VNode & NodeMknod => has(n, 'mknod'),
  link: (n: VNode): n is VNode & NodeLink => has(n, 'link'),
  exchange: (n: VNode): n is VNode & NodeExchange => has(n, 'exchange'),
  getxattr: (n: VNode): n is VNode & NodeGetxattr => has(n, 'getxattr'),
  setxattr: (n: VNode): n is VNode & NodeSetxattr => has(n, 'setxattr'),
  listxattr: (n: VNode): n is VNode & NodeListxattr => has(n, 'listxattr'),
  removexattr: (n: VNode): n is VNode & NodeRemovexattr => has(n, 'removexattr'),
  fsync: (n: VNode): n is VNode & NodeFsync => has(n, 'fsync'),
  statfs: (n: VNode): n is VNode & NodeStatfs => has(n, 'statfs'),
  setup: (n: VNode): n is VNode & NodeSetup => has(n, 'setup') && has(n, 'dispose'),
}
