import type { Identity } from '../crypto/identity.ts'
import type { Logger } from '../vfs/log.ts'
import type { TornTail } from './log.ts'
import type { ChainPin } from './trust.ts'

/** Options for opening or creating a chain. */
export interface ChainOptions {
  /** The unlocked identity that reads (and, as owner or authorised writer, writes) the chain. */
  identity: Identity
  /** The FacetFS home, for the trust store. @default facetHome() */
  home?: string
  /** Open without the writer lock; every change fails with `EROFS`. @default false */
  readOnly?: boolean
  /** Accept a log older than, or diverging from, the trusted head, or whose last block was damaged after it was seen (cut, and trusted from now on), or one this identity wrote to but the trust store lost. Never a chain other than the one pinned for its location: that takes `facet trust accept`. @default false */
  allowRollback?: boolean
  /** Check and update the trust store. @default true */
  trust?: boolean
  /** Pad what this chain writes to size classes (the last chunk of a file, metadata, links, extended attributes; FORMAT.md, Padding), so sealed lengths show classes, not sizes. Off only to measure its cost. @default true */
  padding?: boolean
  /** Go on from the identity's signed checkpoint of a log file when it holds (checkpoint.ts), and write one when enough blocks lie past it; off, every open replays the whole log. @default true */
  checkpoints?: boolean
  /** Where warnings go: a cut torn tail, a first-use pin, an accepted rollback. @default silentLogger */
  logger?: Logger
  /** How long changes wait for more before a block is committed, in milliseconds. @default 20 */
  commitDelayMs?: number
  /** A block is committed once this many content bytes are sealed. @default 8 MiB */
  blockBytes?: number
  /** Bytes of decrypted chunks kept in the cache: one slab of shared memory, least recently used chunks evicted first, pages touched only as chunks are read. @default 64 MiB */
  cacheBytes?: number
}

/** Options for {@link Chain.create}. */
export interface CreateChainOptions extends ChainOptions {
  /** Content chunk size in bytes. @default 131072 */
  chunkSize?: number
}

/** What opening a chain found. */
export interface OpenReport {
  blocks: number
  events: number
  /** Sequence number of the last block. */
  headSeq: number
  /** Present when a torn tail was found (and, unless read-only, cut). */
  tornTail?: TornTail | undefined
  /** Set when a rollback or fork was accepted because `allowRollback` was given. */
  rollbackAccepted?: string | undefined
  /** Set when this open pinned the chain's location in the trust store (its first use here). */
  pinned?: ChainPin | undefined
  /** Blocks after a fresh genesis signed by the identity that opened it. */
  ownBlocks: number
  /** Set when the open went on from the identity's checkpoint (checkpoint.ts) at block `seq` (its log then `end` bytes long), verifying only the `tailBlocks` after it. */
  checkpoint?: { seq: number; end: number; tailBlocks: number } | undefined
  /** Set when this open (or the chain's close) wrote a checkpoint, at block `seq`. */
  checkpointWritten?: { seq: number; end: number } | undefined
}

/** Thrown when the identity has no key grant for the chain. */
export class NoAccessError extends Error {
  override readonly name = 'NoAccessError'
}
