import { vfsError } from './errors.ts'
import type { Mount } from './mounts.ts'
import type {
  Attr,
  AttrChanges,
  DirPage,
  NodeCreate,
  NodeExchange,
  NodeGetattr,
  NodeGetxattr,
  NodeLink,
  NodeListxattr,
  NodeLookup,
  NodeMkdir,
  NodeMknod,
  NodeRead,
  NodeReaddir,
  NodeReadlink,
  NodeRemovexattr,
  NodeRename,
  NodeRmdir,
  NodeSetattr,
  NodeSetxattr,
  NodeStatfs,
  NodeSymlink,
  NodeTruncate,
  NodeUnlink,
  NodeWrite,
  OpContext,
  PageRequest,
  SpecialKind,
  StatFs,
  VNode,
} from './node.ts'
import { nowNs, nsToMs } from './stat.ts'

/** Options for {@link memoryMount}. */
export interface MemoryMountOptions {
  /** The mount's name. @default 'memory' */
  name?: string
  /** The most content bytes the mount holds before writes fail with `ENOSPC`. @default 4 GiB */
  maxBytes?: number
}

/** The largest file any FacetFS mount keeps (64 TiB); a larger size is `EFBIG`. */
export const MAX_FILE_SIZE = 2 ** 46

interface Space {
  used: number
  readonly max: number
  inodes: number
  nextIno: number
}

abstract class MemNode implements NodeGetattr, NodeSetattr, NodeGetxattr, NodeSetxattr, NodeListxattr, NodeRemovexattr {
  abstract readonly kind: 'file' | 'dir' | 'symlink' | SpecialKind
  readonly ino: number
  mode: number
  uid: number
  gid: number
  // the times in nanoseconds, with their milliseconds worked out when set (a stat reads them far more often)
  private aNs: bigint
  private mNs: bigint
  private cNs: bigint
  private aMs: number
  private mMs: number
  private cMs: number
  /** Names this node has in the tree (hard links). */
  links = 1
  private xattrs: Map<string, Uint8Array> | undefined

  constructor(mode: number, ctx: Pick<OpContext, 'uid' | 'gid'>, protected readonly space: Space) {
    const now = nowNs()
    this.ino = space.nextIno++
    this.mode = mode
    this.uid = ctx.uid
    this.gid = ctx.gid
    this.aNs = this.mNs = this.cNs = now
    this.aMs = this.mMs = this.cMs = nsToMs(now)
  }

  get atimeNs(): bigint {
    return this.aNs
  }
  set atimeNs(ns: bigint) {
    this.aNs = ns
    this.aMs = nsToMs(ns)
  }
  get mtimeNs(): bigint {
    return this.mNs
  }
  set mtimeNs(ns: bigint) {
    this.mNs = ns
    this.mMs = nsToMs(ns)
  }
  get ctimeNs(): bigint {
    return this.cNs
  }
  set ctimeNs(ns: bigint) {
    this.cNs = ns
    this.cMs = nsToMs(ns)
  }

  abstract get size(): number

  get nlink(): number {
    return this.links
  }

  getattr(): Attr {
    return {
      mode: this.mode,
      size: this.size,
      uid: this.uid,
      gid: this.gid,
      atimeMs: this.aMs,
      mtimeMs: this.mMs,
      ctimeMs: this.cMs,
      atimeNs: this.aNs,
      mtimeNs: this.mNs,
      ctimeNs: this.cNs,
      ino: this.ino,
      nlink: this.nlink,
      rdev: this.rdev,
    }
  }

  get rdev(): number {
    return 0
  }

  setattr(c: AttrChanges): void {
    if (c.mode !== undefined) this.mode = c.mode & 0o7777
    if (c.uid !== undefined) this.uid = c.uid
    if (c.gid !== undefined) this.gid = c.gid
    if (c.atimeNs !== undefined) this.atimeNs = c.atimeNs
    if (c.mtimeNs !== undefined) this.mtimeNs = c.mtimeNs
    this.ctimeNs = nowNs()
  }

  getxattr(name: string): Uint8Array | undefined {
    return this.xattrs?.get(name)
  }

  setxattr(name: string, value: Uint8Array): void {
    ;(this.xattrs ??= new Map()).set(name, value)
    this.ctimeNs = nowNs()
  }

  listxattr(): string[] {
    return this.xattrs ? [...this.xattrs.keys()] : []
  }

  removexattr(name: string): void {
    this.xattrs?.delete(name)
    this.ctimeNs = nowNs()
  }

  protected touch(): void {
    this.mtimeNs = this.ctimeNs = nowNs()
  }

  /** Called when one of the node's names goes; frees its content with the last one. */
  unlinked(): void {
    this.links--
    this.ctimeNs = nowNs()
  }
}

class MemFile extends MemNode implements NodeRead, NodeWrite, NodeTruncate {
  readonly kind = 'file' as const
  private buf: Buffer = Buffer.alloc(0)
  private length = 0

  get size(): number {
    return this.length
  }

  read(offset: number, length: number): Uint8Array {
    if (offset >= this.length) return new Uint8Array(0)
    return this.buf.subarray(offset, Math.min(this.length, offset + length))
  }

  write(offset: number, data: Uint8Array): number {
    const end = offset + data.length
    if (end > this.length) this.resize(end)
    this.buf.set(data, offset)
    this.touch()
    return data.length
  }

  truncate(size: number): void {
    this.resize(size)
    this.touch()
  }

  override unlinked(): void {
    super.unlinked()
    // open handles keep reading the buffer; the space it takes counts as free from now
    if (this.links === 0) this.space.used -= this.buf.length
  }

  private resize(size: number): void {
    if (size > MAX_FILE_SIZE) throw vfsError('EFBIG', `a file holds at most ${MAX_FILE_SIZE} bytes`)
    if (size > this.buf.length) {
      const capacity = Math.max(size, Math.min(this.buf.length * 2, size + (64 << 20)), 4096)
      const grow = capacity - this.buf.length
      if (this.space.used + grow > this.space.max) {
        if (this.space.used + (size - this.buf.length) > this.space.max) throw vfsError('ENOSPC')
        return this.realloc(size, size)
      }
      this.realloc(capacity, size)
    } else {
      if (size < this.length) this.buf.fill(0, size, this.length)
      this.length = size
    }
  }

  private realloc(capacity: number, size: number): void {
    const next = Buffer.allocUnsafe(capacity)
    this.buf.copy(next, 0, 0, this.length)
    next.fill(0, this.length)
    if (this.links > 0) this.space.used += capacity - this.buf.length
    this.buf = next
    this.length = size
  }
}

class MemSymlink extends MemNode implements NodeReadlink {
  readonly kind = 'symlink' as const
  constructor(private readonly target: string, ctx: Pick<OpContext, 'uid' | 'gid'>, space: Space) {
    super(0o777, ctx, space)
  }

  get size(): number {
    return Buffer.byteLength(this.target)
  }

  readlink(): string {
    return this.target
  }
}

class MemSpecial extends MemNode {
  constructor(readonly kind: SpecialKind, mode: number, private readonly device: number, ctx: Pick<OpContext, 'uid' | 'gid'>, space: Space) {
    super(mode, ctx, space)
  }

  get size(): number {
    return 0
  }

  override get rdev(): number {
    return this.device
  }
}

type Child = MemFile | MemDir | MemSymlink | MemSpecial

class MemDir
  extends MemNode
  implements NodeLookup, NodeReaddir, NodeCreate, NodeMkdir, NodeSymlink, NodeMknod, NodeLink, NodeUnlink, NodeRmdir, NodeRename, NodeExchange
{
  readonly kind = 'dir' as const
  readonly children = new Map<string, Child>()
  private subdirs = 0

  get size(): number {
    return 4096
  }

  override get nlink(): number {
    return this.links === 0 ? 0 : 2 + this.subdirs
  }

  lookup(name: string): VNode | undefined {
    return this.children.get(name)
  }

  readdir(page: PageRequest): DirPage {
    const start = page.cursor === undefined ? 0 : Number(page.cursor)
    const entries = []
    let i = 0
    for (const [name, node] of this.children) {
      if (i++ < start) continue
      if (entries.length === page.limit) return { entries, cursor: String(start + entries.length) }
      entries.push({ name, kind: node.kind, node })
    }
    return { entries }
  }

  create(name: string, mode: number, ctx: OpContext): VNode {
    return this.add(name, new MemFile(mode, ctx, this.space))
  }

  mkdir(name: string, mode: number, ctx: OpContext): VNode {
    return this.add(name, new MemDir(mode, ctx, this.space))
  }

  symlink(name: string, target: string, ctx: OpContext): VNode {
    return this.add(name, new MemSymlink(target, ctx, this.space))
  }

  mknod(name: string, kind: SpecialKind, mode: number, rdev: number, ctx: OpContext): VNode {
    return this.add(name, new MemSpecial(kind, mode, rdev, ctx, this.space))
  }

  link(name: string, target: VNode): void {
    if (!(target instanceof MemNode) || target instanceof MemDir) throw vfsError('EPERM')
    if (target.links >= 65000) throw vfsError('EMLINK')
    if (this.children.has(name)) throw vfsError('EEXIST')
    this.children.set(name, target as Child)
    target.links++
    target.ctimeNs = nowNs()
    this.touch()
  }

  unlink(name: string): void {
    const child = this.children.get(name)
    if (!child) throw vfsError('ENOENT')
    this.remove(name, child)
  }

  rmdir(name: string): void {
    const child = this.children.get(name)
    if (!(child instanceof MemDir)) throw vfsError('ENOTDIR')
    if (child.children.size > 0) throw vfsError('ENOTEMPTY')
    this.remove(name, child)
  }

  rename(name: string, newParent: VNode, newName: string): void {
    const child = this.children.get(name)
    if (!child) throw vfsError('ENOENT')
    if (!(newParent instanceof MemDir)) throw vfsError('EXDEV')
    const target = newParent.children.get(newName)
    if (target === child) return
    if (target instanceof MemDir && target.children.size > 0) throw vfsError('ENOTEMPTY')
    if (child instanceof MemDir && newParent.isInside(child)) throw vfsError('EINVAL', 'cannot move a directory into itself')
    if (target) newParent.remove(newName, target)
    this.detach(name, child)
    newParent.attach(newName, child)
    child.ctimeNs = nowNs()
  }

  exchange(name: string, newParent: VNode, newName: string): void {
    const a = this.children.get(name)
    if (!(newParent instanceof MemDir)) throw vfsError('EXDEV')
    const b = newParent.children.get(newName)
    if (!a || !b) throw vfsError('ENOENT')
    if (a === b) return
    if ((a instanceof MemDir && newParent.isInside(a)) || (b instanceof MemDir && this.isInside(b))) throw vfsError('EINVAL', 'cannot move a directory into itself')
    this.detach(name, a)
    newParent.detach(newName, b)
    this.attach(name, b)
    newParent.attach(newName, a)
    a.ctimeNs = b.ctimeNs = nowNs()
  }

  private isInside(dir: MemDir): boolean {
    if (this === dir) return true
    for (const child of dir.children.values()) {
      if (child instanceof MemDir && this.isInside(child)) return true
    }
    return false
  }

  private attach(name: string, node: Child): void {
    this.children.set(name, node)
    if (node instanceof MemDir) this.subdirs++
    this.touch()
  }

  private detach(name: string, node: Child): void {
    this.children.delete(name)
    if (node instanceof MemDir) this.subdirs--
    this.touch()
  }

  private add<T extends Child>(name: string, node: T): T {
    if (this.children.has(name)) throw vfsError('EEXIST')
    this.attach(name, node)
    this.space.inodes++
    return node
  }

  private remove(name: string, node: Child): void {
    this.detach(name, node)
    node.unlinked()
    if (node.links === 0) this.space.inodes--
  }
}

class MemRoot extends MemDir implements NodeStatfs {
  statfs(): StatFs {
    const bsize = 4096
    const blocks = Math.ceil(this.space.max / bsize)
    const bfree = Math.max(0, blocks - Math.ceil(this.space.used / bsize))
    return { bsize, blocks, bfree, bavail: bfree, files: 1 << 24, ffree: (1 << 24) - this.space.inodes, namemax: 255 }
  }
}

/**
 * A complete read-write POSIX tree held in memory: files, folders, symlinks, hard
 * links, fifos, device nodes and sockets, `user.*` extended attributes, rename (with
 * exchange), truncate, chmod/chown/utimens with nanosecond times, sparse files read as
 * zeros, and files that stay readable through open handles after their last name goes.
 * It is the reference every other mount is tested against.
 */
export function memoryMount(options: MemoryMountOptions = {}): Mount {
  const space: Space = { used: 0, max: options.maxBytes ?? 4 * 1024 ** 3, inodes: 1, nextIno: 1 }
  const ctx = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
  return { name: options.name ?? 'memory', root: new MemRoot(0o755, ctx, space) }
}
