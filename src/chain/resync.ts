import type { Identity } from '../crypto/identity.ts'
import type { PqPool } from '../crypto/pq-pool.ts'
import type { ChainLog } from './backend.ts'
import { FILE_HEADER_BYTES, type ChainEvent, type ChunkPutEvent, type ChunksCutEvent } from './format.ts'
import { BlockVerifier, ChainIntegrityError, scanLog, type ScanResult } from './log.ts'
import { unlockTree } from './sharing.ts'
import { ChainTree, type ChunkRef, type Inode } from './tree.ts'
import type { Chain } from './store.ts'

/** A chain's tree built afresh from every block its log holds now. */
export interface Rebuilt {
  tree: ChainTree
  verifier: BlockVerifier
  scan: ScanResult
  /** Frame offsets of the blocks, by seq − base seq. */
  offsets: number[]
  /** The highest inode number in use after block `upTo` (see {@link rebuildFromLog}), or -1 when the log holds no such block. */
  maxInoAt: number
}

/**
 * Reads and verifies every block of `log` (hash chain, signatures, writers) into a new
 * tree and unlocks it for `identity`, as an open does, without taking any lock: what a
 * node rebuilds its state from when its own tree no longer matches the log (another node
 * compacted it, or a block of its own lost its place). `upTo` notes the highest inode
 * number in use after that block.
 */
export async function rebuildFromLog(log: ChainLog, o: { chainId: Uint8Array; identity: Identity; pool: () => PqPool; padding: boolean; path: string; upTo?: number }): Promise<Rebuilt> {
  const verifier = new BlockVerifier()
  verifier.pool = o.pool
  const tree = new ChainTree(o.chainId)
  tree.padding = o.padding
  const offsets: number[] = []
  let maxInoAt = -1
  const scan = await scanLog(
    log,
    verifier,
    v => {
      for (const e of v.block.events) tree.apply(e, v.bodyOffset)
      offsets.push(v.frameOffset)
      if (v.block.seq === o.upTo) maxInoAt = tree.maxIno
    },
    FILE_HEADER_BYTES,
    await log.size(),
  )
  if (!verifier.genesis) throw new ChainIntegrityError('the log holds no complete block', 0, FILE_HEADER_BYTES)
  if (!Buffer.from(verifier.chainId!).equals(Buffer.from(o.chainId))) throw new ChainIntegrityError('the log now holds another chain', verifier.baseSeq, FILE_HEADER_BYTES)
  if (scan.tornTail) throw new ChainIntegrityError(`damaged frame (${scan.tornTail.reason})`, scan.tornTail.seq, scan.tornTail.offset)
  unlockTree(tree, o.identity, o.path)
  return { tree, verifier, scan, offsets, maxInoAt }
}

/**
 * Moves the state of `fresh` into `live` in place, so the inode records that open handles
 * and mounted nodes hold stay the ones in use: each inode both trees have is updated from
 * `fresh` (its metadata decrypted again on first use), one `fresh` lacks is marked deleted
 * and dropped, one only `fresh` has is taken from it. Inodes numbered above `renewAbove` are
 * never kept, even when `fresh` has their number (this node made them in blocks that never
 * landed: another node's inode may have that number now). Returns the inode numbers whose
 * state changed.
 */
export function transplant(live: ChainTree, fresh: ChainTree, renewAbove = Infinity): Set<number> {
  const touched = new Set<number>()
  for (const [ino, n] of live.inodes) {
    if (fresh.inodes.has(ino) && ino <= renewAbove) continue
    n.deleted = true
    live.inodes.delete(ino)
    touched.add(ino)
  }
  for (const [ino, f] of fresh.inodes) {
    const n = live.inodes.get(ino)
    if (!n) {
      live.inodes.set(ino, f)
      touched.add(ino)
      continue
    }
    if (!sameState(n, f)) touched.add(ino)
    // the record's own fields (chunk lists, children, sealed metadata, keys…): all but its VFS node and unsealed content
    const chunkVersion = n.chunkVersion
    for (const k of Object.keys(f) as (keyof Inode)[]) if (k !== 'node' && k !== 'dirty' && k !== 'ino') (n as unknown as Record<string, unknown>)[k] = f[k]
    // versions this node sealed and has not committed stay above every version in the log
    n.chunkVersion = Math.max(n.chunkVersion, chunkVersion)
    n.deleted = false
  }
  live.replaceGrants(fresh.grants)
  live.groups.clear()
  for (const [k, g] of fresh.groups) live.groups.set(k, g)
  live.links.clear()
  for (const [k, l] of fresh.links) live.links.set(k, l)
  live.maxIno = fresh.maxIno
  live.maxLink = fresh.maxLink
  live.rootKey = fresh.rootKey
  live.rootReader = fresh.rootReader
  live.partial = fresh.partial
  return touched
}

/** True when two records of one inode hold the same committed state (metadata, attributes, chunks in the log). */
function sameState(n: Inode, f: Inode): boolean {
  if (n.version !== f.version || !n.sealedMeta || !f.sealedMeta || !n.sealedMeta.equals(f.sealedMeta) || n.xattrVersion !== f.xattrVersion) return false
  if (n.chunks.size !== f.chunks.size) return false
  for (const [i, r] of f.chunks) if (n.chunks.get(i)?.version !== r.version) return false
  return true
}

/**
 * Holds a chain rebuilt from a store compacted in place against the head this node had:
 * the compacted genesis must name a head at or past it (else blocks it read are gone, a
 * rollback), the very same head when at it, and then its state must be this node's (every
 * committed inode with the same metadata and chunk versions). Throws {@link ChainIntegrityError}.
 */
export function checkCompaction(head: { seq: number; hash: Buffer }, live: ChainTree, r: Rebuilt): void {
  const from = r.verifier.genesis!.compactedFrom
  const fail = (why: string) => new ChainIntegrityError(why, r.verifier.baseSeq, FILE_HEADER_BYTES)
  if (!from) throw fail('the store was compacted, but its first block names no head it replaced')
  if (from.seq < head.seq) throw fail(`compacted from block ${from.seq}, older than block ${head.seq} read here: blocks are missing (a rollback)`)
  if (from.seq > head.seq) return
  if (!Buffer.from(from.hash).equals(head.hash)) throw fail(`compacted from another block ${from.seq} than the one read here (a fork)`)
  let committed = 0
  for (const n of live.inodes.values()) {
    if (!n.sealedMeta || n.deleted) continue
    committed++
    const f = r.tree.inodes.get(n.ino)
    if (!f || f.version !== n.version || !f.sealedMeta!.equals(n.sealedMeta)) throw fail(`the compacted state differs from block ${head.seq}'s: inode ${n.ino}`)
    for (const [i, ref] of n.chunks) if (ref.pos >= 0 && f.chunks.get(i)?.version !== ref.version) throw fail(`the compacted state differs from block ${head.seq}'s: chunk ${i} of inode ${n.ino}`)
  }
  if (committed !== [...r.tree.inodes.values()].filter(f => f.sealedMeta).length) throw fail(`the compacted state differs from block ${head.seq}'s: another set of inodes`)
}

/** A content event of a block (a chunk put with its place, or a chunk cut), to put back if the block does not land. */
export interface ContentEvent {
  e: ChunkPutEvent | ChunksCutEvent
  ref?: ChunkRef | undefined
}

/** The content events of a block's `events` (`refs`: its chunk puts with their places). */
export function contentEvents(events: ChainEvent[], refs: { e: ChunkPutEvent; ref: ChunkRef }[]): ContentEvent[] {
  const refOf = new Map<ChainEvent, ChunkRef>(refs.map(r => [r.e, r.ref]))
  const out: ContentEvent[] = []
  for (const e of events) if (e.type === 'chunkPut' || e.type === 'chunksCut') out.push({ e, ref: refOf.get(e) })
  return out
}

/** The size and times of the files among `inodes` and those `events` name, as this node has them now (its content changes, to keep over a rebuild). */
export function contentFacts(tree: ChainTree, inodes: Inode[], events: ChainEvent[]): Map<Inode, { size: number; mtimeNs: bigint; ctimeNs: bigint }> {
  const facts = new Map<Inode, { size: number; mtimeNs: bigint; ctimeNs: bigint }>()
  const note = (n: Inode | undefined) => {
    if (!n || n.deleted || !n.meta || n.meta.kind !== 'file' || facts.has(n)) return
    facts.set(n, { size: n.meta.size, mtimeNs: n.meta.mtimeNs, ctimeNs: n.meta.ctimeNs })
  }
  for (const n of inodes) note(n)
  for (const e of events) if ('ino' in e) note(tree.inodes.get(e.ino))
  return facts
}

/** The paths of `inos` in `tree` that it can name (for the kernel's cache). */
export function pathsOf(tree: ChainTree, inos: Set<number>): Set<string> {
  const paths = new Set<string>()
  for (const ino of inos) {
    const n = tree.inodes.get(ino)
    if (!n || n.deleted || !n.sealedMeta || ino === 1) continue
    try {
      paths.add(tree.pathOf(n))
    } catch {
      // a name this identity cannot read: nothing of it is in the kernel's cache either
    }
  }
  return paths
}

/** Uncommitted content of this node to put back on top of a rebuilt tree. */
export interface ContentToKeep {
  /** The content events of blocks that were signed and never landed, oldest first. */
  unlanded: ContentEvent[]
  /** Sealed chunks waiting for the next block. */
  pendingRefs: { e: ChunkPutEvent; ref: ChunkRef }[]
  /** Files whose size and times this node changed (content written, truncated), with those facts as they were. */
  facts: Map<Inode, { size: number; mtimeNs: bigint; ctimeNs: bigint }>
}

/**
 * Puts this node's uncommitted content back on the rebuilt tree: the chunks of its blocks
 * that never landed and those waiting for the next block, in the order written, and the
 * size and times of the files it wrote. Returns the events the next block must carry before
 * the waiting ones (the chunk puts and cuts of the blocks that never landed, their sealed
 * bytes in memory again), and the inodes whose metadata it must put.
 */
export function keepContent(tree: ChainTree, keep: ContentToKeep): { events: ChainEvent[]; refs: { e: ChunkPutEvent; ref: ChunkRef }[]; meta: Inode[] } {
  const events: ChainEvent[] = []
  const refs: { e: ChunkPutEvent; ref: ChunkRef }[] = []
  const alive = (ino: number) => {
    const n = tree.inodes.get(ino)
    return n && !n.deleted ? n : undefined
  }
  for (const { e, ref } of keep.unlanded) {
    const n = alive(e.ino)
    if (!n) continue
    if (e.type === 'chunkPut') {
      if (!ref?.sealed) continue
      // its block never landed: the chunk waits for the next one, in memory (its sealed bytes in that block's buffer)
      ref.pos = -1
      e.sealed = ref.sealed
      n.chunks.set(e.index, ref)
      refs.push({ e, ref })
    } else for (const i of [...n.chunks.keys()]) if (i >= e.from) n.chunks.delete(i)
    events.push(e)
  }
  for (const { e, ref } of keep.pendingRefs) {
    const n = alive(e.ino)
    if (n) n.chunks.set(e.index, ref)
  }
  const meta: Inode[] = []
  for (const [n, m] of keep.facts) {
    if (n.deleted || tree.inodes.get(n.ino) !== n) continue
    const now = tree.meta(n)
    now.size = m.size
    now.mtimeNs = m.mtimeNs
    if (m.ctimeNs > now.ctimeNs) now.ctimeNs = m.ctimeNs
    meta.push(n)
  }
  return { events, refs, meta }
}

/**
 * After a read of `chain` failed with `err`: when another node compacted the store in place
 * meanwhile (the rows the read needed are gone), catches up (rebuilding from the new rows)
 * and reads again with `again`; else throws `err`.
 */
export async function readAfterCompaction<T>(chain: Chain, err: unknown, again: () => Promise<T>): Promise<T> {
  const base = chain.baseSeq
  await chain.fileHandle.size()
  if (!((chain.fileHandle.firstSeq ?? -1) > base || chain.baseSeq > base)) throw err
  await chain.catchUp()
  return again()
}
