import { DecryptError, open, randomBytes, seal } from '../crypto/primitives.ts'
import { ROOT_INO, type ChainEvent, type KeyGrantEvent } from './format.ts'
import { chunkKeyOf, metaAad, metaKeyOf } from './keys.ts'

/** What an inode's encrypted metadata holds. */
export interface InodeMeta {
  name: string
  parent: number
  kind: 'file' | 'dir' | 'symlink'
  mode: number
  uid: number
  gid: number
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
  size: number
  /** A symlink's target. */
  target?: string | undefined
  /** The inode's own 32-byte data key. */
  key: Buffer
}

interface MetaJson {
  n: string
  p: number
  k: 'f' | 'd' | 'l'
  m: number
  u: number
  g: number
  a: number
  t: number
  c: number
  s: number
  l?: string
  key: string
}

const KIND_CODE = { file: 'f', dir: 'd', symlink: 'l' } as const
const CODE_KIND = { f: 'file', d: 'dir', l: 'symlink' } as const

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
  /** Children by inode (directories). */
  readonly children = new Set<number>()
  /** Children by name, built when the directory is first listed. */
  names: Map<string, number> | undefined
  chunkKey: Buffer | undefined
  metaKey: Buffer | undefined
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
  maxIno = ROOT_INO
  rootKey: Buffer | undefined

  constructor(readonly chainId: Uint8Array) {}

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
        n.meta = undefined
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
        break
      default:
        break
    }
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

  /** Decrypts (once) and returns the metadata of `n`; {@link ForgedDataError} if it fails authentication. */
  meta(n: Inode): InodeMeta {
    if (n.meta) return n.meta
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
    let j: MetaJson
    try {
      j = JSON.parse(open(key, n.sealedMeta, metaAad(this.chainId, n.ino, n.keyParent, n.version)).toString('utf8')) as MetaJson
    } catch (err) {
      if (err instanceof DecryptError) throw new ForgedDataError(`metadata of inode ${n.ino} fails authentication`)
      throw err
    }
    const meta: InodeMeta = {
      name: j.n,
      parent: j.p,
      kind: CODE_KIND[j.k],
      mode: j.m,
      uid: j.u,
      gid: j.g,
      atimeMs: j.a,
      mtimeMs: j.t,
      ctimeMs: j.c,
      size: j.s,
      target: j.l,
      key: Buffer.from(j.key, 'base64'),
    }
    if ((n.ino !== ROOT_INO && meta.parent !== n.keyParent) || !meta.kind || meta.key.length !== 32) throw new ForgedDataError(`metadata of inode ${n.ino} is inconsistent`)
    if (n.ino === ROOT_INO && !meta.key.equals(this.rootKey!)) throw new ForgedDataError('root metadata carries another key')
    n.meta = meta
    return meta
  }

  /** Encrypts `meta` as the next version of `n`'s metadata; returns the event fields. */
  sealMeta(n: Inode, meta: InodeMeta): { keyParent: number; version: number; sealedMeta: Buffer } {
    const keyParent = n.ino === ROOT_INO ? ROOT_INO : meta.parent
    const key = n.ino === ROOT_INO ? metaKeyOf(this.rootKey!, this.chainId) : this.metaKey(this.inodes.get(keyParent)!)
    const version = n.version + 1
    const j: MetaJson = {
      n: meta.name,
      p: meta.parent,
      k: KIND_CODE[meta.kind],
      m: meta.mode,
      u: meta.uid,
      g: meta.gid,
      a: meta.atimeMs,
      t: meta.mtimeMs,
      c: meta.ctimeMs,
      s: meta.size,
      key: meta.key.toString('base64'),
    }
    if (meta.target !== undefined) j.l = meta.target
    return { keyParent, version, sealedMeta: seal(key, Buffer.from(JSON.stringify(j)), metaAad(this.chainId, n.ino, keyParent, version)) }
  }

  /** Children of directory `n` by name, decrypting their metadata on first use. */
  names(n: Inode): Map<string, number> {
    if (n.names) return n.names
    const names = new Map<string, number>()
    for (const ino of n.children) {
      const c = this.inodes.get(ino)
      if (c) names.set(this.meta(c).name, ino)
    }
    n.names = names
    return names
  }

  /** A fresh random inode key. */
  static newKey(): Buffer {
    return randomBytes(32)
  }
}
