import type { Logger } from '../vfs/log.ts'

/** What a {@link CommitQueue} runs, and how often. */
export interface CommitQueueOptions {
  /**
   * Builds, signs and appends one block of everything waiting; calls `signed` once its
   * block is signed (the next commit may then start signing while this one is written).
   */
  commit(signed: () => void): Promise<void>
  /** How long changes gather after the first before a commit of its own starts. */
  delayMs: number
  /** Where a background commit that failed is told. */
  logger: Logger
  /** Where the chain lives, for messages. */
  path: string
}

const noop = () => {}

/**
 * Group commit: when commits run, one at a time in order. Changes gather for
 * `delayMs` (or until someone asks: sync, a full block); a commit asked for while
 * another is being signed waits for that signature and then takes everything gathered
 * meanwhile, so every caller that made a change in that time waits for the same block:
 * a stream makes few large blocks instead of many small ones. What a commit does is
 * the chain's ({@link CommitQueueOptions.commit}).
 */
export class CommitQueue {
  private timer: NodeJS.Timeout | undefined
  /** Settles (never rejects) once every commit asked for so far is done. */
  private running: Promise<void> = Promise.resolve()
  /** Opens when the commit before has its block signed: the next one may then start signing while it is written. */
  private gate: Promise<void> = Promise.resolve()
  /** The commit asked for and not started yet (waiting at the gate): changes made now go into it. */
  private next: Promise<void> | undefined
  /** The commit started and not done. */
  private inflight: Promise<void> | undefined
  private closed = false

  /** Runs `o.commit` when asked or scheduled. */
  constructor(private readonly o: CommitQueueOptions) {}

  /**
   * Asks for a commit within `delayMs`, unless one is asked for already; while a commit
   * runs it waits for that one to end, so changes keep gathering. A failure of such a
   * background commit is logged: its changes wait for the next one, whose caller is told.
   */
  schedule(): void {
    if (this.timer || this.closed) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      // while a block is being signed or written, changes keep gathering (up to `blockBytes`):
      // one signature per block, so a stream makes few large blocks instead of many small ones
      if (this.inflight || this.next) return this.schedule()
      this.request().catch(err => this.o.logger.warn({ err, path: this.o.path }, 'a background commit did not land; its changes wait for the next one (a close or fsync reports it)'))
    }, this.o.delayMs)
    this.timer.unref?.()
  }

  /** Asks for a commit now: the one waiting to start, or a new one that starts once the commit before is signed. Settles when it is done. */
  request(): Promise<void> {
    if (!this.next) {
      let release!: () => void
      const signed = new Promise<void>(r => (release = r))
      const p: Promise<void> = this.gate.then(() => {
        this.next = undefined
        this.inflight = p
        return this.o.commit(release)
      })
      const done = () => {
        release()
        if (this.inflight === p) this.inflight = undefined
      }
      this.gate = signed
      this.next = p
      this.running = p.then(done, done)
    }
    return this.next
  }

  /** True while a commit is asked for and has not started: changes made now go into it. */
  get queued(): boolean {
    return this.next !== undefined
  }

  /** The commit running now (it may reject), else a promise that settles once the last one is done. */
  get current(): Promise<void> {
    return this.inflight ?? this.running
  }

  /** Settles (never rejects) once every commit asked for so far is done. */
  get settled(): Promise<void> {
    return this.running
  }

  /** Drops the scheduled commit: a commit is starting now and takes its changes. */
  cancelTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
  }

  /** Runs `fn` once every commit asked for so far is done; commits asked for meanwhile start after it. */
  between<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.running.then(fn)
    this.running = this.gate = p.then(noop, noop)
    return p
  }

  /** Schedules no more commits (a commit asked for still runs: see {@link settled}). */
  close(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
  }
}
