import { checkAccess, checkSticky, isRoot, newNodeOwner, routerChecks, W_OK, X_OK } from './access.ts'
import { vfsError } from './errors.ts'
import type { MountEntry, MountTable } from './mounts.ts'
import { can, type Attr, type OpContext, type VNode } from './node.ts'
import { basename, checkName, normalize } from './path.ts'
import { toStat, type InodeNumbers, type Stat } from './stat.ts'

const MAX_SYMLINKS = 40
const DEFAULT_PAGE = 1000

/** A path walked to its node. */
export interface Resolved {
  node: VNode
  entry: MountEntry | undefined
  /** The normalised path after following symlinks. */
  path: string
  /** True when this path is a mount point. */
  isMountPoint: boolean
  /** Table names below this path (mount points and their ancestors). */
  mountChildren: string[]
}

/**
 * True when `node` can change at all: a folder that makes or removes names, a file that
 * takes writes (one that only opens, as a view's file does, when its mode shows write bits).
 */
export function mutable(node: VNode, a: Attr): boolean {
  if (node.kind === 'dir') return can.create(node) || can.mkdir(node) || can.symlink(node) || can.mknod(node) || can.link(node) || can.unlink(node) || can.rmdir(node) || can.rename(node)
  return can.write(node) || can.truncate(node) || can.setxattr(node) || (can.open(node) && (a.mode & 0o222) !== 0)
}

/** The folder shown for a mount point's ancestors that no mount holds. */
export const syntheticDir: VNode = { kind: 'dir' }

/**
 * Walks paths to nodes through the mount table, following symlinks and checking search
 * rights on the way, and answers what the router asks of nodes: their attributes (with
 * the router's defaults), their stat, and whether a caller may act on them.
 */
export class Resolver {
  constructor(
    private readonly table: MountTable,
    private readonly inodes: InodeNumbers,
    private readonly startedMs: number,
  ) {}

  /** Checks the caller's `want` rights to `node` unless the kernel has checked them or the caller is the superuser. */
  async require(node: VNode, want: number, ctx: OpContext): Promise<void> {
    if (!routerChecks(ctx) || (isRoot(ctx) && (want & X_OK) === 0)) return
    const a = await this.attrOf(node, ctx)
    // as on Linux, a read-only tree answers EROFS before any permission check
    if (want & W_OK && !mutable(node, a)) throw vfsError('EROFS')
    checkAccess(a, want, ctx, node.kind === 'dir')
  }

  /** The caller may remove (or move away) `child` of `dir`: write and search rights on `dir`, and the sticky-folder rule. */
  async mayRemove(dir: VNode, child: VNode, ctx: OpContext, writeChecked = false): Promise<void> {
    if (!routerChecks(ctx) || isRoot(ctx)) return
    const d = await this.attrOf(dir, ctx)
    if (!mutable(dir, d)) throw vfsError('EROFS')
    if (!writeChecked) checkAccess(d, W_OK | X_OK, ctx, true)
    checkSticky(d, await this.attrOf(child, ctx), ctx)
  }

  /** The context and mode a node made in `parent` gets: the caller's uid, and the group (and folder setgid bit) per {@link newNodeOwner}. */
  async ownerCtx(parent: VNode, mode: number, isDir: boolean, ctx: OpContext): Promise<{ ctx: OpContext; mode: number }> {
    const a = await this.attrOf(parent, ctx)
    const owned = newNodeOwner(a, mode, isDir, ctx)
    return { ctx: owned.gid === ctx.gid ? ctx : { ...ctx, gid: owned.gid }, mode: owned.mode }
  }

  /** Walks to the node at normalised path `p`, following symlinks on the way (and the last one when `follow`), checking search rights on each folder. */
  async resolve(p: string, ctx: OpContext, follow: boolean, hops = 0): Promise<Resolved> {
    const names = p === '/' ? [] : p.slice(1).split('/')
    const match = this.table.match(names)
    const mountChildren = this.table.childNames(match.exact)
    const isMountPoint = match.exact?.entry !== undefined
    const entry = match.entry
    if (!entry) {
      if (match.exact) return { node: syntheticDir, entry: undefined, path: p, isMountPoint, mountChildren }
      throw vfsError('ENOENT')
    }
    const search = routerChecks(ctx) && !isRoot(ctx)
    let node = entry.mount.root
    for (let i = match.depth; i < names.length; i++) {
      if (node.kind !== 'dir') throw vfsError('ENOTDIR')
      if (search) checkAccess(await this.attrOf(node, ctx), X_OK, ctx, true)
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

  async childOf(dir: VNode, name: string, ctx: OpContext): Promise<VNode | undefined> {
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

  async parentOf(p: string, ctx: OpContext): Promise<{ parent: Resolved; name: string; isMountPoint: boolean }> {
    if (p === '/') throw vfsError('EBUSY', 'the root has no parent')
    const name = checkName(basename(p))
    const parentPath = p.slice(0, p.length - name.length - 1) || '/'
    const parent = await this.resolve(parentPath, ctx, true)
    if (parent.node.kind !== 'dir') throw vfsError('ENOTDIR')
    if (routerChecks(ctx) && !isRoot(ctx)) checkAccess(await this.attrOf(parent.node, ctx), X_OK, ctx, true)
    return { parent, name, isMountPoint: parent.mountChildren.includes(name) }
  }

  /** The parent of a name to make: the name must be free, and the caller may write the parent. */
  async freeChild(p: string, ctx: OpContext): Promise<{ parent: Resolved; name: string }> {
    const { parent, name, isMountPoint } = await this.parentOf(p, ctx)
    if (isMountPoint || (await this.childOf(parent.node, name, ctx))) throw vfsError('EEXIST')
    if (parent.node === syntheticDir) throw vfsError('EROFS', 'no mount holds this folder')
    await this.require(parent.node, W_OK | X_OK, ctx)
    return { parent, name }
  }

  async existingChild(p: string, ctx: OpContext): Promise<{ parent: Resolved; name: string; child: VNode }> {
    const { parent, name, isMountPoint } = await this.parentOf(p, ctx)
    if (isMountPoint) throw vfsError('EBUSY', 'it is a mount point')
    const child = await this.childOf(parent.node, name, ctx)
    if (!child) throw vfsError('ENOENT')
    return { parent, name, child }
  }

  async attrOf(node: VNode, ctx: OpContext): Promise<Attr> {
    if (can.getattr(node)) return node.getattr(ctx)
    const t = this.startedMs
    let mode = 0o777
    let size = 0
    if (node.kind === 'dir') mode = can.create(node) || can.mkdir(node) ? 0o755 : 0o555
    else if (node.kind === 'file') mode = can.write(node) || can.open(node) ? 0o644 : 0o444
    else if (node.kind === 'symlink') size = Buffer.byteLength(await this.readlinkOf(node, ctx))
    else mode = 0o644
    return { mode, size, uid: 0, gid: 0, atimeMs: t, mtimeMs: t, ctimeMs: t }
  }

  async statOf(r: Resolved, ctx: OpContext): Promise<Stat> {
    return this.toStat(r.node, await this.attrOf(r.node, ctx), r.node === syntheticDir ? undefined : r.entry)
  }

  toStat(node: VNode, a: Attr, entry: MountEntry | undefined): Stat {
    return toStat(node, a, this.inodes.of(node, a, entry?.id ?? 0))
  }

  async readlinkOf(node: VNode, ctx: OpContext): Promise<string> {
    if (node.kind !== 'symlink') throw vfsError('EINVAL', 'not a symlink')
    return can.readlink(node) ? node.readlink(ctx) : ''
  }
}
