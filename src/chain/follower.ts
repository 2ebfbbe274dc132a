import type { Identity } from '../crypto/identity.ts'
import type { PqPool } from '../crypto/pq-pool.ts'
import { vfsError } from '../vfs/errors.ts'
import { applyAppended, readAppended } from './catch-up.ts'
import type { ChunkWriter } from './chunk-writer.ts'
import type { LogHead } from './log-head.ts'
import type { PendingChanges } from './pending-changes.ts'
import { checkCompaction, contentFacts, keepContent, pathsOf, rebuildFromLog, transplant, type Rebuilt } from './resync.ts'
import type { SharedWriting } from './shared-writing.ts'
import type { ChainTree } from './tree.ts'
import type { TrustRecorder } from './trust-recorder.ts'

/** Told of changes made by other processes or nodes: the inodes touched, and the paths changed (before and after). Both empty: the chain closed. */
export type ExternalChangeListener = (inos: Set<number>, paths: Set<string>) => void

/** The chain a {@link Follower} keeps up to date. */
export interface FollowerOptions {
  /** Where this node stands in the log: catch-ups and rebuilds move it. */
  head: LogHead
  /** The tree the blocks of others are applied to (rebuilds transplant into it). */
  tree: ChainTree
  chunkSize: number
  ownerName: string
  /** Whose keys open a rebuilt tree. */
  identity: Identity
  /** Where the chain lives, for messages. */
  path: string
  /** This node's changes not in the log yet: they stay on top of what is applied. */
  pending: PendingChanges
  /** This node's dirty chunks (their files may go in a rebuild). */
  chunkWriter: ChunkWriter
  /** The write lease, on a chain that several nodes write: then this node's content is kept on top of the others' blocks, and nothing new can be there while it holds the lease. */
  shared: SharedWriting | undefined
  /** Told when a rebuild moves the head. */
  trust: TrustRecorder
  /** The signature workers, taken on first use. */
  pool(): PqPool
  /** True once the chain is closed: nothing more is read. */
  closed(): boolean
}

/** What the chain's commits do for its {@link Follower}. */
export interface FollowerHooks {
  /** True when a block of this node lost its place: the next catch-up rebuilds the tree from the log instead. */
  lostPlace(): boolean
  /** The rebuild after a lost place is done: blocks may be appended again. */
  regained(): void
  /** Settles when every block signed here has been written or has failed. */
  appended(): Promise<void>
  /** Asks for a commit if anything waits (content kept over a rebuild). */
  commitIfWork(): void
}

/**
 * Keeps an open chain up to date with the blocks other processes or nodes append: reads
 * and verifies them, applies them to the tree (keeping this node's uncommitted content on
 * top, where several nodes write: see catch-up.ts), and tells the listeners what changed.
 * When the log cannot be continued (another node compacted the store in place, or a
 * block of this node lost its place) it rebuilds the tree in place from the whole log
 * (resync.ts), keeping that content too.
 */
export class Follower {
  /** True when the last {@link catchUp} saw a block still being written (look again soon). */
  behind = false
  private readonly listeners = new Set<ExternalChangeListener>()
  /** Settles when the last catch-up is done: catch-ups run one at a time. */
  private catching: Promise<unknown> = Promise.resolve()

  /** Follows `o.head`'s log for `o.tree`. */
  constructor(
    private readonly o: FollowerOptions,
    private readonly hooks: FollowerHooks,
  ) {}

  /** Subscribes to changes made by other processes or nodes; returns the unsubscribe. */
  onExternalChange(listener: ExternalChangeListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Tells every listener the chain closed (no inodes, no paths). */
  closing(): void {
    for (const l of this.listeners) l(new Set(), new Set())
  }

  /**
   * Reads blocks appended since the last look (by another process or node) and applies
   * them; returns the inodes they touched. Catch-ups run one at a time. On a chain that
   * several nodes write, this node's uncommitted content stays on top (see catch-up.ts),
   * and while it holds the write lease nothing new can be there.
   */
  catchUp(): Promise<Set<number>> {
    const p = this.catching.then(() => this.catchUpNow())
    this.catching = p.catch(() => {})
    return p
  }

  private async catchUpNow(): Promise<Set<number>> {
    const head = this.o.head
    if (this.o.closed() || this.o.shared?.held) return new Set()
    if (this.hooks.lostPlace()) return this.rebuildAfterLostPlace()
    const found = await readAppended({
      log: head.log,
      end: head.end,
      chainId: this.o.tree.chainId,
      chunkSize: this.o.chunkSize,
      ownerName: this.o.ownerName,
      baseSeq: head.baseSeq,
      headSeq: head.headSeq,
      headHash: head.headHash,
      headFormat: head.headFormat,
      writers: head.writers,
      pool: () => {
        if (this.o.closed()) throw vfsError('EIO', 'the chain is closed')
        return this.o.pool()
      },
    })
    if (found === 'compacted') return this.rebuildCompacted()
    if (!found || this.o.closed()) return new Set()
    // chunks still being sealed land first: a rotation in these blocks seals them again under the new key (catch-up.ts)
    if (this.o.shared) while (this.o.pending.chunks.some(p => p.ref.sealing)) await Promise.all(this.o.pending.chunks.map(p => p.ref.sealing))
    const local = this.o.shared && this.o.pending.local(this.o.chunkSize)
    const paths = new Set<string>()
    const touched = applyAppended(this.o.tree, found.blocks, local, this.listeners.size > 0 ? paths : undefined)
    if (local) this.dropChangesOfDeleted()
    for (const v of found.blocks) head.blockOffsets.push(v.frameOffset)
    const { verifier, scan } = found
    head.moveTo(verifier, scan.end)
    this.behind = scan.tornTail !== undefined
    this.o.pending.landedMaxIno = Math.max(this.o.pending.landedMaxIno, this.o.tree.maxIno)
    if (touched.size > 0) for (const l of this.listeners) l(touched, paths)
    return touched
  }

  /**
   * Rebuilds the tree in place from the rows of a store another node compacted (see
   * resync.ts): the compacted state must be the one this node read; content written here
   * and not committed yet stays on top of it.
   */
  private async rebuildCompacted(): Promise<Set<number>> {
    await this.o.head.log.reindex!()
    const r = await this.readWholeLog()
    checkCompaction({ seq: this.o.head.headSeq, hash: this.o.head.headHash }, this.o.tree, r)
    return this.rebuildFrom(r)
  }

  /**
   * Rebuilds the tree in place from the log after a block of this node lost its place: the
   * namespace changes of the blocks that did not land are undone (their calls failed with
   * EIO), the inodes they made are dropped, and the file content they carried, with what
   * waits for the next block, goes in the next block on top of the log's state.
   */
  private async rebuildAfterLostPlace(): Promise<Set<number>> {
    const head = this.o.head
    await this.hooks.appended()
    // chunks still being sealed land in the kept content or go with their inode, not after the rebuild
    for (const { ref } of this.o.pending.chunks) if (ref.sealing) await ref.sealing
    // compacted in place meanwhile: the rows this node indexed are gone
    await head.log.size()
    if ((head.log.firstSeq ?? -1) > head.baseSeq) await head.log.reindex!()
    const touched = this.rebuildFrom(await this.readWholeLog(), this.o.pending.landedMaxIno)
    this.hooks.regained()
    return touched
  }

  private readWholeLog(): Promise<Rebuilt> {
    return rebuildFromLog(this.o.head.log, { chainId: this.o.tree.chainId, identity: this.o.identity, pool: () => this.o.pool(), padding: this.o.tree.padding, path: this.o.path })
  }

  /** Takes the state of `r` (see resync.ts), keeping this node's uncommitted content; inodes above `renewAbove` are this node's and never landed. */
  private rebuildFrom(r: Rebuilt, renewAbove = Infinity): Set<number> {
    const { tree, pending, head } = this.o
    // content of inodes made in blocks that never landed goes with them (dropped below)
    const unlanded = pending.takeUnlanded(renewAbove)
    const facts = contentFacts(tree, [...pending.dirtyMeta, ...this.o.chunkWriter.dirtyInodes], [...unlanded.map(u => u.e), ...pending.events])
    const gonePaths = pathsOf(tree, new Set([...tree.inodes.keys()].filter(i => i > renewAbove || !r.tree.inodes.has(i))))
    const touched = transplant(tree, r.tree, renewAbove)
    const kept = keepContent(tree, { unlanded, pendingRefs: pending.chunks.filter(p => p.e.ino <= renewAbove), facts })
    // events waiting for the next block (content, grants queued before the lease was taken) go on, but for inodes that go
    pending.keep(kept, renewAbove)
    this.dropChangesOfDeleted(ino => ino > renewAbove)
    this.o.chunkWriter.dropDeleted()
    pending.landedMaxIno = tree.maxIno
    head.blockOffsets.splice(0, head.blockOffsets.length, ...r.offsets)
    head.baseSeq = r.verifier.baseSeq
    head.moveTo(r.verifier, r.scan.end)
    this.o.trust.moved()
    this.hooks.commitIfWork()
    if (touched.size > 0) for (const l of this.listeners) l(touched, new Set([...gonePaths, ...pathsOf(tree, touched)]))
    return touched
  }

  /** Forgets the uncommitted content of files another writer removed meanwhile (written to an unlinked file, it goes with it). */
  private dropChangesOfDeleted(renewed: (ino: number) => boolean = () => false): void {
    const gone = (ino: number) => {
      const n = this.o.tree.inodes.get(ino)
      return !n || n.deleted || renewed(ino)
    }
    this.o.pending.dropDeleted(gone, e => this.o.chunkWriter.free(e))
  }
}
