import { vfsError } from '../vfs/errors.ts'
import type { Attr, AttrChanges, NodeKind, OpContext } from '../vfs/node.ts'
import { msToNs, nowNs, nsToMs } from '../vfs/stat.ts'
import { ROOT_INO, type ChainEvent } from './format.ts'
import { ChainTree, type Inode, type Link } from './tree.ts'
export { scopedSink } from './write-scope.ts'

/** How a {@link Namespace} hands its changes to the chain's commit engine. */
export interface ChangeSink {
  /** Throws (`EROFS`, `EIO`) unless the chain takes changes now. */
  writable(): void
  /** Queues the metadata of `n`, as it is in memory, for the next block. */
  metaChanged(n: Inode): void
  /** Queues an event for the next block. */
  emit(e: ChainEvent): void
  /** The last name of `n` went: forget its queued changes, but keep its unsealed content for open handles. */
  released(n: Inode): void
}

/** The most names one inode may have, as in the memory mount; one more is `EMLINK`. */
const MAX_LINKS = 65000

/** One name in a directory: the inode it names, and the link record when it is not the inode's first name. */
interface Entry {
  n: Inode
  link?: Link | undefined
}

/**
 * The POSIX namespace of a chain: names, hard links, special files, attributes and
 * extended attributes, kept in its materialised tree. An inode's first name lies in its
 * metadata (which is sealed under that directory's key); further names are link records
 * sealed under the key of the directory each lies in. When the first name goes, another
 * name takes its place; the inode is dropped (a tombstone) only with its last name.
 */
export class Namespace {
  constructor(
    readonly tree: ChainTree,
    private readonly sink: ChangeSink,
  ) {}

  /** Attributes of inode `n` in `tree`. */
  attr(n: Inode, tree: ChainTree = this.tree): Attr {
    const m = tree.meta(n)
    const a: Attr = {
      mode: m.mode,
      size: m.size,
      uid: m.uid,
      gid: m.gid,
      atimeMs: nsToMs(m.atimeNs),
      mtimeMs: nsToMs(m.mtimeNs),
      ctimeMs: nsToMs(m.ctimeNs),
      atimeNs: m.atimeNs,
      mtimeNs: m.mtimeNs,
      ctimeNs: m.ctimeNs,
      ino: n.ino,
      nlink: this.nlink(n, tree),
    }
    if (m.rdev) a.rdev = m.rdev
    return a
  }

  /** Names of `n`: 0 once the last went, 2 plus its subdirectories for a directory. */
  private nlink(n: Inode, tree: ChainTree): number {
    if (n.deleted) return 0
    const m = tree.meta(n)
    if (m.kind !== 'dir') return 1 + (m.links?.length ?? 0)
    tree.names(n)
    return 2 + n.subdirs
  }

  /** Looks up child `name` of directory `dir`. */
  lookup(dir: Inode, name: string, tree: ChainTree = this.tree): Inode | undefined {
    const ino = tree.names(dir).get(name)
    return ino === undefined ? undefined : tree.inodes.get(ino)
  }

  /** Sets the modification and change times of `n` to now (its content or entries changed). */
  touch(n: Inode, now = nowNs()): void {
    const m = this.tree.meta(n)
    m.mtimeNs = m.ctimeNs = now
    this.sink.metaChanged(n)
  }

  /** Queues the metadata of `n` for the next block as it is in memory, times unchanged (its key rotated: rotation.ts). */
  resealed(n: Inode): void {
    this.sink.metaChanged(n)
  }

  /** Sets the change time of `n` to now (its metadata changed). */
  private changed(n: Inode, now: bigint): void {
    this.tree.meta(n).ctimeNs = now
    this.sink.metaChanged(n)
  }

  /** Makes a child of `dir`: a file, a directory, a symlink to `target`, or a special file (a device with number `rdev`). */
  make(dir: Inode, name: string, kind: NodeKind, mode: number, ctx: Pick<OpContext, 'uid' | 'gid'>, target?: string, rdev = 0): Inode {
    this.sink.writable()
    if (this.tree.names(dir).has(name)) throw vfsError('EEXIST')
    const n = this.tree.inode(this.tree.maxIno + 1)
    const now = nowNs()
    n.keyParent = dir.ino
    n.meta = {
      name,
      parent: dir.ino,
      kind,
      mode: mode & 0o7777,
      uid: ctx.uid,
      gid: ctx.gid,
      atimeNs: now,
      mtimeNs: now,
      ctimeNs: now,
      size: kind === 'symlink' ? Buffer.byteLength(target!) : 0,
      target,
      rdev: kind === 'chardev' || kind === 'blockdev' ? rdev : undefined,
      key: ChainTree.newKey(),
    }
    dir.children.add(n.ino)
    this.tree.addName(dir, name, n.ino)
    this.sink.metaChanged(n)
    this.touch(dir, now)
    return n
  }

  /** Adds `name` in `dir` as a further name of `target` (a hard link); `EPERM` for a directory. */
  link(dir: Inode, name: string, target: Inode): void {
    this.sink.writable()
    const m = this.tree.meta(target)
    if (m.kind === 'dir') throw vfsError('EPERM', 'folders cannot be hard-linked')
    if (target.deleted) throw vfsError('ENOENT', 'the file has no name left')
    if (1 + (m.links?.length ?? 0) >= MAX_LINKS) throw vfsError('EMLINK')
    if (this.tree.names(dir).has(name)) throw vfsError('EEXIST')
    const e = this.tree.putLink(undefined, dir, name, target.ino)
    this.tree.addName(dir, name, target.ino, e.link)
    m.links = [...(m.links ?? []), e.link]
    this.sink.emit(e)
    const now = nowNs()
    this.changed(target, now)
    this.touch(dir, now)
  }

  /** Removes name `name` of `dir` (a file, symlink, special file or empty directory); the inode goes with its last name. Open handles keep reading it. */
  remove(dir: Inode, name: string): void {
    this.sink.writable()
    const e = this.entry(dir, name)
    if (!e) throw vfsError('ENOENT')
    if (this.tree.meta(e.n).kind === 'dir' && !isEmpty(e.n)) throw vfsError('ENOTEMPTY')
    const now = nowNs()
    this.unname(dir, name, e, now)
    this.touch(dir, now)
  }

  /** Moves name `name` of `dir` to `newName` in `newDir`, replacing what is there; nothing when both name one inode. */
  rename(dir: Inode, name: string, newDir: Inode, newName: string): void {
    this.sink.writable()
    const src = this.entry(dir, name)
    if (!src) throw vfsError('ENOENT')
    const target = this.entry(newDir, newName)
    if (target?.n === src.n) return
    const kind = this.tree.meta(src.n).kind
    if (kind === 'dir' && this.isWithin(newDir, src.n)) throw vfsError('EINVAL', 'cannot move a directory into itself')
    const now = nowNs()
    if (target) {
      const tkind = this.tree.meta(target.n).kind
      if (tkind === 'dir' && kind !== 'dir') throw vfsError('EISDIR')
      if (tkind !== 'dir' && kind === 'dir') throw vfsError('ENOTDIR')
      if (tkind === 'dir' && !isEmpty(target.n)) throw vfsError('ENOTEMPTY')
      this.unname(newDir, newName, target, now)
    }
    this.tree.removeName(dir, name)
    this.place(src, newDir, newName)
    this.changed(src.n, now)
    this.touch(dir, now)
    if (newDir !== dir) this.touch(newDir, now)
  }

  /** Swaps name `name` of `dir` with `newName` of `newDir` (`RENAME_EXCHANGE`); both must exist. */
  exchange(dir: Inode, name: string, newDir: Inode, newName: string): void {
    this.sink.writable()
    const a = this.entry(dir, name)
    const b = this.entry(newDir, newName)
    if (!a || !b) throw vfsError('ENOENT')
    if (a.n === b.n) return
    if ((this.tree.meta(a.n).kind === 'dir' && this.isWithin(newDir, a.n)) || (this.tree.meta(b.n).kind === 'dir' && this.isWithin(dir, b.n))) {
      throw vfsError('EINVAL', 'cannot move a directory into itself')
    }
    const now = nowNs()
    this.tree.removeName(dir, name)
    this.tree.removeName(newDir, newName)
    this.place(a, newDir, newName)
    this.place(b, dir, name)
    this.changed(a.n, now)
    this.changed(b.n, now)
    this.touch(dir, now)
    if (newDir !== dir) this.touch(newDir, now)
  }

  /** Changes mode, owner or times of `n` (nanoseconds when given, else milliseconds); the change time becomes now. */
  setattr(n: Inode, c: AttrChanges): void {
    this.sink.writable()
    const m = this.tree.meta(n)
    if (c.mode !== undefined) m.mode = c.mode & 0o7777
    if (c.uid !== undefined) m.uid = c.uid
    if (c.gid !== undefined) m.gid = c.gid
    if (c.atimeNs !== undefined) m.atimeNs = c.atimeNs
    else if (c.atimeMs !== undefined) m.atimeNs = msToNs(c.atimeMs)
    if (c.mtimeNs !== undefined) m.mtimeNs = c.mtimeNs
    else if (c.mtimeMs !== undefined) m.mtimeNs = msToNs(c.mtimeMs)
    this.changed(n, nowNs())
  }

  /** The value of extended attribute `name` of `n`, or undefined. */
  getxattr(n: Inode, name: string, tree: ChainTree = this.tree): Uint8Array | undefined {
    return tree.xattrs(n).get(name)
  }

  /** The names of the extended attributes of `n`. */
  listxattr(n: Inode, tree: ChainTree = this.tree): string[] {
    return [...tree.xattrs(n).keys()]
  }

  /** Sets extended attribute `name` of `n`. */
  setxattr(n: Inode, name: string, value: Uint8Array): void {
    this.sink.writable()
    this.tree.xattrs(n).set(name, Buffer.from(value))
    this.xattrsChanged(n)
  }

  /** Removes extended attribute `name` of `n`; `ENODATA` when it has none. */
  removexattr(n: Inode, name: string): void {
    this.sink.writable()
    if (!this.tree.xattrs(n).delete(name)) throw vfsError('ENODATA')
    this.xattrsChanged(n)
  }

  private xattrsChanged(n: Inode): void {
    // an inode without names keeps its attributes in memory, for its open handles
    if (!n.deleted) this.sink.emit(this.tree.sealXattrs(n))
    this.changed(n, nowNs())
  }

  /** Name `name` of `dir`: the inode, and its link record unless it is the first name. */
  private entry(dir: Inode, name: string): Entry | undefined {
    const ino = this.tree.names(dir).get(name)
    if (ino === undefined) return undefined
    const n = this.tree.inodes.get(ino)
    if (!n) return undefined
    const id = dir.linkNames!.get(name)
    return { n, link: id === undefined ? undefined : this.tree.links.get(id) }
  }

  /** True when `dir` is `ancestor` or lies below it. */
  private isWithin(dir: Inode, ancestor: Inode): boolean {
    for (let p: Inode | undefined = dir; p; p = p.ino === ROOT_INO ? undefined : this.tree.inodes.get(p.keyParent)) {
      if (p === ancestor) return true
    }
    return false
  }

  /** Gives name `e` (taken out of its directory's listing already) its new place `name` in `dir`. */
  private place(e: Entry, dir: Inode, name: string): void {
    if (e.link) {
      this.sink.emit(this.tree.putLink(e.link, dir, name, e.n.ino))
      this.tree.addName(dir, name, e.n.ino, e.link.id)
      return
    }
    const m = this.tree.meta(e.n)
    this.tree.inodes.get(e.n.keyParent)?.children.delete(e.n.ino)
    m.name = name
    m.parent = dir.ino
    e.n.keyParent = dir.ino
    dir.children.add(e.n.ino)
    this.tree.addName(dir, name, e.n.ino)
    this.sink.metaChanged(e.n)
  }

  /** Removes one name of an inode: a link record, or the first name, which another name replaces or, as the last one, drops the inode. */
  private unname(dir: Inode, name: string, e: Entry, now: bigint): void {
    const m = this.tree.meta(e.n)
    this.tree.removeName(dir, name)
    if (e.link) {
      this.tree.dropLink(e.link)
      this.sink.emit({ type: 'linkDrop', link: e.link.id })
      m.links = m.links!.filter(id => id !== e.link!.id)
      this.changed(e.n, now)
      return
    }
    dir.children.delete(e.n.ino)
    const next = m.links?.[0]
    if (next === undefined) return this.drop(e.n)
    // another name becomes the first: the inode's metadata moves to the directory that name lies in
    const l = this.tree.links.get(next)!
    const { name: newName } = this.tree.linkEntry(l)
    const newDir = this.tree.inodes.get(l.dir)!
    newDir.linkNames?.delete(newName)
    this.tree.dropLink(l)
    this.sink.emit({ type: 'linkDrop', link: l.id })
    m.links = m.links!.slice(1)
    m.name = newName
    m.parent = newDir.ino
    e.n.keyParent = newDir.ino
    newDir.children.add(e.n.ino)
    this.changed(e.n, now)
  }

  /** Drops inode `n`, whose last name went: a tombstone. */
  private drop(n: Inode): void {
    // queued first: a sink that checks where the inode lies (write-scope.ts) still finds it
    this.sink.emit({ type: 'tombstone', ino: n.ino })
    this.tree.inodes.delete(n.ino)
    n.deleted = true
    this.sink.released(n)
  }
}

function isEmpty(dir: Inode): boolean {
  return dir.children.size === 0 && dir.linksHere.size === 0
}
