import { readFileSync } from 'node:fs'

/**
 * Filesystems whose reads wait for a server: FUSE (which may be this very process, whose JS
 * thread would then wait for itself) and network filesystems (which may wait for as long as
 * their server is away).
 */
const SERVED = /^(fuse|fuseblk|fuse\..*|nfs|nfs4|cifs|smb3|9p|ceph|glusterfs|afs|lustre|sshfs)$/

/** Whether a filesystem of `type` (as `/proc/self/mountinfo` names it: `ext4`, `fuse.facet`, `nfs4`) answers reads from a server. */
export function servedFilesystem(type: string): boolean {
  return type === '' || SERVED.test(type)
}

/**
 * Whether a synchronous read of descriptor `fd` can only wait for a disk, never for a server:
 * false when the file lies on FUSE or a network filesystem ({@link servedFilesystem}), and false when
 * that cannot be told. Looks only at /proc (the descriptor's mount id in
 * `/proc/self/fdinfo`, that mount's type in `/proc/self/mountinfo`): nothing here touches
 * the file or its filesystem.
 */
export function readsWaitOnlyForDisk(fd: number): boolean {
  try {
    const id = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1]
    if (id === undefined) return false
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const fields = line.split(' ')
      if (fields[0] !== id) continue
      const type = fields[fields.indexOf('-') + 1] ?? ''
      return !servedFilesystem(type)
    }
    return false
  } catch {
    return false
  }
}
