import { POOL_LINGER_MS, sharedResource, type Lease } from './lease.ts'
import { own, WorkerThreads } from './threads.ts'

const WORKER_URL = new URL('./pq-worker.mjs', import.meta.url)

/** Thrown for a job whose worker thread died (crashed or was terminated) before answering. */
export class PqWorkerError extends Error {
  override readonly name = 'PqWorkerError'
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
  private readonly threads: WorkerThreads
  private crashNext = false

  constructor(options: PqPoolOptions = {}) {
    this.size = Math.max(1, options.size ?? 2)
    this.threads = new WorkerThreads({ url: WORKER_URL, name: 'ML-DSA', size: this.size, failure: m => new PqWorkerError(m) })
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
    this.threads.warm(count)
  }

  /**
   * Keeps every thread busy until the returned function is called, so jobs posted meanwhile
   * wait (to test that callers stay responsive while a signature is in flight).
   */
  holdForTest(): () => Promise<void> {
    const cell = new SharedArrayBuffer(4)
    const held = this.threads.postEach(id => ({ op: 'hold', id, cell }))
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
    return this.threads.busy
  }

  /** Terminates every thread; waiting jobs fail with {@link PqWorkerError}. */
  close(): Promise<void> {
    return this.threads.close()
  }

  private run(msg: Record<string, unknown>): Promise<unknown> {
    const crash = this.crashNext
    this.crashNext = false
    return this.threads.post(1, ([id]) => ({ ...msg, id, crash }))[0]!
  }
}

/** A reference to the shared pool, from {@link acquirePqPool}. */
export type PqLease = Lease<PqPool>

/**
 * Takes a reference to the process-wide pool (2 threads); call the returned release when done.
 * The last release terminates the threads, so open chains share them and a closed process exits.
 */
export const acquirePqPool: () => PqLease = sharedResource(
  () => new PqPool({ size: 2 }),
  pool => pool.close(),
  POOL_LINGER_MS,
)
