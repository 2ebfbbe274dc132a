import type { Identity } from '../crypto/identity.ts'
import { ROOT_INO } from './format.ts'
import type { ChainTree, Inode, InodeMeta } from './tree.ts'

const NO_KEY = Buffer.alloc(32)

/**
 * What a reader who holds grants on some folders or files of a chain, not on its root, can
 * see: the granted folders (their keys unwrapped from the grants, so everything below them
 * reads as usual), the granted files (their metadata read from their own copy of it, event
 * 14, sealed under the file's key) and the folders above them, shown by name only. A granted folder's own
 * metadata is sealed under its parent's key, which this reader lacks, so the granted
 * folders and the folders above them get placeholder attributes (folders of the reader's
 * uid, times of the open) and the names the grants carry. Everything else is absent.
 */
export class PartialView {
  /** The keys of the granted folders, by inode. */
  readonly granted = new Map<number, Buffer>()
  /** The granted inodes that are files, not folders. */
  readonly files = new Set<number>()
  /** The names of the folders shown without being read: the granted ones and every folder above them. */
  readonly shown = new Map<number, string>()
  /** Who holds the grants and where the chain lies, so a catch-up can work the view out again when grants change (grant-refresh.ts). */
  reader: { identity: Identity; where: string } | undefined

  constructor(
    readonly owner: { uid: number; gid: number },
    readonly timeNs: bigint,
  ) {}

  /** The key of granted file `ino`, else undefined. */
  fileKey(ino: number): Buffer | undefined {
    return this.files.has(ino) ? this.granted.get(ino) : undefined
  }

  /** Placeholder metadata of `n` when it is shown without being read, else undefined. */
  placeholder(n: Inode): InodeMeta | undefined {
    const name = this.shown.get(n.ino)
    if (name === undefined) return undefined
    const key = this.granted.get(n.ino)
    const t = this.timeNs
    return { name, parent: n.ino === ROOT_INO ? 0 : n.keyParent, kind: 'dir', mode: key ? 0o755 : 0o555, uid: this.owner.uid, gid: this.owner.gid, atimeNs: t, mtimeNs: t, ctimeNs: t, size: 0, key: key ?? NO_KEY }
  }

  /** True when `dir` lies above a granted folder: its listing holds only the folders shown. */
  above(dir: Inode): boolean {
    return this.shown.has(dir.ino) && !this.granted.has(dir.ino)
  }

  /** True when inode `ino` can be read: it is shown, or lies below a granted folder. */
  readable(tree: ChainTree, ino: number): boolean {
    if (this.shown.has(ino)) return true
    for (let n = tree.inodes.get(ino); n; n = n.ino === ROOT_INO ? undefined : tree.inodes.get(n.keyParent)) {
      if (this.granted.has(n.ino)) return true
    }
    return false
  }

  /** True when child `c` of `dir` is listed. */
  lists(dir: Inode, c: Inode): boolean {
    return !this.above(dir) || this.shown.has(c.ino)
  }

  /** Shows granted folder (or file, one whose log holds its own copy of its metadata) `n` at `path` (where it lay when it was granted) with the folders above it, named by the path's components. */
  add(tree: ChainTree, n: Inode, key: Buffer, path: string): void {
    this.granted.set(n.ino, key)
    if (n.fileMeta) this.files.add(n.ino)
    const parts = path.split('/').filter(Boolean)
    let i = parts.length - 1
    for (let p: Inode | undefined = n; p; p = p.ino === ROOT_INO ? undefined : tree.inodes.get(p.keyParent), i--) {
      const name = p.ino === ROOT_INO ? '' : (parts[i] ?? `inode-${p.ino}`)
      if (!this.shown.has(p.ino)) this.shown.set(p.ino, name)
    }
  }
}
