import type { Identity } from '../crypto/identity.ts'
import { padRecord } from '../crypto/padding.ts'
import { DecryptError, open, randomBytes, seal } from '../crypto/primitives.ts'
import type { NodeKind } from '../vfs/node.ts'
import { msToNs } from '../vfs/stat.ts'
import { ROOT_INO, type ChainEvent, type FileMetaEvent, type GroupEvent, type KeyGrantEvent, type LinkPutEvent, type XattrPutEvent } from './format.ts'
import { chunkKeyOf, fileMetaAad, fileMetaKeyOf, linkAad, metaAad, metaKeyOf, xattrAad, xattrKeyOf } from './keys.ts'
import type { PartialView } from './partial.ts'

/** What an inode's encrypted metadata holds. */
export interface InodeMeta {
  /** The inode's first name, in directory `parent` (its key parent); further names are links. */
  name: string
  parent: number
  kind: NodeKind
  mode: number
  uid: number
  gid: number
  /** Times in nanoseconds since the epoch. */
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  size: number
  /** A symlink's target. */
  target?: string | undefined
  /** The device number of a character or block device. */
  rdev?: number | undefined
  /** Ids of the inode's further names (hard links, see {@link Link}); it has one name more than these. */
  links?: number[] | undefined
  /** The inode's own 32-byte data key. */
  key: Buffer
  /**
   * The keys the inode had before its key was rotated (rotation.ts), oldest first: chunk
   * versions up to `upTo` (and above the entry before) were sealed under `key`; later ones
   * under the current key. Absent when the key never rotated.
   */
  keyHistory?: KeyEpoch[] | undefined
}

/** One earlier key of an inode: the chunks of versions up to `upTo` are sealed under it. */
export interface KeyEpoch {
  upTo: number
  key: Buffer
}

interface MetaJson {
  n: string
  p: number
  k: KindCode
  m: number
  u: number
  g: number
  /** Times in whole milliseconds (format 1: possibly fractional)… */
  a: number
  t: number
  c: number
  /** …and the nanoseconds past them (format 2; absent when 0). */
  an?: number
  tn?: number
  cn?: number
  s: number
  l?: string
  r?: number
  h?: number[]
  key: string
  /** Earlier keys, `[[upTo, key], …]` (see {@link InodeMeta.keyHistory}). */
  kh?: [number, string][]
}

const KIND_CODE = { file: 'f', dir: 'd', symlink: 'l', fifo: 'p', chardev: 'c', blockdev: 'b', socket: 's' } as const
type KindCode = (typeof KIND_CODE)[NodeKind]
const CODE_KIND = Object.assign(Object.create(null) as object, Object.fromEntries(Object.entries(KIND_CODE).map(([k, c]) => [c, k]))) as Record<KindCode, NodeKind>

const MS = 1_000_000n

/** Splits a time in nanoseconds into whole milliseconds and the nanoseconds past them (0 to 999 999). */
function splitNs(ns: bigint): [number, number] {
  let ms = ns / MS
  let rest = ns - ms * MS
  if (rest < 0n) {
    ms -= 1n
    rest += MS
  }
  return [Number(ms), Number(rest)]
}

/** Joins whole milliseconds and the nanoseconds past them; format 1 metadata has fractional milliseconds and no rest. */
function joinNs(ms: number, rest: number | undefined): bigint {
  if (rest === undefined) return msToNs(ms)
  if (!Number.isSafeInteger(ms) || !Number.isInteger(rest) || rest < 0 || rest >= 1e6) throw new TypeError('bad time')
  return BigInt(ms) * MS + BigInt(rest)
}

/** Parses the `kh` field of metadata: `[upTo, base64 key]` pairs, `upTo` rising; throws on anything else. */
function readKeyHistory(kh: unknown): KeyEpoch[] {
  if (!Array.isArray(kh) || kh.length === 0) throw new TypeError('bad key history')
  let last = -1
  return kh.map((e: unknown) => {
    if (!Array.isArray(e) || !Number.isSafeInteger(e[0]) || (e[0] as number) <= last || typeof e[1] !== 'string') throw new TypeError('bad key history')
    const key = Buffer.from(e[1], 'base64')
    if (key.length !== 32) throw new TypeError('bad key history')
    last = e[0] as number
    return { upTo: last, key }
  })
}

/** An extra name of an inode (a hard link): the directory it lies in, and its name and inode, sealed under that directory's metadata key. */
export interface Link {
  readonly id: number
  dir: number
  version: number
  sealed: Buffer
  /** The name and the inode it names, decrypted on first use. */
  entry?: { name: string; ino: number } | undefined
}

/** Where a content chunk lies: in the log file, or still in memory before its block is written. */
export interface ChunkRef {
  version: number
  /** Offset of the sealed bytes in the log file; -1 until the block is written. */
  pos: number
  len: number
  /** The sealed bytes while the block holding them is being written. */
  sealed?: Buffer | undefined
  /** Set while the chunk worker seals the chunk; `sealed` is set when it settles. */
  sealing?: Promise<void> | undefined
}

/** One inode of the materialised tree. Metadata is decrypted on first use. */
export class Inode {
  keyParent = 0
  version = 0
  sealedMeta: Buffer | undefined
  meta: InodeMeta | undefined
  chunkVersion = 0
  readonly chunks = new Map<number, ChunkRef>()
  /** Children by inode (directories): the inodes whose first name lies here. */
  readonly children = new Set<number>()
  /** Extra names (link ids) that lie in this directory. */
  readonly linksHere = new Set<number>()
  /** Children by name, extra names included, built when the directory is first listed. */
  names: Map<string, number> | undefined
  /** Which of `names` are extra names, with their link ids; built with `names`. */
  linkNames: Map<string, number> | undefined
  /** How many children are directories; counted with `names`. */
  subdirs = 0
  /** The sealed extended attributes and their version; `xattrs` once decrypted. */
  sealedXattrs: Buffer | undefined
  xattrVersion = 0
  /** A granted file's own copy of its latest metadata (event 14), sealed under its own key, for readers granted the file alone. */
  fileMeta: { version: number; sealed: Buffer } | undefined
  xattrs: Map<string, Buffer> | undefined
  chunkKey: Buffer | undefined
  metaKey: Buffer | undefined
  /** Chunk keys of earlier inode keys (see {@link InodeMeta.keyHistory}), by `upTo`. */
  oldChunkKeys: Map<number, Buffer> | undefined
  /** Plaintext chunks written but not yet sealed. */
  dirty: Map<number, Buffer> | undefined
  deleted = false
  /** The VFS node of this inode, made on first use. */
  node: unknown
  constructor(readonly ino: number) {}
}

/** Thrown when metadata or content fails authentication: the log was forged or damaged. */
export class ForgedDataError extends Error {
  override readonly name = 'ForgedDataError'
}

/**
 * The materialised state of a chain: inodes with their latest sealed metadata and chunk
 * locations, built by applying events in log order. Nothing is decrypted while applying;
 * metadata is decrypted on demand, starting from the root key.
 */
export class ChainTree {
  readonly inodes = new Map<number, Inode>()
  readonly grants: KeyGrantEvent[] = []
  /** How many of {@link grants} each inode has. */
  private readonly grantCounts = new Map<number, number>()

  /** Replaces every grant with `grants` (a tree rebuilt from the log hands its grants over, see resync.ts). */
  replaceGrants(grants: readonly KeyGrantEvent[]): void {
    this.grants.splice(0, this.grants.length, ...grants)
    this.grantCounts.clear()
    for (const g of grants) this.grantCounts.set(g.ino, (this.grantCounts.get(g.ino) ?? 0) + 1)
  }
  /** The latest state of each group of the chain, by name (groups.ts). */
  readonly groups = new Map<string, GroupEvent>()
  /** Extra names of inodes (hard links) by link id. */
  readonly links = new Map<number, Link>()
  maxIno = ROOT_INO
  maxLink = 0
  rootKey: Buffer | undefined
  /** The identity whose grant of the root gave {@link rootKey}, and where the chain is (sharing.ts): a rotation of / or a withdrawal is followed with it (grant-refresh.ts). */
  rootReader: { identity: Identity; where: string } | undefined
  /** What a reader with grants on some folders, not the root, sees (sharing.ts); undefined with the root key. */
  partial: PartialView | undefined
  /** Pad sealed records (metadata, links, extended attributes) to size classes, so their sealed length shows only the class. */
  padding = true

  constructor(readonly chainId: Uint8Array) {}

  /** The path of `n` (`/a/b`), by first names; throws {@link ForgedDataError} or a decrypt error for a name this tree cannot read. */
  pathOf(n: Inode): string {
    const parts: string[] = []
    for (let p: Inode | undefined = n; p && p.ino !== ROOT_INO; p = this.inodes.get(p.keyParent)) parts.unshift(this.meta(p).name)
    return '/' + parts.join('/')
  }

  /** Gets or makes the inode record `ino`. */
  inode(ino: number): Inode {
    let n = this.inodes.get(ino)
    if (!n) {
      n = new Inode(ino)
      this.inodes.set(ino, n)
      if (ino > this.maxIno) this.maxIno = ino
    }
    return n
  }

  /** Applies one event. `bodyPos` is the file offset of the block body (for chunk locations). */
  apply(e: ChainEvent, bodyPos: number): void {
    switch (e.type) {
      case 'inodePut': {
        const n = this.inode(e.ino)
        if (n.keyParent !== e.keyParent) {
          if (n.keyParent && n.keyParent !== n.ino) this.detach(n)
          n.keyParent = e.keyParent
          if (e.keyParent !== e.ino) {
            const p = this.inode(e.keyParent)
            p.children.add(e.ino)
            p.names = undefined
          }
        } else if (n.meta && e.keyParent !== e.ino) {
          this.inodes.get(e.keyParent)!.names = undefined
        }
        n.version = e.version
        n.sealedMeta = Buffer.from(e.sealedMeta)
        // the keys worked out from the old metadata go with it: a rotation gives the inode a key of its own anew
        n.meta = undefined
        n.metaKey = n.chunkKey = n.oldChunkKeys = undefined
        break
      }
      case 'chunkPut': {
        const n = this.inode(e.ino)
        n.chunks.set(e.index, { version: e.version, pos: bodyPos + e.bodyOffset!, len: e.sealed.length })
        if (e.version > n.chunkVersion) n.chunkVersion = e.version
        break
      }
      case 'chunksCut': {
        const n = this.inode(e.ino)
        for (const i of n.chunks.keys()) if (i >= e.from) n.chunks.delete(i)
        break
      }
      case 'tombstone': {
        const n = this.inodes.get(e.ino)
        if (!n) break
        this.detach(n)
        n.deleted = true
        this.inodes.delete(e.ino)
        break
      }
      case 'keyGrant':
        this.grants.push(e)
        this.grantCounts.set(e.ino, (this.grantCounts.get(e.ino) ?? 0) + 1)
        break
      case 'group':
        this.groups.set(e.name, e)
        break
      case 'keyGrantDrop': {
        const r = Buffer.from(e.reader)
        let left = this.grantCounts.get(e.ino) ?? 0
        for (let i = this.grants.length - 1; i >= 0; i--) if (this.grants[i]!.ino === e.ino && r.equals(this.grants[i]!.reader)) this.grants.splice(i, 1) && left--
        if (left > 0) this.grantCounts.set(e.ino, left)
        else this.grantCounts.delete(e.ino)
        break
      }
      case 'linkPut': {
        let l = this.links.get(e.link)
        if (l) this.unplace(l)
        else {
          l = { id: e.link, dir: e.dir, version: 0, sealed: Buffer.alloc(0) }
          this.links.set(e.link, l)
          if (e.link > this.maxLink) this.maxLink = e.link
        }
        l.dir = e.dir
        l.version = e.version
        l.sealed = Buffer.from(e.sealed)
        l.entry = undefined
        const d = this.inode(e.dir)
        d.linksHere.add(e.link)
        d.names = undefined
        break
      }
      case 'linkDrop': {
        const l = this.links.get(e.link)
        if (!l) break
        this.unplace(l)
        this.links.delete(e.link)
        break
      }
      case 'xattrPut': {
        const n = this.inodes.get(e.ino)
        if (!n) break
        n.xattrVersion = e.version
        n.sealedXattrs = Buffer.from(e.sealed)
        n.xattrs = undefined
        break
      }
      case 'fileMeta': {
        const n = this.inodes.get(e.ino)
        if (!n) break
        n.fileMeta = { version: e.version, sealed: Buffer.from(e.sealed) }
        // a reader granted the file alone reads its metadata from here
        if (this.partial?.files.has(e.ino)) n.meta = undefined
        break
      }
      default:
        break
    }
  }

  /** Takes link `l` out of the directory it lies in. */
  private unplace(l: Link): void {
    const d = this.inodes.get(l.dir)
    if (!d) return
    d.linksHere.delete(l.id)
    d.names = undefined
  }

  private detach(n: Inode): void {
    const p = this.inodes.get(n.keyParent)
    if (p && p !== n) {
      p.children.delete(n.ino)
      p.names = undefined
    }
  }

  /** The key that encrypts the metadata of `n`'s children. */
  metaKey(n: Inode): Buffer {
    if (!n.metaKey) n.metaKey = metaKeyOf(this.meta(n).key, this.chainId)
    return n.metaKey
  }

  /** The key that encrypts `n`'s content chunks. */
  chunkKey(n: Inode): Buffer {
    if (!n.chunkKey) n.chunkKey = chunkKeyOf(this.meta(n).key, this.chainId)
    return n.chunkKey
  }

  /** The key that sealed chunk version `version` of `n`: the current chunk key, or that of the earlier inode key whose range holds it. */
  chunkKeyFor(n: Inode, version: number): Buffer {
    const history = this.meta(n).keyHistory
    if (!history || version > history[history.length - 1]!.upTo) return this.chunkKey(n)
    const epoch = history.find(h => version <= h.upTo)!
    n.oldChunkKeys ??= new Map()
    let k = n.oldChunkKeys.get(epoch.upTo)
    if (!k) n.oldChunkKeys.set(epoch.upTo, (k = chunkKeyOf(epoch.key, this.chainId)))
    return k
  }

  /** Decrypts (once) and returns the metadata of `n`; {@link ForgedDataError} if it fails authentication. */
  meta(n: Inode): InodeMeta {
    if (n.meta) return n.meta
    const fileKey = this.partial?.fileKey(n.ino)
    if (fileKey) return (n.meta = this.openFileMeta(n, fileKey))
    const placeholder = this.partial?.placeholder(n)
    if (placeholder) return (n.meta = placeholder)
    if (!n.sealedMeta) throw new ForgedDataError(`inode ${n.ino} has content but no metadata`)
    let key: Buffer
    if (n.ino === ROOT_INO) {
      if (!this.rootKey) throw new ForgedDataError('no key for the root directory')
      key = metaKeyOf(this.rootKey, this.chainId)
    } else {
      const parent = this.inodes.get(n.keyParent)
      if (!parent) throw new ForgedDataError(`inode ${n.ino} names a missing parent ${n.keyParent}`)
      key = this.metaKey(parent)
    }
    n.meta = this.readMeta(n, key, n.sealedMeta, metaAad(this.chainId, n.ino, n.keyParent, n.version))
    return n.meta
  }

  /** The metadata of `n` a reader granted the file alone reads: the file's own copy (event 14), under `fileKey`; {@link ForgedDataError} when there is none or it does not hold. */
  private openFileMeta(n: Inode, fileKey: Buffer): InodeMeta {
    if (!n.fileMeta) throw new ForgedDataError(`inode ${n.ino} is granted as a file but the log holds no copy of its metadata for its readers`)
    const meta = this.readMeta(n, fileMetaKeyOf(fileKey, this.chainId), n.fileMeta.sealed, fileMetaAad(this.chainId, n.ino, n.fileMeta.version))
    if (!meta.key.equals(fileKey) || meta.kind !== 'file') throw new ForgedDataError(`metadata of inode ${n.ino} is inconsistent`)
    return meta
  }

  /** Opens and checks the sealed metadata of `n`. */
  private readMeta(n: Inode, key: Buffer, sealed: Buffer, aad: Buffer): InodeMeta {
    let j: MetaJson
    try {
      j = JSON.parse(open(key, sealed, aad).toString('utf8')) as MetaJson
    } catch (err) {
      if (err instanceof DecryptError) throw new ForgedDataError(`metadata of inode ${n.ino} fails authentication`)
      throw err
    }
    let meta: InodeMeta
    try {
      meta = {
        name: j.n,
        parent: j.p,
        kind: CODE_KIND[j.k],
        mode: j.m,
        uid: j.u,
        gid: j.g,
        atimeNs: joinNs(j.a, j.an),
        mtimeNs: joinNs(j.t, j.tn),
        ctimeNs: joinNs(j.c, j.cn),
        size: j.s,
        target: j.l,
        rdev: j.r,
        links: j.h,
        key: Buffer.from(j.key, 'base64'),
        keyHistory: j.kh === undefined ? undefined : readKeyHistory(j.kh),
      }
    } catch {
      throw new ForgedDataError(`metadata of inode ${n.ino} is inconsistent`)
    }
    if ((n.ino !== ROOT_INO && meta.parent !== n.keyParent) || !meta.kind || meta.key.length !== 32) throw new ForgedDataError(`metadata of inode ${n.ino} is inconsistent`)
    if (meta.links !== undefined && (!Array.isArray(meta.links) || meta.kind === 'dir' || !meta.links.every(id => Number.isSafeInteger(id)))) throw new ForgedDataError(`metadata of inode ${n.ino} is inconsistent`)
    if (n.ino === ROOT_INO && !meta.key.equals(this.rootKey!)) throw new ForgedDataError('root metadata carries another key')
    // chunk versions keep rising past the last earlier key's range, even once compaction dropped the chunks that reached it
    if (meta.keyHistory) n.chunkVersion = Math.max(n.chunkVersion, meta.keyHistory[meta.keyHistory.length - 1]!.upTo)
    return meta
  }

  /**
   * Seals `n`'s metadata (as it is in memory) as its next version: the inode put, and for a
   * regular file that holds a grant of its own, the file's own copy (event 14) under its own
   * key, so readers granted the file alone read it. Returns the events.
   */
  putMeta(n: Inode): ChainEvent[] {
    const meta = this.meta(n)
    const s = this.sealMeta(n, meta)
    n.version = s.version
    n.sealedMeta = s.sealedMeta
    const events: ChainEvent[] = [{ type: 'inodePut', ino: n.ino, ...s }]
    if (meta.kind === 'file' && this.grantCounts.has(n.ino)) events.push(this.sealFileMeta(n, meta))
    return events
  }

  /** Seals the file's own copy of `meta` at `n`'s current metadata version. */
  private sealFileMeta(n: Inode, meta: InodeMeta): FileMetaEvent {
    const sealed = seal(fileMetaKeyOf(meta.key, this.chainId), this.record(metaJson(meta)), fileMetaAad(this.chainId, n.ino, n.version))
    n.fileMeta = { version: n.version, sealed }
    return { type: 'fileMeta', ino: n.ino, version: n.version, sealed }
  }

  /** Encrypts `meta` as the next version of `n`'s metadata; returns the event fields. */
  sealMeta(n: Inode, meta: InodeMeta): { keyParent: number; version: number; sealedMeta: Buffer } {
    const keyParent = n.ino === ROOT_INO ? ROOT_INO : meta.parent
    const key = n.ino === ROOT_INO ? metaKeyOf(this.rootKey!, this.chainId) : this.metaKey(this.inodes.get(keyParent)!)
    const version = n.version + 1
    return { keyParent, version, sealedMeta: seal(key, this.record(metaJson(meta)), metaAad(this.chainId, n.ino, keyParent, version)) }
  }

  /** Children of directory `n` by name, extra names included, decrypting their metadata on first use. */
  names(n: Inode): Map<string, number> {
    if (n.names) return n.names
    const names = new Map<string, number>()
    const linkNames = new Map<string, number>()
    let subdirs = 0
    const partial = this.partial
    for (const ino of n.children) {
      const c = this.inodes.get(ino)
      if (!c || (partial && !partial.lists(n, c))) continue
      const m = this.meta(c)
      names.set(m.name, ino)
      if (m.kind === 'dir') subdirs++
    }
    for (const id of partial?.above(n) ? [] : n.linksHere) {
      const e = this.linkEntry(this.links.get(id)!)
      // a link to a file this reader cannot open is left out
      if (partial && !partial.readable(this, e.ino)) continue
      names.set(e.name, e.ino)
      linkNames.set(e.name, id)
    }
    n.names = names
    n.linkNames = linkNames
    n.subdirs = subdirs
    return names
  }

  /** Notes name `name` → `ino` in the listing of `dir` (when it is built); `link` when it is an extra name. */
  addName(dir: Inode, name: string, ino: number, link?: number): void {
    if (!dir.names) return
    dir.names.set(name, ino)
    if (link !== undefined) dir.linkNames!.set(name, link)
    else if (this.meta(this.inodes.get(ino)!).kind === 'dir') dir.subdirs++
  }

  /** Takes name `name` out of the listing of `dir` (when it is built). Call it while the inode it names is in the tree. */
  removeName(dir: Inode, name: string): void {
    if (!dir.names) return
    const ino = dir.names.get(name)
    if (ino === undefined) return
    dir.names.delete(name)
    if (dir.linkNames!.delete(name)) return
    const n = this.inodes.get(ino)
    if (n && this.meta(n).kind === 'dir') dir.subdirs--
  }

  /** The name and inode of link `l`; {@link ForgedDataError} if it fails authentication. */
  linkEntry(l: Link): { name: string; ino: number } {
    if (l.entry) return l.entry
    const dir = this.inodes.get(l.dir)
    if (!dir) throw new ForgedDataError(`link ${l.id} lies in a missing directory ${l.dir}`)
    let j: { n?: unknown; i?: unknown }
    try {
      j = JSON.parse(open(this.metaKey(dir), l.sealed, linkAad(this.chainId, l.id, l.dir, l.version)).toString('utf8')) as typeof j
    } catch (err) {
      if (err instanceof DecryptError) throw new ForgedDataError(`link ${l.id} fails authentication`)
      throw err
    }
    if (typeof j.n !== 'string' || typeof j.i !== 'number' || !Number.isSafeInteger(j.i)) throw new ForgedDataError(`link ${l.id} is inconsistent`)
    l.entry = { name: j.n, ino: j.i }
    return l.entry
  }

  /** Makes (without `l`) or moves link `l` to name `name` of inode `ino` in `dir`, sealed as its next version; returns the event. The listings are left to the caller. */
  putLink(l: Link | undefined, dir: Inode, name: string, ino: number): LinkPutEvent {
    if (!l) {
      l = { id: ++this.maxLink, dir: dir.ino, version: 0, sealed: Buffer.alloc(0) }
      this.links.set(l.id, l)
    } else if (l.dir !== dir.ino) this.inodes.get(l.dir)?.linksHere.delete(l.id)
    l.dir = dir.ino
    l.version++
    l.sealed = seal(this.metaKey(dir), this.record({ n: name, i: ino }), linkAad(this.chainId, l.id, l.dir, l.version))
    l.entry = { name, ino }
    dir.linksHere.add(l.id)
    return { type: 'linkPut', link: l.id, dir: l.dir, version: l.version, sealed: l.sealed }
  }

  /** Forgets link `l`; the listings are left to the caller. */
  dropLink(l: Link): void {
    this.inodes.get(l.dir)?.linksHere.delete(l.id)
    this.links.delete(l.id)
  }

  /** The extended attributes of `n`, decrypted on first use; {@link ForgedDataError} if they fail authentication. */
  xattrs(n: Inode): Map<string, Buffer> {
    if (n.xattrs) return n.xattrs
    const map = new Map<string, Buffer>()
    if (n.sealedXattrs) {
      let pairs: unknown
      try {
        pairs = JSON.parse(open(xattrKeyOf(this.meta(n).key, this.chainId), n.sealedXattrs, xattrAad(this.chainId, n.ino, n.xattrVersion)).toString('utf8'))
      } catch (err) {
        if (err instanceof DecryptError) throw new ForgedDataError(`extended attributes of inode ${n.ino} fail authentication`)
        throw err
      }
      if (!Array.isArray(pairs)) throw new ForgedDataError(`extended attributes of inode ${n.ino} are inconsistent`)
      for (const p of pairs as unknown[]) {
        if (!Array.isArray(p) || typeof p[0] !== 'string' || typeof p[1] !== 'string') throw new ForgedDataError(`extended attributes of inode ${n.ino} are inconsistent`)
        map.set(p[0], Buffer.from(p[1], 'base64'))
      }
    }
    n.xattrs = map
    return map
  }

  /** Seals the extended attributes of `n` (as {@link xattrs} holds them) as their next version; returns the event. */
  sealXattrs(n: Inode): XattrPutEvent {
    const pairs = [...this.xattrs(n)].map(([k, v]) => [k, v.toString('base64')])
    n.xattrVersion++
    n.sealedXattrs = seal(xattrKeyOf(this.meta(n).key, this.chainId), this.record(pairs), xattrAad(this.chainId, n.ino, n.xattrVersion))
    return { type: 'xattrPut', ino: n.ino, version: n.xattrVersion, sealed: n.sealedXattrs }
  }

  /** The plaintext of a sealed record: its JSON, padded to its size class unless padding is off. */
  private record(value: unknown): Buffer {
    const json = JSON.stringify(value)
    return this.padding ? padRecord(json) : Buffer.from(json)
  }

  /** A fresh random inode key. */
  static newKey(): Buffer {
    return randomBytes(32)
  }
}

/** The JSON record of `meta`, as it is sealed. */
function metaJson(meta: InodeMeta): MetaJson {
  const [a, an] = splitNs(meta.atimeNs)
  const [t, tn] = splitNs(meta.mtimeNs)
  const [c, cn] = splitNs(meta.ctimeNs)
  const j: MetaJson = { n: meta.name, p: meta.parent, k: KIND_CODE[meta.kind], m: meta.mode, u: meta.uid, g: meta.gid, a, t, c, s: meta.size, key: meta.key.toString('base64') }
  if (an) j.an = an
  if (tn) j.tn = tn
  if (cn) j.cn = cn
  if (meta.target !== undefined) j.l = meta.target
  if (meta.rdev) j.r = meta.rdev
  if (meta.links?.length) j.h = meta.links
  if (meta.keyHistory?.length) j.kh = meta.keyHistory.map(h => [h.upTo, h.key.toString('base64')])
  return j
}
