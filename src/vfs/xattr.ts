import { isRoot, routerChecks } from './access.ts'
import { vfsError } from './errors.ts'
import type { OpContext, VNode } from './node.ts'

/** `setxattr` flag: fail with `EEXIST` when the attribute exists. */
export const XATTR_CREATE = 1
/** `setxattr` flag: fail with `ENODATA` when the attribute does not exist. */
export const XATTR_REPLACE = 2
/** The kernel's limit on one extended attribute's value, in bytes. */
export const XATTR_SIZE_MAX = 65536

/**
 * Checks an attribute name: at most 255 bytes (`ERANGE`), in the `user.`, `trusted.` or
 * `security.` namespace; `system.` names (POSIX ACLs) are not kept (`EOPNOTSUPP`).
 */
export function checkXattrName(name: string): void {
  if (typeof name !== 'string' || name === '' || Buffer.byteLength(name) > 255) throw vfsError('ERANGE', 'bad attribute name')
  if (!/^(user|trusted|security)\.(.+)$/s.test(name)) throw vfsError('EOPNOTSUPP', 'only user., trusted. and security. attributes are kept')
}

/** True when reading attribute `name` of `node` needs read access (a `user.` attribute). */
export function readNeedsAccess(name: string): boolean {
  return name.startsWith('user.')
}

/** True when `node` can carry `user.` attributes at all: files and folders only, as on Linux. */
export function holdsUserXattrs(node: VNode): boolean {
  return node.kind === 'file' || node.kind === 'dir'
}

/**
 * The rights to set or remove attribute `name`, for a caller the kernel has not
 * checked: `user.` attributes need a file or folder (`EPERM`) the caller may write
 * (returns true: the router checks write access); `trusted.` and `security.` need the
 * superuser (`EPERM`).
 */
export function writeNeedsAccess(node: VNode, name: string, ctx: OpContext): boolean {
  if (!routerChecks(ctx)) return false
  if (name.startsWith('user.')) {
    if (!holdsUserXattrs(node)) throw vfsError('EPERM', 'user attributes are for files and folders')
    return true
  }
  if (!isRoot(ctx)) throw vfsError('EPERM', 'only the superuser sets trusted and security attributes')
  return false
}
