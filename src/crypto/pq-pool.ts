import { Worker } from 'node:worker_threads'
import { sharedResource, type Lease } from './lease.ts'

const WORKER_URL = new URL('./pq-worker.mjs', import.meta.url)

/** Thrown for a job whose worker thread died (crashed or was terminated) before answering. */
export class PqWorkerError extends Error {
  override readonly name = 'PqWorkerError'
}

interface Job {
  resolve(value: unknown): void
  reject(err: Error): void
}

interface Thread {
  worker: Worker
  jobs: Map<number, Job>
}

/** Options for {@link PqPool}. */
export interface PqPoolOptions {
  /** How many worker threads at most. @default 2 */
  size?: number
}

/**
 * Runs ML-DSA-65 signing and verification on worker threads so the JS thread stays free.
 *
 * Threads start on first use and go to the least busy thread. A thread that dies fails its
 * jobs with {@link PqWorkerError} and is replaced on the next job. Idle threads do not keep
 * the process alive; {@link PqPool.close} terminates them.
 */
export class PqPool {
  readonly size: number
  private readonly threads: Thread[] = []
  private nextId = 1
  private closed = false
  private crashNext = false

  constructor(options: PqPoolOptions = {}) {
    this.size = Math.max(1, options.size ?? 2)
  }

  /** Signs `message` with an ML-DSA-65 secret key on a worker thread. */
  async sign(message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array> {
    const r = (await this.run({ op: 'sign', message: own(message), secretKey: own(secretKey) })) as { signature: Uint8Array }
    return r.signature
  }

  /**
   * Signs a block body that lies in shared memory, on a worker thread: hashes `prefix` and
   * its first `length` bytes (the digest), signs the digest, writes the signature after them
   * (u16 length, then the bytes) and returns the digest, the signature and the CRC-32 of the
   * signed body. The JS thread neither hashes nor checksums the block.
   */
  async signSharedBody(body: Buffer, length: number, prefix: Uint8Array, secretKey: Uint8Array): Promise<{ digest: Buffer; signature: Uint8Array; crc: number }> {
    if (!(body.buffer instanceof SharedArrayBuffer)) throw new TypeError('signSharedBody needs a buffer over a SharedArrayBuffer')
    const r = (await this.run({ op: 'signBody', sab: body.buffer, offset: body.byteOffset, capacity: body.length, length, prefix, secretKey: own(secretKey) })) as { digest: Uint8Array; signature: Uint8Array; crc: number }
    return { digest: Buffer.from(r.digest.buffer, r.digest.byteOffset, r.digest.length), signature: r.signature, crc: r.crc }
  }

  /** Checks an ML-DSA-65 signature on a worker thread; false for any malformed input. */
  async verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean> {
    const r = (await this.run({ op: 'verify', signature: own(signature), message: own(message), publicKey: own(publicKey) })) as { ok: boolean }
    return r.ok
  }

  /**
   * Starts threads now (they load the ML-DSA code in the background) so the first jobs need not wait for it.
   * @param count how many threads should be running. @default size
   */
  warm(count = this.size): void {
    if (this.closed) return
    while (this.threads.length < Math.min(count, this.size)) this.spawn()
  }

  /**
   * Keeps every thread busy until the returned function is called, so jobs posted meanwhile
   * wait (to test that callers stay responsive while a signature is in flight).
   */
  holdForTest(): () => Promise<void> {
    this.warm()
    const cell = new SharedArrayBuffer(4)
    const held = this.threads.map(t => {
      const id = this.nextId++
      return new Promise<unknown>((resolve, reject) => {
        t.jobs.set(id, { resolve, reject })
        t.worker.ref()
        t.worker.postMessage({ op: 'hold', id, cell })
      })
    })
    return async () => {
      const view = new Int32Array(cell)
      Atomics.store(view, 0, 1)
      Atomics.notify(view, 0)
      await Promise.allSettled(held)
    }
  }

  /** Makes the thread that takes the next job exit with code 70 instead of answering it (fault injection for tests). */
  crashNextJob(): void {
    this.crashNext = true
  }

  /** How many jobs are waiting for an answer. */
  get busy(): number {
    let n = 0
    for (const t of this.threads) n += t.jobs.size
    return n
  }

  /** Terminates every thread; waiting jobs fail with {@link PqWorkerError}. */
  async close(): Promise<void> {
    this.closed = true
    await Promise.all(this.threads.map(t => t.worker.terminate()))
  }

  private run(msg: Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new PqWorkerError('the ML-DSA worker pool is closed'))
    const t = this.pick()
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      t.jobs.set(id, { resolve, reject })
      if (t.jobs.size === 1) t.worker.ref()
      t.worker.postMessage({ ...msg, id, crash: this.crashNext })
      this.crashNext = false
    })
  }

  private pick(): Thread {
    let best: Thread | undefined
    for (const t of this.threads) if (!best || t.jobs.size < best.jobs.size) best = t
    if (best && (best.jobs.size === 0 || this.threads.length >= this.size)) return best
    return this.spawn()
  }

  private spawn(): Thread {
    const worker = new Worker(WORKER_URL)
    worker.unref()
    const t: Thread = { worker, jobs: new Map() }
    this.threads.push(t)
    const fail = (err: Error) => {
      const i = this.threads.indexOf(t)
      if (i >= 0) this.threads.splice(i, 1)
      for (const j of t.jobs.values()) j.reject(err)
      t.jobs.clear()
    }
    worker.on('message', (m: { id: number; error?: string }) => {
      const j = t.jobs.get(m.id)
      if (!j) return
      t.jobs.delete(m.id)
      if (t.jobs.size === 0) worker.unref()
      if (m.error !== undefined) j.reject(new Error(m.error))
      else j.resolve(m)
    })
    worker.on('error', err => fail(new PqWorkerError(`ML-DSA worker failed: ${err.message}`)))
    worker.on('exit', code => fail(new PqWorkerError(`ML-DSA worker exited with code ${code}`)))
    return t
  }
}

/** A reference to the shared pool, from {@link acquirePqPool}. */
export type PqLease = Lease<PqPool>

/** A copy of `b` when it is a view into a bigger buffer: posting a view copies its whole buffer (a block, a read window). */
function own(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b)
}

/**
 * Takes a reference to the process-wide pool (2 threads); call the returned release when done.
 * The last release terminates the threads, so open chains share them and a closed process exits.
 */
export const acquirePqPool: () => PqLease = sharedResource(
  () => new PqPool({ size: 2 }),
  pool => pool.close(),
)
