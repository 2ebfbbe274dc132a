import { allowedMode, checkAccess, checkChown, checkOwner, isRoot, modeAfterChown, routerChecks, W_OK } from './access.ts'
import type { Attr, AttrChanges, NodeKind, OpContext } from './node.ts'
import { nowNs, nsToMs } from './stat.ts'

/** A time for a setattr: nanoseconds since the epoch, the current time, or "leave it" (`UTIME_NOW`, `UTIME_OMIT`). */
export type NodeTimeSpec = bigint | 'now' | 'omit'

/** What a setattr changes; absent fields are left alone. */
export interface SetattrRequest {
  mode?: number
  uid?: number
  gid?: number
  atime?: NodeTimeSpec
  mtime?: NodeTimeSpec
}

/** True when the request needs the node's current attributes (to check rights, or to clear setuid on chown). */
export function needsBefore(req: SetattrRequest, ctx: OpContext): boolean {
  return routerChecks(ctx) || req.uid !== undefined || req.gid !== undefined
}

/**
 * Turns a setattr request into the changes a mount applies, by POSIX rules: only the
 * owner (or the superuser) changes the mode or sets explicit times (`EPERM`); setting
 * the current time needs ownership or write access (`EACCES`); only the superuser gives
 * a file away; an owner change clears setuid/setgid on files; a non-superuser's setgid
 * bit is dropped on a file outside its groups. Rights are checked only for callers the
 * kernel has not checked. Returns undefined when nothing is to change (both times
 * `UTIME_OMIT`: not even the status change time moves).
 */
export function planSetattr(req: SetattrRequest, before: Attr | undefined, kind: NodeKind, ctx: OpContext): AttrChanges | undefined {
  const changes: AttrChanges = {}
  const checks = routerChecks(ctx)
  const isDir = kind === 'dir'
  if (req.mode !== undefined) {
    if (checks && killsPrivileges(before!, req.mode, kind)) {
      // what the kernel asks after a write by another user (setuid and setgid go, nothing else): whoever may write the file
      if (!isRoot(ctx) && ctx.uid !== before!.uid) checkAccess(before!, W_OK, ctx, isDir)
      changes.mode = req.mode & 0o7777
    } else {
      if (checks) checkOwner(before!, ctx)
      changes.mode = checks ? allowedMode(before!, req.mode & 0o7777, ctx, isDir) : req.mode & 0o7777
    }
  }
  if (req.uid !== undefined || req.gid !== undefined) {
    if (checks) checkChown(before!, req.uid, req.gid, ctx)
    if (req.uid !== undefined) changes.uid = req.uid
    if (req.gid !== undefined) changes.gid = req.gid
    if (checks && changes.mode === undefined && kind !== 'symlink') {
      const mode = modeAfterChown(before!.mode, isDir)
      if (mode !== before!.mode) changes.mode = mode
    }
  }
  const atime = req.atime ?? 'omit'
  const mtime = req.mtime ?? 'omit'
  if (atime !== 'omit' || mtime !== 'omit') {
    if (checks) {
      const explicit = (atime !== 'omit' && atime !== 'now') || (mtime !== 'omit' && mtime !== 'now')
      if (explicit) checkOwner(before!, ctx)
      else if (!isRoot(ctx) && ctx.uid !== before!.uid) checkAccess(before!, W_OK, ctx, isDir)
    }
    const now = atime === 'now' || mtime === 'now' ? nowNs() : 0n
    if (atime !== 'omit') setTime(changes, 'atime', atime === 'now' ? now : atime)
    if (mtime !== 'omit') setTime(changes, 'mtime', mtime === 'now' ? now : mtime)
  }
  const asked = req.mode !== undefined || req.uid !== undefined || req.gid !== undefined
  return asked || changes.atimeNs !== undefined || changes.mtimeNs !== undefined ? changes : undefined
}

/**
 * Whether a mode change only clears setuid or setgid of a file that has them: the change
 * the kernel makes by itself when someone other than the owner writes to the file (it asks
 * FUSE for it as a `chmod` when it does not check rights itself).
 */
function killsPrivileges(before: Attr, mode: number, kind: NodeKind): boolean {
  if (kind !== 'file') return false
  const had = before.mode & 0o7777
  const now = mode & 0o7777
  const cleared = had & ~now
  return now !== had && (now & ~had) === 0 && (cleared & ~0o6000) === 0
}

/** A request changing the owner to `uid`/`gid`, `-1` leaving a field as it is. */
export function ownerRequest(uid: number, gid: number): SetattrRequest {
  const req: SetattrRequest = {}
  if (uid !== -1) req.uid = uid
  if (gid !== -1) req.gid = gid
  return req
}

function setTime(changes: AttrChanges, which: 'atime' | 'mtime', ns: bigint): void {
  if (which === 'atime') {
    changes.atimeNs = ns
    changes.atimeMs = nsToMs(ns)
  } else {
    changes.mtimeNs = ns
    changes.mtimeMs = nsToMs(ns)
  }
}
