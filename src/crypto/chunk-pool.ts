import { POOL_LINGER_MS, sharedResource, type Lease } from './lease.ts'
import { own, WorkerThreads } from './threads.ts'

const WORKER_URL = new URL('./chunk-worker.mjs', import.meta.url)

/** Thrown for a job whose worker thread died or failed before answering; the caller may open the chunk itself. */
export class ChunkWorkerError extends Error {
  override readonly name = 'ChunkWorkerError'
}

/** One sealed chunk of a run: where it lies in the run, how to open it, where its plaintext goes. */
export interface SealedItem {
  /** AES-256-GCM key. */
  key: Uint8Array
  /** Associated data the chunk was sealed with. */
  aad: Uint8Array
  /** Offset of the sealed bytes within the run. */
  at: number
  /** Length of the sealed bytes. */
  len: number
  /** Byte offset in the slab where the plaintext goes. */
  slotAt: number
}

/** A chunk to seal in place: its plaintext at `plainAt` (`len` bytes) of a slab, sealed to `outAt`. */
export interface SealItem {
  key: Uint8Array
  aad: Uint8Array
  plainAt: number
  len: number
  outAt: number
}

/** A run of sealed chunks that lie next to each other: read from descriptor `fd` at `from`, or given as `sealed`. */
export interface SealedRun {
  slab: number
  fd?: number
  from?: number
  bytes?: number
  sealed?: Uint8Array
  items: SealedItem[]
}

/** What opening one chunk gave: its plaintext length in the slot, or why it could not be opened. */
export type OpenResult = { length: number } | { fault: 'auth' | 'short' }

/**
 * Opens AES-256-GCM chunks on a worker thread, straight into slots of shared slabs.
 *
 * The JS thread that answers FUSE then only copies plaintext out of a slab: no decryption,
 * and none of the per-chunk buffers whose collection took a third of its time on a
 * sequential read. The thread starts on first use, does not keep the process alive when
 * idle, and is replaced (with every slab registered again) when it dies; the jobs it held
 * fail with {@link ChunkWorkerError}.
 */
export class ChunkCipherPool {
  readonly size: number
  private readonly threads: WorkerThreads
  private readonly slabs = new Map<number, SharedArrayBuffer>()
  /** Seals asked for in this turn of the event loop, posted together at its end. */
  private readonly sealing: { slab: number; item: SealItem; resolve(length: number): void; reject(err: Error): void }[] = []
  private nextSlab = 1
  private crashNext = false

  constructor(options: { size?: number } = {}) {
    this.size = Math.max(1, options.size ?? 1)
    this.threads = new WorkerThreads({
      url: WORKER_URL,
      name: 'chunk cipher',
      size: this.size,
      failure: m => new ChunkWorkerError(m),
      onSpawn: worker => {
        for (const [slab, sab] of this.slabs) worker.postMessage({ op: 'slab', slab, sab })
      },
    })
  }

  /** Registers a shared slab that plaintext is written into; returns its id for {@link SealedRun.slab}. */
  addSlab(sab: SharedArrayBuffer): number {
    const id = this.nextSlab++
    this.slabs.set(id, sab)
    this.threads.broadcast({ op: 'slab', slab: id, sab })
    return id
  }

  /** Forgets a slab (its chain closed). */
  dropSlab(id: number): void {
    this.slabs.delete(id)
    this.threads.broadcast({ op: 'drop', slab: id })
  }

  /** Opens every chunk of `run` into its slot, on the least busy thread; one promise per item, in order. */
  open(run: SealedRun): Promise<OpenResult>[] {
    const crash = this.takeCrash()
    const answers = this.threads.post(run.items.length, ids => ({
      op: 'open',
      slab: run.slab,
      fd: run.fd,
      from: run.from,
      bytes: run.bytes,
      sealed: run.sealed && own(run.sealed),
      items: run.items.map((it, i) => ({ ...it, key: own(it.key), aad: own(it.aad), id: ids[i] })),
      crash,
    }))
    return answers.map(a => a.then(m => (m.fault ? { fault: m.fault as 'auth' | 'short' } : { length: m.length as number })))
  }

  /**
   * Seals the plaintext at `plainAt` (`len` bytes) of slab `slab` with AES-256-GCM under a
   * fresh nonce, writing `nonce ‖ ciphertext ‖ tag` at `outAt`; resolves to its length. The
   * seals asked for in one turn of the event loop go to the thread in one message.
   */
  seal(slab: number, item: SealItem): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.sealing.length === 0) queueMicrotask(() => this.postSeals())
      this.sealing.push({ slab, item, resolve, reject })
    })
  }

  /** Posts the seals asked for in this turn, one message per slab (a 1 MiB write seals 8 chunks). */
  private postSeals(): void {
    const asked = this.sealing.splice(0)
    for (const slab of new Set(asked.map(a => a.slab))) {
      const these = asked.filter(a => a.slab === slab)
      const crash = this.takeCrash()
      const answers = this.threads.post(these.length, ids => ({ op: 'seal', slab, items: these.map(({ item }, i) => ({ ...item, key: own(item.key), aad: own(item.aad), id: ids[i] })), crash }))
      answers.forEach((a, i) => a.then(m => these[i]!.resolve(m.length as number), these[i]!.reject))
    }
  }

  /** Starts the thread now, so the first chunk need not wait for it to load (about 50 ms here). */
  warm(): void {
    this.threads.warm()
  }

  /** How many chunks are waiting for a thread. */
  get busy(): number {
    return this.threads.busy
  }

  /** Terminates the threads; waiting jobs fail with {@link ChunkWorkerError}. */
  close(): Promise<void> {
    return this.threads.close()
  }

  /** Makes the thread that takes the next job exit with code 70 instead of answering it (fault injection for tests). */
  crashNextJob(): void {
    this.crashNext = true
  }

  private takeCrash(): boolean {
    const c = this.crashNext
    this.crashNext = false
    return c
  }
}

/** A reference to the process-wide chunk worker, from {@link acquireChunkPool}. */
export type ChunkLease = Lease<ChunkCipherPool>

/** Takes a reference to the process-wide chunk worker; the last release terminates it. */
export const acquireChunkPool: () => ChunkLease = sharedResource(
  // one thread: a second measured no faster on two cores, where FUSE, the kernel and the reader share the rest
  () => new ChunkCipherPool({ size: 1 }),
  pool => pool.close(),
  POOL_LINGER_MS,
)
