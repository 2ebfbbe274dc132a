import { open, rename, rm } from 'node:fs/promises'
import { vfsError } from '../vfs/errors.ts'
import {
  fileHeader,
  FILE_HEADER_BYTES,
  FORMAT_VERSION,
  frame,
  FRAME_HEADER_BYTES,
  ROOT_INO,
  type ChainEvent,
  type ChunkPutEvent,
  type FileMetaEvent,
  type InodePutEvent,
  type LinkPutEvent,
  type XattrPutEvent,
} from './format.ts'
import { fsyncDir } from './log.ts'
import { Chain, type ChainOptions } from './store.ts'
import type { ChunkRef } from './tree.ts'

/** What a compaction did. */
export interface CompactReport {
  /** Log size before and after, in bytes. */
  beforeBytes: number
  afterBytes: number
  /** Blocks in the new log. */
  blocks: number
  /** Sequence number of the new log's first block (the old head + 1). */
  baseSeq: number
  inodes: number
  /** Extra names (hard links) copied. */
  links: number
  chunks: number
}

/**
 * Rewrites the live state of `chain` into a new log and swaps it in atomically: the new
 * log is written beside the old one, fdatasync'd, then renamed over it, so a crash at any
 * point leaves either the old log or the new one, whole. The new log's first block is a
 * genesis that links to the old head, so the trust store accepts it. Sealed metadata and
 * chunks, extra names and extended attributes are copied as they are (no re-encryption).
 * The new log is of the current format version, so compacting also upgrades an old one.
 * Only the owner may compact.
 */
export async function compactChain(chain: Chain): Promise<CompactReport> {
  const owner = [...chain.writers.values()].find(w => w.owner)!
  if (!Buffer.from(owner.keyId).equals(Buffer.from(chain.identity.keyId))) throw vfsError('EPERM', 'only the chain owner may compact it')
  if (chain.readOnly) throw vfsError('EROFS', 'the chain is open read-only')
  if (chain.backend.kind !== 'file') throw vfsError('EOPNOTSUPP', `compaction rewrites a log file; ${chain.path} is not one`)
  return chain.exclusive(async () => {
    const tree = chain.tree
    const metas: InodePutEvent[] = []
    // extended attributes, and granted files' own copies of their metadata (event 14)
    const xattrs: (XattrPutEvent | FileMetaEvent)[] = []
    const chunks: { ino: number; index: number; ref: ChunkRef }[] = []
    for (const n of tree.inodes.values()) {
      if (!n.sealedMeta || n.deleted) continue
      metas.push({ type: 'inodePut', ino: n.ino, keyParent: n.keyParent, version: n.version, sealedMeta: n.sealedMeta })
      if (n.sealedXattrs) xattrs.push({ type: 'xattrPut', ino: n.ino, version: n.xattrVersion, sealed: n.sealedXattrs })
      if (n.fileMeta) xattrs.push({ type: 'fileMeta', ino: n.ino, version: n.fileMeta.version, sealed: n.fileMeta.sealed })
      for (const [index, ref] of n.chunks) if (ref.pos >= 0) chunks.push({ ino: n.ino, index, ref })
    }
    metas.sort((a, b) => a.ino - b.ino)
    const links: LinkPutEvent[] = [...tree.links.values()].map(l => ({ type: 'linkPut', link: l.id, dir: l.dir, version: l.version, sealed: l.sealed }))
    const grants = tree.grants.filter(x => x.ino === ROOT_INO || tree.inodes.has(x.ino))
    const writers = [...chain.writers.values()].filter(w => !w.owner)
    const ownerW = owner
    const tmp = `${chain.path}.compact.tmp`
    await rm(tmp, { force: true })
    const fh = await open(tmp, 'wx', 0o600)
    const beforeBytes = chain.logBytes
    const blockBytes = 8 * 1024 * 1024
    const offsets: number[] = []
    const newPos: { ref: ChunkRef; pos: number }[] = []
    let at = FILE_HEADER_BYTES
    let seq = chain.headSeq + 1
    let prevHash = chain.headHash
    const baseSeq = seq
    try {
      await fh.write(fileHeader(), 0, FILE_HEADER_BYTES, 0)
      let events: ChainEvent[] = [
        {
          type: 'genesis',
          formatVersion: FORMAT_VERSION,
          chunkSize: chain.chunkSize,
          ownerName: ownerW.name,
          ownerSigningKey: ownerW.signingKey,
          ownerKemKey: ownerW.kemKey,
          compactedFrom: { seq: chain.headSeq, hash: chain.headHash },
        },
        ...writers.map(w => ({ type: 'writerAuth' as const, action: 'authorise' as const, keyId: w.keyId, name: w.name, signingKey: w.signingKey, kemKey: w.kemKey })),
        // and the write scopes of those limited to folders (write-scope.ts)
        ...writers.filter(w => w.scope).map(w => ({ type: 'writeScope' as const, keyId: w.keyId, inos: [...w.scope!] })),
        // the latest state of each group: its key and the wraps of its secret
        ...tree.groups.values(),
        ...grants,
        ...metas,
        // after the inode puts: they name inodes and directories those made
        ...xattrs,
        ...links,
      ]
      let bytes = 0
      let refs: { e: ChunkPutEvent; ref: ChunkRef }[] = []
      const flush = async () => {
        const { body, hash } = await chain.signOffThread({ formatVersion: FORMAT_VERSION, chainId: chain.chainId, seq, prevHash, time: Date.now(), author: chain.identity.keyId, events }, bytes + 4096)
        const framed = frame(body)
        for (const { e, ref } of refs) newPos.push({ ref, pos: at + FRAME_HEADER_BYTES + e.bodyOffset! })
        await fh.write(framed, 0, framed.length, at)
        offsets.push(at)
        at += framed.length
        prevHash = hash
        seq++
        events = []
        refs = []
        bytes = 0
      }
      for (const c of chunks) {
        const sealed = Buffer.allocUnsafe(c.ref.len)
        await chain.fileHandle.read(sealed, 0, c.ref.len, c.ref.pos)
        const e: ChunkPutEvent = { type: 'chunkPut', ino: c.ino, index: c.index, version: c.ref.version, sealed }
        events.push(e)
        refs.push({ e, ref: c.ref })
        bytes += sealed.length
        if (bytes >= blockBytes) await flush()
      }
      if (events.length > 0 || offsets.length === 0) await flush()
      await fh.datasync()
    } catch (err) {
      await fh.close()
      await rm(tmp, { force: true })
      throw err
    }
    await fh.close()
    await rename(tmp, chain.path)
    await fsyncDir(chain.path)
    const nfh = await open(chain.path, 'r+')
    for (const { ref, pos } of newPos) ref.pos = pos
    await chain.adoptLog(nfh, at, { seq: seq - 1, hash: prevHash }, baseSeq, offsets)
    return { beforeBytes, afterBytes: at, blocks: offsets.length, baseSeq, inodes: metas.length, links: links.length, chunks: chunks.length }
  })
}

/** Opens the chain at `path`, compacts it, and closes it. */
export async function compactChainFile(path: string, options: ChainOptions): Promise<CompactReport> {
  const chain = await Chain.open(path, options)
  try {
    return await compactChain(chain)
  } finally {
    await chain.close()
  }
}
