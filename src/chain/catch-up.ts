import type { PqPool } from '../crypto/pq-pool.ts'
import { open as openSealed, seal } from '../crypto/primitives.ts'
import type { ChainLog } from './backend.ts'
import { FORMAT_VERSION, ROOT_INO, type ChainEvent, type ChunkPutEvent } from './format.ts'
import { changesGrants, refreshGrants } from './grant-refresh.ts'
import { chunkAad } from './keys.ts'
import { BlockVerifier, scanLog, type ChainWriter, type ScanResult, type VerifiedBlock } from './log.ts'
import type { ChainTree, ChunkRef, Inode } from './tree.ts'
import { Writers } from './write-scope.ts'

/** Where an open chain stands, for reading the blocks appended after it. */
export interface ChainPosition {
  log: ChainLog
  /** Where the blocks this chain has applied end. */
  end: number
  chainId: Uint8Array
  chunkSize: number
  ownerName: string
  baseSeq: number
  headSeq: number
  headHash: Buffer
  headFormat: number
  writers: Map<string, ChainWriter>
  /** The signature workers (checking signatures off the main thread). */
  pool(): PqPool
}

/** Blocks appended after a {@link ChainPosition}, verified and not yet applied. */
export interface Appended {
  blocks: VerifiedBlock[]
  scan: ScanResult
  /** The verifier after them: head, format and writers as the last block leaves them. */
  verifier: BlockVerifier
}

/**
 * Reads and verifies the blocks another process (or node) appended after `at`, continuing
 * its hash chain and its writers (a writer authorised or revoked in one block counts for
 * the next); signatures are checked on the worker threads. Undefined when there are none;
 * `'compacted'` when the store was compacted in place since (the chain must be rebuilt).
 */
export async function readAppended(at: ChainPosition): Promise<Appended | 'compacted' | undefined> {
  const size = await at.log.size()
  // the rows below the store's first seq are gone: another node compacted it in place (resync.ts rebuilds from the new rows)
  if (at.log.firstSeq !== undefined && at.log.firstSeq > at.baseSeq) return 'compacted'
  if (size <= at.end) return undefined
  const v = new BlockVerifier()
  v.genesis = { type: 'genesis', formatVersion: FORMAT_VERSION, chunkSize: at.chunkSize, ownerName: at.ownerName, ownerSigningKey: new Uint8Array(), ownerKemKey: new Uint8Array() }
  v.chainId = at.chainId
  v.baseSeq = at.baseSeq
  v.headSeq = at.headSeq
  v.headHash = at.headHash
  v.formatVersion = at.headFormat
  for (const [k, w] of at.writers) v.writers.set(k, w)
  if (at.writers instanceof Writers) v.writers.shape = at.writers.shape
  v.pool = at.pool
  v.inlineBlocks = 0
  const blocks: VerifiedBlock[] = []
  const scan = await scanLog(at.log, v, b => void blocks.push(b), at.end, size)
  return { blocks, scan, verifier: v }
}

/**
 * What this node changed and has not committed yet: content written to files (their
 * size and times, sealed chunks waiting for the next block). Metadata changes of a chain
 * that several nodes write are committed before they return, so only content waits.
 */
export interface LocalChanges {
  /** Inodes whose metadata (size, times) changed here. */
  dirtyMeta: Set<Inode>
  /** Sealed chunks waiting for the next block, each with the place it takes in its inode. */
  pendingRefs: { e: ChunkPutEvent; ref: ChunkRef }[]
  chunkSize: number
  /** Queues an event for this node's next block. */
  emit(e: ChainEvent): void
}

/**
 * Applies verified blocks of other writers to `tree` and returns the inodes they touched
 * (and the folders whose entries changed). With `local`, this node's uncommitted content
 * stays on top, as its next block will put it in the log: a file's size and times are this
 * node's, over whatever else the other writers changed of it (a rename, a chmod), and the
 * chunks it wrote replace theirs — the last close wins, whole.
 */
export function applyAppended(tree: ChainTree, blocks: VerifiedBlock[], local?: LocalChanges, paths?: Set<string>): Set<number> {
  const touched = new Set<number>()
  // the paths the blocks change, old and new, so a node can drop exactly those from the kernel's cache
  const seen = new Set<number>()
  const note = (ino: number) => {
    const n = tree.inodes.get(ino)
    if (!paths || !n || n.ino === ROOT_INO || n.deleted || !n.sealedMeta) return
    try {
      paths.add(tree.pathOf(n))
    } catch {
      // a name this identity cannot read: nothing of it is in the kernel's cache either
    }
  }
  if (paths) for (const v of blocks) for (const e of v.block.events) if (hasIno(e) && !seen.has(e.ino)) (seen.add(e.ino), note(e.ino))
  const mine = new Map<Inode, { size: number; mtimeNs: bigint; ctimeNs: bigint }>()
  const putByOthers = new Set<number>()
  const sealedUnder = local ? chunkKeysOfPending(tree, local) : undefined
  for (const n of local?.dirtyMeta ?? []) if (n.meta) mine.set(n, { size: n.meta.size, mtimeNs: n.meta.mtimeNs, ctimeNs: n.meta.ctimeNs })
  for (const v of blocks) {
    for (const e of v.block.events) {
      if (e.type === 'linkPut' || e.type === 'linkDrop') touched.add(e.type === 'linkPut' ? e.dir : (tree.links.get(e.link)?.dir ?? ROOT_INO))
      tree.apply(e, v.bodyOffset)
      if (e.type === 'inodePut') putByOthers.add(e.ino)
      if (hasIno(e)) {
        touched.add(e.ino)
        const n = tree.inodes.get(e.ino)
        if (n) touched.add(n.keyParent)
      }
    }
  }
  // a grant given or withdrawn while mounted: a reader of some folders sees them come and go, a reader of / takes
  // the root key a rotation gave it (grant-refresh.ts); before this node's own content goes back on top, which reads metadata
  if ((tree.partial?.reader || tree.rootReader) && blocks.some(v => v.block.events.some(changesGrants))) {
    const refreshed = refreshGrants(tree)
    if (refreshed) touched.add(ROOT_INO)
    for (const p of refreshed?.paths ?? []) paths?.add(p)
  }
  if (local) keepLocal(tree, local, mine, putByOthers)
  if (local && sealedUnder) resealRotated(tree, local, sealedUnder)
  for (const ino of seen) note(ino)
  return touched
}

/** The chunk key each inode with chunks waiting here has now: what those chunks are sealed under. */
function chunkKeysOfPending(tree: ChainTree, local: LocalChanges): Map<Inode, Buffer> {
  const keys = new Map<Inode, Buffer>()
  for (const { e } of local.pendingRefs) {
    const n = tree.inodes.get(e.ino)
    if (!n || n.deleted || keys.has(n)) continue
    try {
      keys.set(n, tree.chunkKey(n))
    } catch {
      // a file this identity cannot open: it writes no content there either
    }
  }
  return keys
}

/**
 * Seals again, under the inode's new key, the chunks waiting here whose inode another
 * writer's block gave a new key (a rotation): its readers open chunk versions past the
 * rotation with the new key, and these versions are past it.
 */
function resealRotated(tree: ChainTree, local: LocalChanges, sealedUnder: Map<Inode, Buffer>): void {
  for (const { e, ref } of local.pendingRefs) {
    const n = tree.inodes.get(e.ino)
    const before = n && sealedUnder.get(n)
    if (!n || !before || n.deleted || !ref.sealed) continue
    const now = tree.chunkKey(n)
    if (now.equals(before)) continue
    const aad = chunkAad(tree.chainId, n.ino, e.index, e.version)
    const sealed = seal(now, openSealed(before, ref.sealed, aad), aad)
    ref.sealed = sealed
    e.sealed = sealed
  }
}

/** Puts this node's uncommitted content back on top of what the other writers' blocks just changed (see {@link applyAppended}). */
function keepLocal(tree: ChainTree, local: LocalChanges, mine: Map<Inode, { size: number; mtimeNs: bigint; ctimeNs: bigint }>, putByOthers: Set<number>): void {
  for (const [n, m] of mine) {
    if (n.deleted || !putByOthers.has(n.ino)) continue
    // another writer put this inode's metadata: keep theirs, with this node's content facts
    const now = tree.meta(n)
    now.size = m.size
    now.mtimeNs = m.mtimeNs
    if (m.ctimeNs > now.ctimeNs) now.ctimeNs = m.ctimeNs
    // chunks another writer put past this node's end would show again if the file grew
    const keep = Math.ceil(m.size / local.chunkSize)
    let cut = false
    for (const i of [...n.chunks.keys()]) {
      if (i >= keep) {
        n.chunks.delete(i)
        cut = true
      }
    }
    if (cut) local.emit({ type: 'chunksCut', ino: n.ino, from: keep })
  }
  for (const { e, ref } of local.pendingRefs) {
    const n = tree.inodes.get(e.ino)
    if (n && !n.deleted && n.chunks.get(e.index) !== ref) n.chunks.set(e.index, ref)
  }
}

function hasIno(e: ChainEvent): e is ChainEvent & { ino: number } {
  return 'ino' in e
}

/**
 * Forgets the uncommitted content of files that are `gone` (another writer removed them
 * meanwhile, or they were made in a block that never landed: written to such a file, it
 * goes with it): returns the pending events and chunks that stay, and the bytes dropped;
 * `free` gives back the seal slot of a dropped chunk. A chunk still being sealed is kept:
 * its slot is given back with its block.
 */
export function dropChangesOfDeleted(gone: (ino: number) => boolean, local: { pending: ChainEvent[]; pendingRefs: { e: ChunkPutEvent; ref: ChunkRef }[]; readonly dirtyMeta?: Set<Inode> }, free: (e: ChunkPutEvent) => void): { pending: ChainEvent[]; pendingRefs: { e: ChunkPutEvent; ref: ChunkRef }[]; droppedBytes: number } {
  const dropped = new Set<ChainEvent>()
  let droppedBytes = 0
  const pendingRefs = local.pendingRefs.filter(({ e, ref }) => {
    if (!gone(e.ino) || ref.sealing) return true
    free(e)
    droppedBytes += ref.len
    dropped.add(e)
    return false
  })
  const pending = local.pending.filter(e => !dropped.has(e) && !(e.type === 'chunksCut' && gone(e.ino)))
  for (const n of local.dirtyMeta ?? []) if (n.deleted) local.dirtyMeta!.delete(n)
  return { pending, pendingRefs, droppedBytes }
}
