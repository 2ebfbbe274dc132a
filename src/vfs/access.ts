import { vfsError } from './errors.ts'
import type { Attr, OpContext } from './node.ts'

/** Read, write and search/execute bits, as `access(2)` spells them. */
export const R_OK = 4
export const W_OK = 2
export const X_OK = 1

const S_ISUID = 0o4000
const S_ISGID = 0o2000
const S_ISVTX = 0o1000

/** True when the caller is the superuser, who passes every read and write check. */
export function isRoot(ctx: OpContext): boolean {
  return ctx.uid === 0
}

/** True when `gid` is the caller's group or one of its supplementary groups. */
export function inGroup(ctx: OpContext, gid: number): boolean {
  return ctx.gid === gid || ((ctx.groups ?? ctx.findGroups?.())?.includes(gid) ?? false)
}

/**
 * True when the router must check this caller's rights itself: not when the kernel has
 * done it already (FUSE with `default_permissions`), which also knows the caller's
 * supplementary groups.
 */
export function routerChecks(ctx: OpContext): boolean {
  return ctx.permissionsChecked !== true
}

/**
 * Checks POSIX access `want` (a mask of {@link R_OK}, {@link W_OK}, {@link X_OK}) to a
 * node with attributes `a`: the owner's bits for its owner, the group's for its group,
 * else the others'. The superuser may read and write anything and search any folder or
 * run a file with any execute bit. Throws `EACCES`.
 */
export function checkAccess(a: Pick<Attr, 'mode' | 'uid' | 'gid'>, want: number, ctx: OpContext, isDir: boolean): void {
  if (want === 0) return
  if (isRoot(ctx)) {
    if (want & X_OK && !isDir && (a.mode & 0o111) === 0) throw vfsError('EACCES')
    return
  }
  const bits = ctx.uid === a.uid ? (a.mode >> 6) & 7 : inGroup(ctx, a.gid) ? (a.mode >> 3) & 7 : a.mode & 7
  if ((bits & want) !== want) throw vfsError('EACCES')
}

/** Throws `EPERM` unless the caller owns the node or is the superuser (chmod, explicit utimes). */
export function checkOwner(a: Pick<Attr, 'uid'>, ctx: OpContext): void {
  if (!isRoot(ctx) && ctx.uid !== a.uid) throw vfsError('EPERM', 'only the owner may do this')
}

/**
 * In a sticky folder (mode `+t`), only the owner of an entry, the owner of the folder
 * or the superuser may remove or rename the entry. Throws `EPERM`.
 */
export function checkSticky(dir: Pick<Attr, 'mode' | 'uid'>, entry: Pick<Attr, 'uid'>, ctx: OpContext): void {
  if ((dir.mode & S_ISVTX) === 0 || isRoot(ctx)) return
  if (ctx.uid !== entry.uid && ctx.uid !== dir.uid) throw vfsError('EPERM', 'the folder is sticky')
}

/**
 * The owner change a caller may make (chown): the superuser any; the owner only its
 * file's group, to a group it is in, and never the owner. Throws `EPERM`.
 */
export function checkChown(a: Pick<Attr, 'uid' | 'gid'>, uid: number | undefined, gid: number | undefined, ctx: OpContext): void {
  if (isRoot(ctx)) return
  if (uid !== undefined && uid !== a.uid) throw vfsError('EPERM', 'only the superuser may give a file away')
  if (gid !== undefined && gid !== a.gid && (ctx.uid !== a.uid || !inGroup(ctx, gid))) throw vfsError('EPERM', 'only the owner may change the group, to one of its own')
  if (uid !== undefined && ctx.uid !== a.uid) throw vfsError('EPERM', 'only the owner may do this')
  if (gid !== undefined && ctx.uid !== a.uid) throw vfsError('EPERM', 'only the owner may do this')
}

/**
 * The mode a chmod by this caller really sets: a non-superuser cannot set the setgid
 * bit on a file whose group it is not in (the bit is dropped, as Linux does), nor the
 * sticky bit on a file.
 */
export function allowedMode(a: Pick<Attr, 'gid'>, mode: number, ctx: OpContext, isDir: boolean): number {
  if (isRoot(ctx)) return mode
  let m = mode
  if (!isDir && m & S_ISGID && !inGroup(ctx, a.gid)) m &= ~S_ISGID
  return m
}

/** The mode left after an owner change: chown clears setuid, and setgid on group-executable files (not folders). */
export function modeAfterChown(mode: number, isDir: boolean): number {
  if (isDir) return mode
  let m = mode & ~S_ISUID
  if (m & 0o010) m &= ~S_ISGID
  return m
}

/**
 * The owner and mode a new node gets: the caller's uid; the folder's group when the
 * folder is setgid (and a new folder inherits the setgid bit), else the caller's group.
 */
export function newNodeOwner(parent: Pick<Attr, 'mode' | 'gid'>, mode: number, isDir: boolean, ctx: OpContext): { gid: number; mode: number } {
  if ((parent.mode & S_ISGID) === 0) return { gid: ctx.gid, mode }
  return { gid: parent.gid, mode: isDir ? mode | S_ISGID : mode }
}
