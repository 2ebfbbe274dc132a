import { vfsError } from '../vfs/errors.ts'
import type { Logger } from '../vfs/log.ts'

/**
 * The right to append to a chain that several nodes write (the PostgreSQL backend with
 * `sharedWriters`): one node holds it at a time, and keeps it until another asks.
 */
export interface WriteLease {
  /** Takes the lease, asking the node holding it to hand it over; rejects when that takes too long. */
  acquire(): Promise<void>
  /** Gives the lease back. */
  release(): Promise<void>
  /** Calls `fn` whenever another node asks for the lease. */
  onWanted(fn: () => void): void
  /** Calls `fn` when the lease was lost without a release (its session died; the server freed it). */
  onLost?(fn: () => void): void
  /** Gives the lease back if held and stops listening. */
  close(): Promise<void>
}

/** What the chain does for its {@link SharedWriting}. */
export interface SharedWritingHooks {
  /** Reads and applies the blocks other nodes appended, keeping this node's unsaved content. */
  catchUp(): Promise<unknown>
}

/** How long a node that nobody asks keeps the lease after its last change. @default 2 s */
const IDLE_RELEASE_MS = 2000

/**
 * The lease protocol of one node of a chain that several nodes write. A change of the
 * namespace runs between {@link enter} and {@link leave}: on a node that does not hold the
 * lease, enter takes it (waiting for the holder to hand it over) and then reads what the
 * others appended, so the change is checked against the newest state and appended on top;
 * a commit holds the lease the same way. The holder keeps the lease while it works and
 * gives it back once idle when another node asks for it (NOTIFY), or after
 * {@link IDLE_RELEASE_MS} idle: a lone writer pays no round trip for it.
 */
export class SharedWriting {
  private state: 'free' | 'acquiring' | 'held' | 'releasing' = 'free'
  private active = 0
  private wanted = false
  /** The lease's session died while held: it is free on the server, and taken again by the next change. */
  private lost = false
  /** Just taken and no change done with it yet: it is not handed over before the changes that waited for it ran (else nodes asking each other pass it round with no change done). */
  private fresh = false
  /** Settles when the state leaves `acquiring` or `releasing`. */
  private transition: Promise<void> = Promise.resolve()
  private idle: NodeJS.Timeout | undefined
  private closed = false
  /** Callers waiting for the state to change (a handover to end). */
  private waiting: (() => void)[] = []

  constructor(
    private readonly lease: WriteLease,
    private readonly hooks: SharedWritingHooks,
    private readonly logger: Logger,
    private readonly idleMs = IDLE_RELEASE_MS,
  ) {
    lease.onWanted(() => {
      if (this.state !== 'held' && this.state !== 'acquiring') return
      this.wanted = true
      this.check()
    })
    lease.onLost?.(() => {
      if (this.state !== 'held') return
      this.lost = true
      this.logger.warn({}, "lost the chain's write lease (its PostgreSQL session died); the next change takes it again and catches up")
      this.check()
    })
  }

  /** True while this node holds the lease: nothing another node appends can appear meanwhile. */
  get held(): boolean {
    return this.state === 'held'
  }

  /**
   * Holds the lease for one change. `inside` is for a commit made while holding it (the
   * change that waits for it): it never waits behind a handover it would block.
   */
  async enter(inside = false): Promise<void> {
    for (;;) {
      if (this.closed) throw vfsError('EIO', 'the chain is closed')
      if (this.state === 'held' && ((!this.wanted && !this.lost) || (this.fresh && !this.lost) || (inside && this.active > 0))) {
        this.active++
        if (this.idle) clearTimeout(this.idle)
        this.idle = undefined
        return
      }
      if (this.state === 'free') {
        this.state = 'acquiring'
        this.transition = this.take()
        // the first to ask takes it; every caller loops and finds it held (or free again on failure)
        await this.transition
        continue
      }
      // being taken or given back, or held but wanted: wait for the handover, then queue for it again
      await new Promise<void>(r => this.waiting.push(r))
    }
  }

  /**
   * The lease no longer kept this node's appends in turn (a block of it lost its place):
   * it is given back once the changes holding it end, and the next change takes it again,
   * catching up first.
   */
  forfeit(): void {
    if (this.state !== 'held') return
    this.wanted = true
    this.fresh = false
    this.check()
  }

  /** Ends a change begun with {@link enter}. */
  leave(): void {
    this.active--
    this.fresh = false
    this.check()
  }

  /** Moves to `state` and wakes the callers waiting for a change. */
  private become(state: SharedWriting['state']): void {
    this.state = state
    const w = this.waiting
    this.waiting = []
    for (const r of w) r()
  }

  private async take(): Promise<void> {
    try {
      await this.lease.acquire()
    } catch (err) {
      this.become('free')
      throw vfsError('EIO', `could not take the chain's write lease: ${(err as Error).message}`)
    }
    try {
      await this.hooks.catchUp()
    } catch (err) {
      await this.giveBack()
      throw vfsError('EIO', `could not read the blocks other writers appended: ${(err as Error).message}`)
    }
    this.fresh = true
    this.become('held')
    this.check()
  }

  private check(): void {
    if (this.state !== 'held' || this.active > 0) return
    if (this.lost) {
      this.lost = false
      this.wanted = false
      if (this.idle) clearTimeout(this.idle)
      this.idle = undefined
      this.become('free')
      return
    }
    if ((this.wanted && !this.fresh) || this.closed) {
      this.transition = this.giveBack()
      return
    }
    if (!this.idle) {
      this.idle = setTimeout(() => {
        this.idle = undefined
        if (this.state === 'held' && this.active === 0) this.transition = this.giveBack()
      }, this.idleMs)
      this.idle.unref?.()
    }
  }

  private async giveBack(): Promise<void> {
    if (this.idle) clearTimeout(this.idle)
    this.idle = undefined
    this.fresh = false
    this.become('releasing')
    try {
      await this.lease.release()
    } catch (err) {
      // a lease whose session is gone is free on the server already
      this.logger.warn({ err: (err as Error).message }, 'could not give back the chain write lease cleanly')
    }
    this.wanted = false
    this.become('free')
  }

  /** Gives the lease back once the changes holding it are done, and stops. */
  async close(): Promise<void> {
    this.closed = true
    if (this.idle) clearTimeout(this.idle)
    this.idle = undefined
    await this.transition.catch(() => {})
    if (this.state === 'held') await this.giveBack()
    await this.lease.close()
    this.become('free')
  }
}
