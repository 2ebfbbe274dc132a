import { dropChangesOfDeleted, type LocalChanges } from './catch-up.ts'
import type { ChainEvent, ChunkPutEvent } from './format.ts'
import { contentEvents, type ContentEvent, type ContentToKeep } from './resync.ts'
import type { ChainTree, ChunkRef, Inode } from './tree.ts'

/** A sealed chunk waiting for its block, with the place it takes in its inode. */
export interface PendingChunk {
  e: ChunkPutEvent
  ref: ChunkRef
}

/** What one commit took from {@link PendingChanges} (see {@link PendingChanges.take}). */
export interface TakenChanges {
  /** The events of the block: the metadata of every changed inode still named, then the queued events. */
  readonly events: ChainEvent[]
  /** The inodes whose metadata was taken. */
  readonly metaInodes: Inode[]
  /** The queued events alone, as they were queued. */
  readonly queued: ChainEvent[]
  /** The sealed chunks the block carries. */
  readonly chunks: PendingChunk[]
  /** Their sealed bytes. */
  readonly bytes: number
}

/** A block signed here and not yet landed: its content events, and the highest inode number in use when it was built. */
interface UnlandedBlock {
  content: ContentEvent[]
  maxIno: number
}

/**
 * The changes of one writer that are not in the log yet: those waiting for the next block
 * (inodes whose metadata changed, queued events, sealed chunks and their bytes), and on a
 * chain that several nodes write the content of the blocks signed and not landed (kept to
 * put back if one loses its place: see resync.ts). Only bookkeeping: the chain decides
 * when to commit, and puts the events in blocks.
 */
export class PendingChanges {
  /** Inodes whose metadata changed since the last block. */
  readonly dirtyMeta = new Set<Inode>()
  /** Events for the next block, in order (the chunk puts of {@link chunks} among them). */
  events: ChainEvent[] = []
  /** The sealed chunks the next block carries (their events are in {@link events}). */
  chunks: PendingChunk[] = []
  /** The sealed bytes of {@link chunks}. */
  bytes = 0
  /** The highest inode number in the log as this node last knew it whole (its own landed blocks, others' caught up): inodes above it that this node holds were made in blocks not landed yet. */
  landedMaxIno: number
  private readonly unlanded = new Map<number, UnlandedBlock>()
  private newestLanding: Promise<void> = Promise.resolve()

  /** Starts with nothing pending, on a log whose highest inode number is `landedMaxIno`. */
  constructor(landedMaxIno: number) {
    this.landedMaxIno = landedMaxIno
  }

  /** True when something waits for the next block (metadata or events; dirty chunks not sealed yet are the chunk writer's). */
  get hasChanges(): boolean {
    return this.dirtyMeta.size > 0 || this.events.length > 0
  }

  /** Queues a sealed chunk (its event and its place) for the next block. */
  addChunk(e: ChunkPutEvent, ref: ChunkRef): void {
    this.events.push(e)
    this.chunks.push({ e, ref })
    this.bytes += ref.len
  }

  /**
   * Takes everything waiting, for one block: the metadata events of the changed inodes
   * still named (from `tree`), then the queued events. Leaves nothing pending; changes
   * made after go to the next block.
   */
  take(tree: ChainTree): TakenChanges {
    const events: ChainEvent[] = []
    for (const n of this.dirtyMeta) {
      if (!n.deleted) events.push(...tree.putMeta(n))
    }
    const metaInodes = [...this.dirtyMeta]
    this.dirtyMeta.clear()
    for (const e of this.events) events.push(e)
    const taken: TakenChanges = { events, metaInodes, queued: this.events, chunks: this.chunks, bytes: this.bytes }
    this.events = []
    this.chunks = []
    this.bytes = 0
    return taken
  }

  /** Puts back what a commit took and could not sign, ahead of what was queued since, so the next block carries it. */
  putBack(taken: TakenChanges): void {
    for (const n of taken.metaInodes) if (!n.deleted) this.dirtyMeta.add(n)
    this.events = [...taken.queued, ...this.events]
    this.chunks = [...taken.chunks, ...this.chunks]
    this.bytes += taken.bytes
  }

  /** The changes as catch-up keeps them on top of other writers' blocks (see catch-up.ts). */
  local(chunkSize: number): LocalChanges {
    return { dirtyMeta: this.dirtyMeta, pendingRefs: this.chunks, chunkSize, emit: e => void this.events.push(e) }
  }

  /**
   * Forgets the pending content of the inodes that are `gone` (see catch-up.ts's
   * dropChangesOfDeleted); `free` gives back the seal slot of a dropped chunk.
   */
  dropDeleted(gone: (ino: number) => boolean, free: (e: ChunkPutEvent) => void): void {
    const kept = dropChangesOfDeleted(gone, { pending: this.events, pendingRefs: this.chunks, dirtyMeta: this.dirtyMeta }, free)
    this.events = kept.pending
    this.chunks = kept.pendingRefs
    this.bytes -= kept.droppedBytes
  }

  /**
   * Takes, after a rebuild, the content resync.ts's keepContent kept: its events and chunks
   * go ahead of those waiting (but the queued events of inodes above `renewAbove`, which
   * go), and its inodes are the ones whose metadata is put next.
   */
  keep(kept: { events: ChainEvent[]; refs: PendingChunk[]; meta: Inode[] }, renewAbove: number): void {
    this.events = [...kept.events, ...this.events.filter(e => !('ino' in e) || e.ino <= renewAbove)]
    this.chunks = [...kept.refs, ...this.chunks]
    for (const { ref } of kept.refs) this.bytes += ref.len
    this.dirtyMeta.clear()
    for (const n of kept.meta) this.dirtyMeta.add(n)
  }

  /** Keeps the content events of block `seq`, signed from `events` and `chunks` when the highest inode number was `maxIno`, until it lands. */
  signed(seq: number, events: ChainEvent[], chunks: PendingChunk[], maxIno: number): void {
    this.unlanded.set(seq, { content: contentEvents(events, chunks), maxIno })
  }

  /** Block `seq` is in the log: its inodes count as landed, and its content need not be kept. */
  landed(seq: number): void {
    const block = this.unlanded.get(seq)
    if (block) this.landedMaxIno = Math.max(this.landedMaxIno, block.maxIno)
    this.unlanded.delete(seq)
  }

  /**
   * Takes the content events of every block signed and not landed, oldest first, but
   * those of inodes above `renewAbove` (made in such blocks, they go with them), and
   * forgets those blocks.
   */
  takeUnlanded(renewAbove: number): ContentToKeep['unlanded'] {
    const content = [...this.unlanded.values()].flatMap(u => u.content).filter(u => u.e.ino <= renewAbove)
    this.unlanded.clear()
    return content
  }

  /** Settles when the newest block signed here has landed (rejects, EIO, when it did not); resolved once it has settled. */
  get lastLanded(): Promise<void> {
    return this.newestLanding
  }

  /** Makes `landing` (the landing of a block just signed) {@link lastLanded}, until it settles. */
  landing(landing: Promise<void>): void {
    this.newestLanding = landing
    // once settled, later commits with nothing to do have nothing to wait for: a failure is told to the calls of its own block
    landing.then(
      () => this.forgetLanding(landing),
      () => this.forgetLanding(landing),
    )
  }

  private forgetLanding(landing: Promise<void>): void {
    if (this.newestLanding === landing) this.newestLanding = Promise.resolve()
  }
}
