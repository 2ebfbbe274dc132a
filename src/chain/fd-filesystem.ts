import { readFileSync } from 'node:fs'

/**
 * Whether a synchronous read of descriptor `fd` can only wait for a disk, never for a FUSE
 * server: false when the file lies on a FUSE filesystem (which may be one this very process
 * serves, and a synchronous read of it from the JS thread would never be answered), and
 * false when that cannot be told. Looks only at /proc (the descriptor's mount id in
 * `/proc/self/fdinfo`, that mount's type in `/proc/self/mountinfo`): nothing here touches
 * the file or its filesystem.
 */
export function readsWithoutFuse(fd: number): boolean {
  try {
    const id = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1]
    if (id === undefined) return false
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const fields = line.split(' ')
      if (fields[0] !== id) continue
      const type = fields[fields.indexOf('-') + 1] ?? ''
      return type !== '' && type !== 'fuse' && type !== 'fuseblk' && !type.startsWith('fuse.')
    }
    return false
  } catch {
    return false
  }
}
