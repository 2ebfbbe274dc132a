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
import type { ChainBackend } from './backend.ts'

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

/** The live state of a chain as the events of a compacted log, and the chunks to copy. */
interface LiveState {
  events: ChainEvent[]
  chunks: { ino: number; index: number; ref: ChunkRef }[]
  inodes: number
  links: number
}

/** The events of a compacted log's first block (the chunks follow in blocks of their own). */
function liveState(chain: Chain): LiveState {
  const tree = chain.tree
  const owner = [...chain.writers.values()].find(w => w.owner)!
  const metas: InodePutEvent[] = []
  // extended attributes, and granted files' own copies of their metadata (event 14)
  const xattrs: (XattrPutEvent | FileMetaEvent)[] = []
  const chunks: { ino: number; index: number; ref: ChunkRef }[] = []
  const grants = tree.grants.filter(x => x.ino === ROOT_INO || tree.inodes.has(x.ino))
  // a file's own copy of its metadata is for the readers granted it alone: none left, none copied
  const granted = new Set(grants.map(g => g.ino))
  for (const n of tree.inodes.values()) {
    if (!n.sealedMeta || n.deleted) continue
    metas.push({ type: 'inodePut', ino: n.ino, keyParent: n.keyParent, version: n.version, sealedMeta: n.sealedMeta })
    if (n.sealedXattrs) xattrs.push({ type: 'xattrPut', ino: n.ino, version: n.xattrVersion, sealed: n.sealedXattrs })
    if (n.fileMeta && granted.has(n.ino)) xattrs.push({ type: 'fileMeta', ino: n.ino, version: n.fileMeta.version, sealed: n.fileMeta.sealed })
    for (const [index, ref] of n.chunks) if (ref.pos >= 0) chunks.push({ ino: n.ino, index, ref })
  }
  metas.sort((a, b) => a.ino - b.ino)
  const links: LinkPutEvent[] = [...tree.links.values()].map(l => ({ type: 'linkPut', link: l.id, dir: l.dir, version: l.version, sealed: l.sealed }))
  const writers = [...chain.writers.values()].filter(w => !w.owner)
  const events: ChainEvent[] = [
    {
      type: 'genesis',
      formatVersion: FORMAT_VERSION,
      chunkSize: chain.chunkSize,
      ownerName: owner.name,
      ownerSigningKey: owner.signingKey,
      ownerKemKey: owner.kemKey,
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
  return { events, chunks, inodes: metas.length, links: links.length }
}

/** The signed blocks of a compacted log, framed, with where each lies and where each copied chunk lands. */
interface CompactedBlocks {
  offsets: number[]
  /** Where each copied chunk lies in the new log. */
  newPos: { ref: ChunkRef; pos: number }[]
  /** Where the new log ends. */
  end: number
  head: { seq: number; hash: Buffer }
}

/**
 * Signs the live state of `chain` as the blocks of a new log, from seq head + 1 on, and hands
 * each frame to `put` in order (at its offset in the new log). Chunks are read from the log
 * unless `preread` holds them (read before, at the same place).
 */
async function compactedBlocks(chain: Chain, live: LiveState, put: (framed: Buffer, at: number) => Promise<void>, preread?: Map<ChunkRef, { pos: number; sealed: Buffer }>): Promise<CompactedBlocks> {
  const blockBytes = 8 * 1024 * 1024
  const out: CompactedBlocks = { offsets: [], newPos: [], end: FILE_HEADER_BYTES, head: { seq: chain.headSeq, hash: chain.headHash } }
  let seq = chain.headSeq + 1
  let prevHash = chain.headHash
  let events = live.events
  let bytes = 0
  let refs: { e: ChunkPutEvent; ref: ChunkRef }[] = []
  const flush = async () => {
    const { body, hash } = await chain.signOffThread({ formatVersion: FORMAT_VERSION, chainId: chain.chainId, seq, prevHash, time: Date.now(), author: chain.identity.keyId, events }, bytes + 4096)
    const framed = frame(body)
    for (const { e, ref } of refs) out.newPos.push({ ref, pos: out.end + FRAME_HEADER_BYTES + e.bodyOffset! })
    await put(framed, out.end)
    out.offsets.push(out.end)
    out.end += framed.length
    out.head = { seq, hash }
    prevHash = hash
    seq++
    events = []
    refs = []
    bytes = 0
  }
  for (const c of live.chunks) {
    const early = preread?.get(c.ref)
    let sealed = early?.pos === c.ref.pos ? early.sealed : undefined
    if (!sealed) {
      sealed = Buffer.allocUnsafe(c.ref.len)
      await chain.fileHandle.read(sealed, 0, c.ref.len, c.ref.pos)
    }
    const e: ChunkPutEvent = { type: 'chunkPut', ino: c.ino, index: c.index, version: c.ref.version, sealed }
    events.push(e)
    refs.push({ e, ref: c.ref })
    bytes += sealed.length
    if (bytes >= blockBytes) await flush()
  }
  if (events.length > 0 || out.offsets.length === 0) await flush()
  return out
}

/**
 * Rewrites the live state of `chain` into a new log and swaps it in atomically. The new
 * log's first block is a genesis that links to the old head (its seq is the old head + 1),
 * so the trust store accepts it. Sealed metadata and chunks, extra names and extended
 * attributes are copied as they are (no re-encryption). The new log is of the current
 * format version, so compacting also upgrades an old one. Only the owner may compact.
 *
 * A log file: the new log is written beside the old one, fdatasync'd, then renamed over
 * it, so a crash at any point leaves either the old log or the new one, whole.
 *
 * A store compacted in place (PostgreSQL): the compacted blocks are added and every row
 * below them deleted in one transaction, holding the write lease when several nodes write
 * (their changes wait meanwhile; each rebuilds its tree from the new rows when it next
 * catches up, see resync.ts). A failed transaction leaves the old rows whole.
 */
export async function compactChain(chain: Chain): Promise<CompactReport> {
  const owner = [...chain.writers.values()].find(w => w.owner)!
  if (!Buffer.from(owner.keyId).equals(Buffer.from(chain.identity.keyId))) throw vfsError('EPERM', 'only the chain owner may compact it')
  if (chain.readOnly) throw vfsError('EROFS', 'the chain is open read-only')
  if (chain.backend.kind !== 'file') {
    if (!chain.fileHandle.compactInPlace) throw vfsError('EOPNOTSUPP', `compaction rewrites a log file; ${chain.path} is not one`)
    return compactInPlace(chain)
  }
  return chain.exclusive(async () => {
    const live = liveState(chain)
    const tmp = `${chain.path}.compact.tmp`
    await rm(tmp, { force: true })
    const fh = await open(tmp, 'wx', 0o600)
    const beforeBytes = chain.logBytes
    let done: CompactedBlocks
    try {
      await fh.write(fileHeader(), 0, FILE_HEADER_BYTES, 0)
      done = await compactedBlocks(chain, live, async (framed, at) => void (await fh.write(framed, 0, framed.length, at)))
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
    for (const { ref, pos } of done.newPos) ref.pos = pos
    await chain.adoptLog(nfh, done.end, done.head, done.head.seq - done.offsets.length + 1, done.offsets)
    return { beforeBytes, afterBytes: done.end, blocks: done.offsets.length, baseSeq: done.head.seq - done.offsets.length + 1, inodes: live.inodes, links: live.links, chunks: live.chunks.length }
  })
}

/** Compacts a store in place (see {@link compactChain}). */
async function compactInPlace(chain: Chain): Promise<CompactReport> {
  // the chunks are read before the write lease is taken, so the other nodes wait only for the signing and the transaction
  const preread = new Map<ChunkRef, { pos: number; sealed: Buffer }>()
  for (const c of liveState(chain).chunks) {
    const sealed = Buffer.allocUnsafe(c.ref.len)
    const { bytesRead } = await chain.fileHandle.read(sealed, 0, c.ref.len, c.ref.pos)
    if (bytesRead === c.ref.len) preread.set(c.ref, { pos: c.ref.pos, sealed })
  }
  return chain.exclusive(async () => {
    const live = liveState(chain)
    const beforeBytes = chain.logBytes
    const frames: Buffer[] = []
    const done = await compactedBlocks(chain, live, async framed => void frames.push(framed), preread)
    const baseSeq = done.head.seq - done.offsets.length + 1
    // nothing changes here until the transaction has committed: a failed one leaves the chain as it was
    await chain.fileHandle.compactInPlace!(frames, baseSeq)
    for (const { ref, pos } of done.newPos) ref.pos = pos
    await chain.adoptLog(undefined, done.end, done.head, baseSeq, done.offsets)
    return { beforeBytes, afterBytes: done.end, blocks: done.offsets.length, baseSeq, inodes: live.inodes, links: live.links, chunks: live.chunks.length }
  })
}

/** Opens the chain at `path` (a log file, or a backend such as PostgreSQL), compacts it, and closes it. */
export async function compactChainFile(path: string | ChainBackend, options: ChainOptions): Promise<CompactReport> {
  const chain = await Chain.open(path, options)
  try {
    return await compactChain(chain)
  } finally {
    await chain.close()
  }
}
