import type { ChainLog } from './backend.ts'
import type { BlockVerifier, ChainWriter } from './log.ts'

/**
 * Where this node's copy of a chain stands in its log: the open log, where the blocks it
 * has applied end, the last of them (seq, hash, format), the writers as they leave them,
 * and their frame offsets; and the tip, the last block signed here, which the next block
 * follows (ahead of the head while a block is written). The commits and the catch-ups of
 * the chain move it; it checks nothing itself.
 */
export class LogHead {
  /** The open log (compaction swaps it). */
  log: ChainLog
  /** Where the blocks this node has applied end, in bytes: the next block is appended there. */
  end: number
  /** The seq of the first block the log holds (above 0 once compacted). */
  baseSeq: number
  headSeq: number
  headHash: Buffer
  /** The format version of the last block. */
  headFormat: number
  /** Who may append, as the last block leaves it. */
  writers: Map<string, ChainWriter>
  /** Frame offsets of the blocks of this log, by seq − baseSeq. */
  readonly blockOffsets: number[] = []
  /** Seq and hash of the last signed block, the parent of the next one (ahead of `headSeq` while a block is written). */
  tipSeq: number
  tipHash: Buffer

  /** Stands where `verifier` ended reading `log` up to `end`. */
  constructor(log: ChainLog, verifier: BlockVerifier, end: number) {
    this.log = log
    this.end = end
    this.headSeq = this.tipSeq = verifier.headSeq
    this.headHash = this.tipHash = verifier.headHash
    this.baseSeq = verifier.baseSeq
    this.writers = verifier.writers
    this.headFormat = verifier.formatVersion
  }

  /** Moves to where `verifier` ended reading the log up to `end` (blocks others appended, or the whole log rebuilt): head and tip, format and writers. */
  moveTo(verifier: BlockVerifier, end: number): void {
    this.end = end
    this.headSeq = this.tipSeq = verifier.headSeq
    this.headHash = this.tipHash = verifier.headHash
    this.headFormat = verifier.formatVersion
    this.writers = verifier.writers
  }

  /** Block `seq` (of format `format`, hash `hash`), signed here, is in the log at frame offset `at`: it is the head. */
  landed(seq: number, hash: Buffer, format: number, at: number): void {
    this.headSeq = seq
    this.headHash = hash
    this.headFormat = format
    this.blockOffsets.push(at)
  }
}
