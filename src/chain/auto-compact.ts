import type { Logger } from '../vfs/log.ts'
import { compactChain, type CompactReport } from './compact.ts'
import type { Chain } from './store.ts'

/** When a mounted chain compacts itself (see {@link AutoCompactor}). */
export interface CompactionPolicy {
  /** Compact once the log holds more than this many bytes per byte of live state. @default 1.5 */
  garbageRatio?: number
  /** Never compact a log smaller than this, in bytes. @default 64 MiB */
  minBytes?: number
  /** How often the log's size is looked at, in ms; live state is only summed once the log has grown past the last look's mark. @default 5000 */
  intervalMs?: number
}

const DEFAULTS = { garbageRatio: 1.5, minBytes: 64 * 1024 * 1024, intervalMs: 5000 } as const

/**
 * The bytes a compaction of `chain` would keep: the sealed metadata, extended attributes
 * and extra names of every live inode and the chunks of content they still name. Frame
 * and block overheads are left out, so a freshly compacted log is a little larger.
 */
export function liveBytes(chain: Chain): number {
  let bytes = 0
  for (const n of chain.tree.inodes.values()) {
    if (!n.sealedMeta || n.deleted) continue
    bytes += n.sealedMeta.length + (n.sealedXattrs?.length ?? 0)
    for (const ref of n.chunks.values()) if (ref.pos >= 0) bytes += ref.len
  }
  for (const link of chain.tree.links.values()) bytes += link.sealed.length
  return bytes
}

/** Why a chain never compacts itself, or undefined when it may. */
export function cannotAutoCompact(chain: Chain): string | undefined {
  if (chain.readOnly) return 'the chain is open read-only'
  if (chain.backend.kind !== 'file' && !chain.fileHandle.compactInPlace) return `compaction rewrites a log file or a store compacted in place; ${chain.path} is neither`
  const owner = [...chain.writers.values()].find(w => w.owner)
  if (!owner || !Buffer.from(owner.keyId).equals(Buffer.from(chain.identity.keyId))) return 'only the chain owner may compact it'
  return undefined
}

/**
 * Keeps a mounted chain's log near the size of its live state: when the log is past
 * `minBytes` and more than `garbageRatio` times the live bytes, it is compacted online
 * ({@link compactChain}: writes pause for the rewrite, reads go on, the trust store and
 * followers follow the new log). Compaction starts a new log at the current head, so
 * `/.history` and `facet verify` reach back to the last compaction, not to the genesis.
 *
 * Summing the live state walks every inode, so it is done only when the log has grown by
 * a quarter since the last sum: the cost stays a small fraction of the writing.
 */
export class AutoCompactor {
  private readonly ratio: number
  private readonly minBytes: number
  private readonly intervalMs: number
  /** The log size at which the live state is summed again. */
  private mark = 0
  private timer: NodeJS.Timeout | undefined
  private running: Promise<CompactReport | undefined> | undefined
  private stopped = false

  constructor(
    private readonly chain: Chain,
    policy: CompactionPolicy,
    private readonly logger: Logger,
  ) {
    this.ratio = policy.garbageRatio ?? DEFAULTS.garbageRatio
    this.minBytes = policy.minBytes ?? DEFAULTS.minBytes
    this.intervalMs = policy.intervalMs ?? DEFAULTS.intervalMs
    if (!(this.ratio >= 1)) throw new RangeError(`garbageRatio must be at least 1, got ${policy.garbageRatio}`)
    if (!(this.minBytes >= 0)) throw new RangeError(`minBytes must be a byte count >= 0, got ${policy.minBytes}`)
  }

  /** Looks at the log every `intervalMs` until {@link stop}. */
  start(): void {
    if (this.timer || this.stopped) return
    this.timer = setInterval(() => void this.check().catch(() => {}), this.intervalMs)
    this.timer.unref()
  }

  /**
   * Compacts now if the policy says so; resolves with what the compaction did, or
   * undefined when it was not due. A failed compaction is logged and leaves the old log
   * in use (it is swapped in only once whole). Concurrent calls share one run.
   */
  check(): Promise<CompactReport | undefined> {
    this.running ??= this.run().finally(() => (this.running = undefined))
    return this.running
  }

  private async run(): Promise<CompactReport | undefined> {
    const chain = this.chain
    const log = chain.logBytes
    if (this.stopped || log < Math.max(this.minBytes, this.mark) || cannotAutoCompact(chain)) return undefined
    const live = liveBytes(chain)
    if (log <= this.ratio * live) {
      this.mark = Math.ceil(log * 1.25)
      return undefined
    }
    const started = Date.now()
    try {
      const report = await compactChain(chain)
      this.mark = Math.ceil(report.afterBytes * 1.25)
      this.logger.info({ path: chain.path, beforeBytes: report.beforeBytes, afterBytes: report.afterBytes, ms: Date.now() - started }, `chain ${chain.path}: compacted ${report.beforeBytes} -> ${report.afterBytes} bytes (live ${live})`)
      return report
    } catch (err) {
      this.mark = Math.ceil(log * 1.25)
      this.logger.warn({ err, path: chain.path }, `chain ${chain.path}: automatic compaction failed; the log is kept as it was`)
      return undefined
    }
  }

  /** Stops looking and waits for a compaction under way. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }
}
