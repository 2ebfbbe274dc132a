import { vfsError } from './errors.ts'
import type { Mount } from './mounts.ts'
import type {
  Attr,
  AttrChanges,
  DirPage,
  NodeCreate,
  NodeGetattr,
  NodeLookup,
  NodeMkdir,
  NodeRead,
  NodeReaddir,
  NodeReadlink,
  NodeRename,
  NodeRmdir,
  NodeSetattr,
  NodeStatfs,
  NodeSymlink,
  NodeTruncate,
  NodeUnlink,
  NodeWrite,
  OpContext,
  PageRequest,
  StatFs,
  VNode,
} from './node.ts'

/** Options for {@link memoryMount}. */
export interface MemoryMountOptions {
  /** The mount's name. @default 'memory' */
  name?: string
  /** The most content bytes the mount holds before writes fail with `ENOSPC`. @default 4 GiB */
  maxBytes?: number
}

interface Space {
  used: number
  readonly max: number
  inodes: number
}

let inoCounter = 1

abstract class MemNode implements NodeGetattr, NodeSetattr {
  abstract readonly kind: 'file' | 'dir' | 'symlink'
  readonly ino = ++inoCounter
  mode: number
  uid: number
  gid: number
  atimeMs: number
  mtimeMs: number
  ctimeMs: number

  constructor(mode: number, ctx: OpContext) {
    const now = Date.now()
    this.mode = mode
    this.uid = ctx.uid
    this.gid = ctx.gid
    this.atimeMs = now
    this.mtimeMs = now
    this.ctimeMs = now
  }

  abstract get size(): number

  getattr(): Attr {
    return {
      mode: this.mode,
      size: this.size,
      uid: this.uid,
      gid: this.gid,
      atimeMs: this.atimeMs,
      mtimeMs: this.mtimeMs,
      ctimeMs: this.ctimeMs,
      ino: this.ino,
      nlink: this.kind === 'dir' ? 2 : 1,
    }
  }

  setattr(c: AttrChanges): void {
    if (c.mode !== undefined) this.mode = c.mode & 0o7777
    if (c.uid !== undefined) this.uid = c.uid
    if (c.gid !== undefined) this.gid = c.gid
    if (c.atimeMs !== undefined) this.atimeMs = c.atimeMs
    if (c.mtimeMs !== undefined) this.mtimeMs = c.mtimeMs
    this.ctimeMs = Date.now()
  }

  protected touch(): void {
    this.mtimeMs = this.ctimeMs = Date.now()
  }
}

class MemFile extends MemNode implements NodeRead, NodeWrite, NodeTruncate {
  readonly kind = 'file' as const
  private buf: Buffer = Buffer.alloc(0)
  private length = 0

  constructor(mode: number, ctx: OpContext, private readonly space: Space) {
    super(mode, ctx)
  }

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

  /** Frees the content when the file leaves the tree. */
  drop(): void {
    this.space.used -= this.buf.length
    this.buf = Buffer.alloc(0)
    this.length = 0
  }

  private resize(size: number): void {
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
    this.space.used += capacity - this.buf.length
    this.buf = next
    this.length = size
  }
}

class MemSymlink extends MemNode implements NodeReadlink {
  readonly kind = 'symlink' as const
  constructor(private readonly target: string, ctx: OpContext) {
    super(0o777, ctx)
  }

  get size(): number {
    return Buffer.byteLength(this.target)
  }

  readlink(): string {
    return this.target
  }
}

class MemDir
  extends MemNode
  implements NodeLookup, NodeReaddir, NodeCreate, NodeMkdir, NodeSymlink, NodeUnlink, NodeRmdir, NodeRename
{
  readonly kind = 'dir' as const
  readonly children = new Map<string, MemFile | MemDir | MemSymlink>()

  constructor(mode: number, ctx: OpContext, protected readonly space: Space) {
    super(mode, ctx)
  }

  get size(): number {
    return 4096
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
      entries.push({ name, kind: node.kind })
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
    return this.add(name, new MemSymlink(target, ctx))
  }

  unlink(name: string): void {
    const child = this.children.get(name)
    if (!child) throw vfsError('ENOENT')
    if (child instanceof MemFile) child.drop()
    this.remove(name)
  }

  rmdir(name: string): void {
    const child = this.children.get(name)
    if (!(child instanceof MemDir)) throw vfsError('ENOTDIR')
    if (child.children.size > 0) throw vfsError('ENOTEMPTY')
    this.remove(name)
  }

  rename(name: string, newParent: VNode, newName: string): void {
    const child = this.children.get(name)
    if (!child) throw vfsError('ENOENT')
    if (!(newParent instanceof MemDir)) throw vfsError('EXDEV')
    const target = newParent.children.get(newName)
    if (target === child) return
    if (target instanceof MemDir && target.children.size > 0) throw vfsError('ENOTEMPTY')
    if (child instanceof MemDir && newParent.isInside(child)) throw vfsError('EINVAL', 'cannot move a directory into itself')
    if (target) newParent.remove(newName)
    if (target instanceof MemFile) target.drop()
    this.children.delete(name)
    this.touch()
    newParent.children.set(newName, child)
    newParent.touch()
    child.ctimeMs = Date.now()
  }

  private isInside(dir: MemDir): boolean {
    if (this === dir) return true
    for (const child of dir.children.values()) {
      if (child instanceof MemDir && this.isInside(child)) return true
    }
    return false
  }

  private add<T extends MemFile | MemDir | MemSymlink>(name: string, node: T): T {
    if (this.children.has(name)) throw vfsError('EEXIST')
    this.children.set(name, node)
    this.space.inodes++
    this.touch()
    return node
  }

  private remove(name: string): void {
    if (this.children.delete(name)) this.space.inodes--
    this.touch()
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
 * A complete read-write POSIX-style tree held in memory: files, folders, symlinks,
 * rename, truncate, chmod/chown/utimens, sparse files read as zeros. It is the
 * reference every other mount is tested against.
 */
export function memoryMount(options: MemoryMountOptions = {}): Mount {
  const space: Space = { used: 0, max: options.maxBytes ?? 4 * 1024 ** 3, inodes: 1 }
  const ctx = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } as OpContext
  return { name: options.name ?? 'memory', root: new MemRoot(0o755, ctx, space) }
}
