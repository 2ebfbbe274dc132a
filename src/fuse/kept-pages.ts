import { constants as fsc } from 'node:fs'

/** The access-mode bits of open flags (Linux). */
const O_ACCMODE = 3

/**
 * Decides, per `open`, whether the kernel may keep the pages it has cached for a file
 * (`keep_cache`) instead of dropping them: only when the file is opened for reading, was
 * opened for reading before by the same name, and no change event has named it (nor a
 * folder above it) since. Every change shows on the change bus, the kernel's own writes
 * included, so a file written since its last open is read afresh once. Hard-linked files
 * are never kept: a write through another name fills another kernel inode's pages.
 *
 * Only for a mount whose every tree is written by this process alone (`Mount.soleWriter`):
 * a view's rendered file can change without an event.
 */
export class KeptPages {
  /** Names opened for reading since they last changed. */
  private readonly clean = new Set<string>()

  /** Whether the kernel may keep `path`'s cached pages on this open; notes the open. `linked`: the file has more than one name. */
  opened(path: string, flags: number, linked: boolean): boolean {
    if ((flags & O_ACCMODE) !== fsc.O_RDONLY || flags & fsc.O_TRUNC || linked) {
      this.clean.delete(path)
      return false
    }
    if (this.clean.has(path)) return true
    this.clean.add(path)
    return false
  }

  /**
   * Forgets `path` (and, with `below`, every name below it: a folder renamed or removed),
   * so its next open drops what the kernel cached.
   */
  changed(path: string, below = false): void {
    if (this.clean.size === 0) return
    if (path === '/') return this.clean.clear()
    this.clean.delete(path)
    if (!below) return
    const prefix = path + '/'
    for (const p of this.clean) if (p.startsWith(prefix)) this.clean.delete(p)
  }
}
