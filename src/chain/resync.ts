import type { Identity } from '../crypto/identity.ts'
import type { PqPool } from '../crypto/pq-pool.ts'
import type { ChainLog } from './backend.ts'
import { FILE_HEADER_BYTES, type ChainEvent, type ChunkPutEvent } from './format.ts'
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
}

/**
 * Reads and verifies every block of `log` (hash chain, signatures, writers) into a new
 * tree and unlocks it for `identity`, as an open does, without taking any lock: what a
 * node rebuilds its state from when its own tree no longer matches the log (another node
 * compacted it).
 */
export async function rebuildFromLog(log: ChainLog, o: { chainId: Uint8Array; identity: Identity; pool: () => PqPool; padding: boolean; path: string }): Promise<Rebuilt> {
  const verifier = new BlockVerifier()
  verifier.pool = o.pool
  const tree = new ChainTree(o.chainId)
  tree.padding = o.padding
  const offsets: number[] = []
  const scan = await scanLog(
    log,
    verifier,
    v => {
      for (const e of v.block.events) tree.apply(e, v.bodyOffset)
      offsets.push(v.frameOffset)
    },
    FILE_HEADER_BYTES,
    await log.size(),
  )
  if (!verifier.genesis) throw new ChainIntegrityError('the log holds no complete block', 0, FILE_HEADER_BYTES)
  if (!Buffer.from(verifier.chainId!).equals(Buffer.from(o.chainId))) throw new ChainIntegrityError('the log now holds another chain', verifier.baseSeq, FILE_HEADER_BYTES)
  if (scan.tornTail) throw new ChainIntegrityError(`damaged frame (${scan.tornTail.reason})`, scan.tornTail.seq, scan.tornTail.offset)
  unlockTree(tree, o.identity, o.path)
  return { tree, verifier, scan, offsets }
}

/**
 * Moves the state of `fresh` into `live` in place, so the inode records that open handles
 * and mounted nodes hold stay the ones in use: each inode both trees have is updated from
 * `fresh` (its metadata decrypted again on first use), one `fresh` lacks is marked deleted
 * and dropped, one only `fresh` has is taken from it. Returns the inode numbers whose state
 * changed.
 */
export function transplant(live: ChainTree, fresh: ChainTree): Set<number> {
  const touched = new Set<number>()
  for (const [ino, n] of live.inodes) {
    if (fresh.inodes.has(ino)) continue
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
  /** Sealed chunks waiting for the next block. */
  pendingRefs: { e: ChunkPutEvent; ref: ChunkRef }[]
  /** Files whose size and times this node changed (content written, truncated), with those facts as they were. */
  facts: Map<Inode, { size: number; mtimeNs: bigint; ctimeNs: bigint }>
}

/**
 * Puts this node's uncommitted content back on the rebuilt tree: the sealed chunks waiting
 * for the next block, and the size and times of the files it wrote. Returns the inodes whose
 * metadata the next block must put.
 */
export function keepContent(tree: ChainTree, keep: ContentToKeep): { meta: Inode[] } {
  for (const { e, ref } of keep.pendingRefs) {
    const n = tree.inodes.get(e.ino)
    if (n && !n.deleted) n.chunks.set(e.index, ref)
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
  return { meta }
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
