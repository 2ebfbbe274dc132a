import { vfsError } from '../vfs/errors.ts'
import type { Logger } from '../vfs/log.ts'
import { BodyBuffers } from './body-buffers.ts'
import { MAX_PENDING_BLOCKS, type ChunkWriter } from './chunk-writer.ts'
import type { CommitQueue } from './commit-queue.ts'
import { FORMAT_VERSION, frameHeader, FRAME_HEADER_BYTES, type UnsignedBlock } from './format.ts'
import type { LogHead } from './log-head.ts'
import { ChainConflictError } from './log.ts'
import type { PendingChanges, PendingChunk } from './pending-changes.ts'
import type { SharedWriting } from './shared-writing.ts'
import type { SignedBody } from './signing.ts'
import type { ChainTree } from './tree.ts'
import type { TrustRecorder } from './trust-recorder.ts'

/** What a {@link BlockCommitter} commits, and where. */
export interface BlockCommitterOptions {
  /** Where blocks are appended: the tip each block follows, the head it moves. */
  head: LogHead
  /** The tree whose changed metadata goes into each block. */
  tree: ChainTree
  /** The key id blocks are signed with. */
  author: Uint8Array
  /** What waits for the next block. */
  pending: PendingChanges
  /** Dirty chunks, sealed before a block is built; their seal slots are freed once it is signed. */
  chunkWriter: ChunkWriter
  /** When commits run: a commit starting drops the scheduled one; a block that lost its place schedules the next. */
  commits: CommitQueue
  /** The write lease, on a chain that several nodes write: a commit holds it. */
  shared: SharedWriting | undefined
  /** Told when a block lands. */
  trust: TrustRecorder
  /** How much sealed content makes a block (the body buffers kept fit {@link MAX_PENDING_BLOCKS} of it). */
  blockBytes: number
  /** Encodes, signs (on a worker thread) and hashes a block; `into` is a buffer to encode it into. */
  sign(block: UnsignedBlock, sizeHint: number, into: Buffer | undefined): Promise<SignedBody>
  logger: Logger
  /** Where the chain lives, for messages. */
  path: string
}

/**
 * Turns what waits into signed blocks appended in order: seals the dirty chunks, takes the
 * pending changes, signs one block on the worker (putting the changes back when that
 * fails), and appends it once the block before is written, so the next block is signed
 * while this one is written. A block that fails to land makes the chain read-only
 * ({@link failed}); on a chain several nodes write, one that lost its place to another
 * node instead stops appends until the follower rebuilds ({@link lostPlace}).
 */
export class BlockCommitter {
  /** Settles when the last signed block is written and fdatasync'd (blocks are appended in order). */
  appended: Promise<void> = Promise.resolve()
  /**
   * A block of this node lost its place (its lease died mid-commit and another node appended
   * at its seq): nothing more is appended until the tree is rebuilt from the log, at the next
   * catch-up (see follower.ts), which clears it.
   */
  lostPlace = false
  private failure: Error | undefined
  /** Buffers of blocks already on disk, reused to encode the next blocks. */
  private readonly bodies = new BodyBuffers()

  /** Commits `o.pending` to `o.head`'s log. */
  constructor(private readonly o: BlockCommitterOptions) {}

  /** Why a commit failed, once one did: the chain takes no more changes. */
  get failed(): Error | undefined {
    return this.failure
  }

  /** True when a commit has something to do: changes wait, or a block lost its place (its content waits for the rebuild and the next block). */
  get hasWork(): boolean {
    return this.o.pending.hasChanges || this.o.chunkWriter.dirtyInodes.size > 0 || this.lostPlace
  }

  /** Seals, signs and appends one block (holding the write lease, on a chain several nodes write); calls `signed` once the next commit may start signing. */
  async commit(signed: () => void): Promise<void> {
    const shared = this.o.shared
    if (!shared) return this.commitNow(signed)
    if (this.failure) throw vfsError('EIO', this.failure.message)
    if (!this.hasWork) return this.o.pending.lastLanded
    await shared.enter(true)
    try {
      await this.commitNow(signed)
    } finally {
      shared.leave()
    }
  }

  /** Builds, signs and appends one block of everything waiting, as {@link commit} says. */
  private async commitNow(signed: () => void): Promise<void> {
    if (this.failure) throw vfsError('EIO', this.failure.message)
    // nothing left: a commit asked for while the one before waited for the lease finds its changes taken by that one, and waits for it to land
    if (!this.hasWork) return this.o.pending.lastLanded
    this.o.commits.cancelTimer()
    this.o.chunkWriter.sealAll()
    const taken = this.o.pending.take(this.o.tree)
    const { events, chunks: refs } = taken
    const sizeHint = taken.bytes + events.length * 64
    // chunks still being sealed by the worker are waited for (a rejection never reaches here: it falls back)
    for (const { ref } of refs) if (ref.sealing) await ref.sealing
    const block: UnsignedBlock = {
      formatVersion: FORMAT_VERSION,
      chainId: this.o.tree.chainId,
      seq: this.o.head.tipSeq + 1,
      prevHash: this.o.head.tipHash,
      time: Date.now(),
      author: this.o.author,
      events,
    }
    let body: SignedBody
    try {
      body = await this.o.sign(block, sizeHint, this.bodies.take(sizeHint, MAX_PENDING_BLOCKS * this.o.blockBytes))
    } catch (err) {
      // nothing reached the log: put the changes back so the next commit carries them
      this.o.pending.putBack(taken)
      this.o.logger.error({ err, path: this.o.path }, 'chain block could not be signed; its changes wait for the next commit')
      throw vfsError('EIO', `commit could not be signed: ${(err as Error).message}`)
    }
    this.o.head.tipSeq = block.seq
    this.o.head.tipHash = body.hash
    if (this.o.shared) this.o.pending.signed(block.seq, events, refs, this.o.tree.maxIno)
    // the sealed chunks are in the block now: their seal slots are free again
    this.o.chunkWriter.signed(refs, body.body)
    // blocks reach the log in order; the next block is signed while this one is written
    // (not sooner: at most one signed block waits for the disk)
    const before = this.appended
    const write = before.then(() => {
      if (this.failure) throw this.failure
      // built on a block that did not land: its place is not its own either
      if (this.lostPlace) throw new ChainConflictError(`block ${block.seq} follows a block of this node that lost its place`)
      return this.appendBlock(block, body, refs)
    })
    void write.then(
      () => this.bodies.give(body.body, MAX_PENDING_BLOCKS * this.o.blockBytes),
      () => {},
    )
    this.appended = write.then(
      () => {},
      () => {},
    )
    const landed = write.catch(err => {
      throw err instanceof Error && 'code' in err ? err : vfsError('EIO', `commit failed: ${(err as Error).message}`)
    })
    this.o.pending.landing(landed)
    void before.then(signed)
    try {
      await write
    } catch (err) {
      if (this.o.shared && err instanceof ChainConflictError) {
        // a race lost, not a fault: the node rebuilds from the log and goes on writing
        if (!this.lostPlace) this.o.logger.warn({ err: err.message, path: this.o.path }, 'a block of this node lost its place (another node appended first after its write lease died); its changes fail with EIO, its file content is kept, and the node catches up')
        this.lostPlace = true
        this.o.shared.forfeit()
        // the rebuild and the commit of the kept content come with the next lease, even with no other change
        this.o.commits.schedule()
        throw vfsError('EIO', `commit lost its place to another node: ${err.message}`)
      }
      this.failure ??= err as Error
      this.o.logger.error({ err, path: this.o.path }, 'chain commit failed; the chain is now read-only')
      throw vfsError('EIO', `commit failed: ${(err as Error).message}`)
    }
  }

  /** Writes signed `block` at the log's end (fdatasync'd), and makes it the head: its chunks are read from the log from now on. */
  private async appendBlock(block: UnsignedBlock, { body, hash, crc }: SignedBody, refs: PendingChunk[]): Promise<void> {
    const head = frameHeader(body, crc)
    const h = this.o.head
    const at = h.end
    const bodyPos = at + FRAME_HEADER_BYTES
    for (const { e, ref } of refs) ref.pos = bodyPos + e.bodyOffset!
    h.end += FRAME_HEADER_BYTES + body.length
    await h.log.append(head, body, at, block.seq)
    this.o.pending.landed(block.seq)
    for (const { ref } of refs) ref.sealed = undefined
    h.landed(block.seq, hash, block.formatVersion, at)
    this.o.trust.moved()
  }
}
