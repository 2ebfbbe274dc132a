import { Worker } from 'node:worker_threads'

interface Job {
  resolve(answer: Answer): void
  reject(err: Error): void
}

interface Thread {
  worker: Worker
  jobs: Map<number, Job>
}

/** What a worker posts back for a job: its id, and an `error` message when the job failed. */
export interface Answer {
  id: number
  error?: string
  [field: string]: unknown
}

/** Options for {@link WorkerThreads}. */
export interface WorkerThreadsOptions {
  /** The worker script. */
  url: URL
  /** What the threads do, for messages: `ML-DSA`, `chunk cipher`. */
  name: string
  /** How many threads at most. */
  size: number
  /** Makes the error a job fails with, from the worker's `error` message or why the thread died. */
  failure(message: string): Error
  /** Called with each new thread before its first job (to post it state every thread needs). */
  onSpawn?(worker: Worker): void
}

/**
 * A copy of `b` when it is a view into a bigger buffer: posting a view copies its whole
 * buffer (a block, a read window, or the 8 KiB pool a small `Buffer.allocUnsafe` comes
 * from: a chunk's 58-byte AAD made each seal message cost 130 µs instead of 5).
 */
export function own(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b)
}

/**
 * A few worker threads running jobs posted as messages, each answered by `{ id, … }`.
 *
 * Threads start on demand: a message goes to an idle thread, or starts one while fewer than
 * `size` run, else to the least busy. Idle threads do not keep the process alive. A thread
 * that dies fails its jobs and is replaced on the next message.
 */
export class WorkerThreads {
  private readonly threads: Thread[] = []
  private nextId = 1
  private closed = false

  constructor(private readonly options: WorkerThreadsOptions) {}

  /** Posts one message carrying `count` jobs (their ids given to `message`); one promise per job. */
  post(count: number, message: (ids: number[]) => Record<string, unknown>): Promise<Answer>[] {
    if (this.closed) return Array.from({ length: count }, () => Promise.reject(this.options.failure(`the ${this.options.name} worker threads are closed`)))
    return this.postTo(this.pick(), count, message)
  }

  /** Posts a message with one job to every thread (starting them all first); one promise per thread. */
  postEach(message: (id: number) => Record<string, unknown>): Promise<Answer>[] {
    this.warm()
    return this.threads.map(t => this.postTo(t, 1, ids => message(ids[0]!))[0]!)
  }

  /** Posts a message that needs no answer to every running thread. */
  broadcast(message: Record<string, unknown>): void {
    for (const t of this.threads) t.worker.postMessage(message)
  }

  /** Starts threads now (up to `count`), so the first jobs need not wait for them to load. */
  warm(count = this.options.size): void {
    if (this.closed) return
    while (this.threads.length < Math.min(count, this.options.size)) this.spawn()
  }

  /** How many jobs are waiting for an answer. */
  get busy(): number {
    let n = 0
    for (const t of this.threads) n += t.jobs.size
    return n
  }

  /** Terminates every thread; waiting jobs fail. */
  async close(): Promise<void> {
    this.closed = true
    await Promise.all(this.threads.map(t => t.worker.terminate()))
  }

  private postTo(t: Thread, count: number, message: (ids: number[]) => Record<string, unknown>): Promise<Answer>[] {
    const ids = Array.from({ length: count }, () => this.nextId++)
    const out = ids.map(id => new Promise<Answer>((resolve, reject) => t.jobs.set(id, { resolve, reject })))
    if (t.jobs.size === count) t.worker.ref()
    t.worker.postMessage(message(ids))
    return out
  }

  private pick(): Thread {
    let best: Thread | undefined
    for (const t of this.threads) if (!best || t.jobs.size < best.jobs.size) best = t
    if (best && (best.jobs.size === 0 || this.threads.length >= this.options.size)) return best
    return this.spawn()
  }

  private spawn(): Thread {
    const worker = new Worker(this.options.url)
    worker.unref()
    const t: Thread = { worker, jobs: new Map() }
    this.threads.push(t)
    this.options.onSpawn?.(worker)
    const fail = (err: Error) => {
      const i = this.threads.indexOf(t)
      if (i >= 0) this.threads.splice(i, 1)
      for (const j of t.jobs.values()) j.reject(err)
      t.jobs.clear()
    }
    const settle = (m: Answer) => {
      const j = t.jobs.get(m.id)
      if (!j) return
      t.jobs.delete(m.id)
      if (t.jobs.size === 0) worker.unref()
      if (m.error !== undefined) j.reject(this.options.failure(m.error))
      else j.resolve(m)
    }
    // one job's answer, or the answers to every job of a message at once
    worker.on('message', (m: Answer & { answers?: Answer[] }) => {
      if (m.answers) for (const a of m.answers) settle(a)
      else settle(m)
    })
    worker.on('error', err => fail(this.options.failure(`${this.options.name} worker failed: ${err.message}`)))
    worker.on('exit', code => fail(this.options.failure(`${this.options.name} worker exited with code ${code}`)))
    return t
  }
}
