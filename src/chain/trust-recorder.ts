import type { Logger } from '../vfs/log.ts'
import { writeTrust } from './trust.ts'

/** How long after a block lands its head is recorded: the blocks landing meanwhile go with it. */
const RECORD_DELAY_MS = 1000

/** What a {@link TrustRecorder} records, and where. */
export interface TrustRecorderOptions {
  /** The FacetFS home whose trust store is written. */
  home: string
  chainId: Uint8Array
  /** The head to record, as it is when the record is written. */
  head(): { seq: number; hash: Buffer }
  /** False when nothing is recorded (`ChainOptions.trust: false`). */
  enabled: boolean
  /** Where a delayed record that failed is told. */
  logger: Logger
}

/**
 * Keeps the trust store's record of an open chain's head (trust.ts) up to date, so a later
 * open refuses a log rolled back behind it: a head that moved is recorded within
 * {@link RECORD_DELAY_MS} (one write for the blocks of that time), or at once on
 * {@link record} and {@link flush}. A head that did not move since is not written again.
 */
export class TrustRecorder {
  /** The head moved since it was last recorded. */
  private unrecorded = false
  private timer: NodeJS.Timeout | undefined

  /** Records for `o.chainId` in `o.home`. */
  constructor(private readonly o: TrustRecorderOptions) {}

  /** The head moved (a block landed, a rebuild): records it within a second. */
  moved(): void {
    this.unrecorded = true
    if (this.timer || !this.o.enabled) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.flush().catch(err => this.o.logger.warn({ err }, 'could not update the chain trust store'))
    }, RECORD_DELAY_MS)
    this.timer.unref?.()
  }

  /** Records the head now, moved or not (an open, a compaction). */
  record(): Promise<void> {
    this.unrecorded = true
    return this.flush()
  }

  /** Records the head now if it moved since the last record. */
  async flush(): Promise<void> {
    if (!this.unrecorded || !this.o.enabled) return
    this.unrecorded = false
    const { seq, hash } = this.o.head()
    await writeTrust(this.o.home, this.o.chainId, { seq, hash: hash.toString('hex') })
  }

  /** Drops the delayed record (at close, which flushes itself). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }
}
