import type { Stat } from '../vfs/vfs.ts'

/**
 * The names of hard-linked files the kernel holds attributes for, so a change made through
 * one name can invalidate the others.
 *
 * libfuse's path API gives each name of a file a kernel inode of its own: a link, unlink,
 * write or chmod through one name leaves the attributes the kernel keeps for the other
 * names as they were until the attribute timeout runs out. The kernel only keeps
 * attributes it was given in a `getattr` answer, and every such answer names its path
 * here ({@link seen}), so this knows every name that can be stale: those of files with
 * more than one link. A change shows either as a change event on one name ({@link others})
 * or as an answer for one name that differs from the last one given for another
 * ({@link onStale}: a link, which the kernel follows with a `getattr` of the new name).
 * Files with one name cost a map lookup.
 */
export class LinkedNames {
  /** Names by inode number, for inodes with more than one link, and the attributes last given for any of them. */
  private readonly byIno = new Map<number, { names: Set<string>; attrs: string }>()
  /** The inode number of each name in {@link byIno}. */
  private readonly inoOf = new Map<string, number>()

  /**
   * Called with a name whose kernel entry should go: every name of a hard-linked file just
   * answered (so the kernel asks again on the next call by that name, as with no attribute
   * cache), and the other names when the answer differs from the last given for them.
   */
  onStale: (path: string) => void = () => {}

  /** Notes a `getattr` answer for `path`: a file with more than one link is tracked under its inode. */
  seen(path: string, s: Stat): void {
    const known = this.inoOf.get(path)
    if (s.kind === 'dir' || s.nlink <= 1) {
      if (known !== undefined) this.forget(path)
      return
    }
    if (known !== undefined && known !== s.ino) this.forget(path)
    const attrs = `${s.nlink}:${s.size}:${s.mode}:${s.uid}:${s.gid}:${s.mtimeNs}:${s.ctimeNs}`
    let entry = this.byIno.get(s.ino)
    if (!entry) this.byIno.set(s.ino, (entry = { names: new Set(), attrs }))
    if (entry.attrs !== attrs) {
      entry.attrs = attrs
      for (const other of entry.names) if (other !== path) this.onStale(other)
    }
    entry.names.add(path)
    this.inoOf.set(path, s.ino)
    // and this name's own entry, as soon as the answer is out: a change through another name
    // right after (`rm a && stat b`) must not find these attributes still cached, and the
    // invalidations it causes reach the kernel after its answer, not before the next call
    this.onStale(path)
  }

  /** Whether the file at `path` was last answered with more than one name. */
  linked(path: string): boolean {
    return this.inoOf.has(path)
  }

  /** The other names of the file at `path` the kernel may hold attributes for (none when it has one name). */
  others(path: string): string[] {
    const ino = this.inoOf.get(path)
    if (ino === undefined) return []
    return [...this.byIno.get(ino)!.names].filter(p => p !== path)
  }

  /** Stops tracking `path` and every name below it (it was removed). */
  forget(path: string): void {
    const ino = this.inoOf.get(path)
    if (ino !== undefined) this.drop(path, ino)
    if (this.inoOf.size === 0) return
    const below = path.endsWith('/') ? path : path + '/'
    for (const [p, i] of this.inoOf) if (p.startsWith(below)) this.drop(p, i)
  }

  /**
   * Follows a rename of `from` onto `to`: libfuse moves the kernel inodes of the names at
   * and below `from` along, so they are tracked at and below `to` now, and whatever `to`
   * named before is swapped to `from` (right for an exchange; for a replace it names what
   * is gone and costs at most a needless invalidation).
   */
  moved(from: string, to: string): void {
    if (this.inoOf.size === 0) return
    const at = (p: string, root: string) => p === root || p.startsWith(root + '/')
    const moving: Array<[string, number]> = []
    for (const entry of this.inoOf) if (at(entry[0], from) || at(entry[0], to)) moving.push(entry)
    for (const [p, ino] of moving) this.drop(p, ino)
    for (const [p, ino] of moving) {
      const q = at(p, from) ? to + p.slice(from.length) : from + p.slice(to.length)
      this.byIno.get(ino)?.names.add(q) ?? this.byIno.set(ino, { names: new Set([q]), attrs: '' })
      this.inoOf.set(q, ino)
    }
  }

  private drop(path: string, ino: number): void {
    this.inoOf.delete(path)
    const entry = this.byIno.get(ino)
    entry?.names.delete(path)
    if (entry?.names.size === 0) this.byIno.delete(ino)
  }
}
