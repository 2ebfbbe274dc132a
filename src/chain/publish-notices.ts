import type { Logger } from '../vfs/log.ts'

/** Publications warned about one by one in a burst, before the rest are only counted. */
const WARN_EACH = 3
/** How long a burst lasts from its first publication, in ms. */
const BURST_MS = 5_000

/**
 * The warnings that `chmod o+r` published a path of a chain to everyone holding its log.
 * Each deliberate chmod gets one, with its path. A burst (`tar x` as root restores 0644
 * on every file it makes) is named for its first {@link WARN_EACH} paths, then summed up
 * in one warning when it ends, instead of one line per file.
 */
export class PublishNotices {
  private warned = 0
  private more = 0
  private window: NodeJS.Timeout | undefined

  constructor(
    private readonly logger: Logger,
    private readonly chainPath: string,
    private readonly options: { each?: number; burstMs?: number } = {},
  ) {}

  /** Notes that `folder` was published to everyone. */
  published(folder: string): void {
    if (this.warned < (this.options.each ?? WARN_EACH)) {
      this.warned++
      this.logger.warn({ path: this.chainPath, folder }, `${folder}: published to everyone holding the chain's log (chmod o+r): its names, content and everything made in it later can be read without any identity`)
    } else this.more++
    this.window ??= setTimeout(() => this.endBurst(), this.options.burstMs ?? BURST_MS).unref()
  }

  /** Sums up the burst's unnamed publications, if any, and starts afresh. */
  endBurst(): void {
    if (this.window) clearTimeout(this.window)
    this.window = undefined
    if (this.more > 0) this.logger.warn({ path: this.chainPath, count: this.more }, `${this.more} more paths published to everyone holding the chain's log (chmod o+r), besides the ${this.warned} named above`)
    this.warned = 0
    this.more = 0
  }
}
