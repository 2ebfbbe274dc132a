import { R_OK, W_OK, X_OK } from './access.ts'
import { vfsError } from './errors.ts'
import type { HandleTable, OpenFile } from './handles.ts'
import type { ChangeType, MountEntry } from './mounts.ts'
import { can, type FileHandle, type NodeKind, type OpContext, type OpenFlags } from './node.ts'
import { syntheticDir, type Resolved, type Resolver } from './resolver.ts'

/** What {@link openAt} needs of the router. */
export interface OpenDeps {
  readonly paths: Resolver
  readonly files: HandleTable
  emitChange(type: ChangeType, r: { path: string; entry: MountEntry | undefined }, kind: NodeKind): void
}

/**
 * Opens the file at normalised path `p` for the router's `open` and `create`: resolves
 * or creates it (`O_CREAT`, `O_EXCL`), checks the caller's rights, opens the node's handle
 * (one that cannot write refuses a write open with `EROFS`), empties it for `O_TRUNC` (a
 * handle that then counts as written), and returns the new handle number.
 */
export async function openAt(d: OpenDeps, p: string, flags: OpenFlags, mode: number, ctx: OpContext): Promise<number> {
  let r: Resolved | undefined
  let created = false
  if (flags.create) {
    const { parent, name, isMountPoint } = await d.paths.parentOf(p, ctx)
    const existing = isMountPoint ? syntheticDir : await d.paths.childOf(parent.node, name, ctx)
    if (existing && flags.exclusive) throw vfsError('EEXIST')
    if (existing) {
      r = existing.kind === 'symlink' ? await d.paths.resolve(p, ctx, true) : { ...parent, node: existing, path: p, isMountPoint, mountChildren: [] }
    } else {
      if (parent.node === syntheticDir) throw vfsError('EROFS', 'no mount holds this folder')
      await d.paths.require(parent.node, W_OK | X_OK, ctx)
      if (!can.create(parent.node)) throw vfsError('EROFS')
      const owned = await d.paths.ownerCtx(parent.node, mode & 0o7777, false, ctx)
      const node = await parent.node.create(name, owned.mode, owned.ctx)
      r = { ...parent, node, path: p, isMountPoint: false, mountChildren: [] }
      created = true
    }
  } else {
    r = await d.paths.resolve(p, ctx, true)
  }
  const node = r.node
  if (node.kind === 'dir') {
    if (flags.write) throw vfsError('EISDIR')
    throw vfsError('EISDIR')
  }
  if (node.kind !== 'file') throw vfsError('ENXIO', 'special files are opened by the kernel')
  if (!created) await d.paths.require(node, (flags.read ? R_OK : 0) | (flags.write || flags.truncate ? W_OK : 0), ctx)
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
  const fh = d.files.add(f)
  if (created) d.emitChange('create', r, 'file')
  return fh
}
