import { Worker } from 'node:worker_threads'
import { sharedResource, type Lease } from './lease.ts'

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

interface Job {
  resolve(r: OpenResult): void
  reject(err: Error): void
}

interface Thread {
  worker: Worker
  jobs: Map<number, Job>
}

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
  private readonly threads: Thread[] = []
  private readonly slabs = new Map<number, SharedArrayBuffer>()
  private nextId = 1
  private nextSlab = 1
  private closed = false
  private crashNext = false

  constructor(options: { size?: number } = {}) {
    this.size = Math.max(1, options.size ?? 1)
  }

  /** Registers a shared slab that plaintext is written into; returns its id for {@link SealedRun.slab}. */
  addSlab(sab: SharedArrayBuffer): number {
    const id = this.nextSlab++
    this.slabs.set(id, sab)
    for (const t of this.threads) t.worker.postMessage({ op: 'slab', slab: id, sab })
    return id
  }

  /** Forgets a slab (its chain closed). */
  dropSlab(id: number): void {
    this.slabs.delete(id)
    for (const t of this.threads) t.worker.postMessage({ op: 'drop', slab: id })
  }

  /** Opens every chunk of `run` into its slot, on the least busy thread; one promise per item, in order. */
  open(run: SealedRun): Promise<OpenResult>[] {
    if (this.closed) return run.items.map(() => Promise.reject(new ChunkWorkerError('the chunk worker is closed')))
    const t = this.pick()
    const items = run.items.map(it => ({ ...it, id: this.nextId++ }))
    const out = items.map(it => new Promise<OpenResult>((resolve, reject) => t.jobs.set(it.id, { resolve, reject })))
    if (t.jobs.size === items.length) t.worker.ref()
    t.worker.postMessage({ op: 'open', slab: run.slab, fd: run.fd, from: run.from, bytes: run.bytes, sealed: run.sealed, items, crash: this.takeCrash() })
    return out
  }

  /**
   * Seals the plaintext at `plainAt` (`len` bytes) of slab `slab` with AES-256-GCM under a
   * fresh nonce, writing `nonce ‖ ciphertext ‖ tag` at `outAt`; resolves to its length.
   */
  seal(slab: number, item: { key: Uint8Array; aad: Uint8Array; plainAt: number; len: number; outAt: number }): Promise<number> {
    if (this.closed) return Promise.reject(new ChunkWorkerError('the chunk worker is closed'))
    const t = this.pick()
    const id = this.nextId++
    const done = new Promise<OpenResult>((resolve, reject) => t.jobs.set(id, { resolve, reject }))
    if (t.jobs.size === 1) t.worker.ref()
    t.worker.postMessage({ op: 'seal', slab, items: [{ ...item, id }], crash: this.takeCrash() })
    return done.then(r => ('length' in r ? r.length : Promise.reject(new ChunkWorkerError(`sealing failed: ${r.fault}`))))
  }

  /** How many chunks are waiting for a thread. */
  get busy(): number {
    let n = 0
    for (const t of this.threads) n += t.jobs.size
    return n
  }

  /** Terminates the threads; waiting jobs fail with {@link ChunkWorkerError}. */
  async close(): Promise<void> {
    this.closed = true
    await Promise.all(this.threads.map(t => t.worker.terminate()))
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
    for (const [slab, sab] of this.slabs) worker.postMessage({ op: 'slab', slab, sab })
    const fail = (err: Error) => {
      const i = this.threads.indexOf(t)
      if (i >= 0) this.threads.splice(i, 1)
      for (const j of t.jobs.values()) j.reject(err)
      t.jobs.clear()
    }
    worker.on('message', (m: { id: number; error?: string; fault?: 'auth' | 'short'; length?: number }) => {
      const j = t.jobs.get(m.id)
      if (!j) return
      t.jobs.delete(m.id)
      if (t.jobs.size === 0) worker.unref()
      if (m.error !== undefined) j.reject(new ChunkWorkerError(m.error))
      else if (m.fault) j.resolve({ fault: m.fault })
      else j.resolve({ length: m.length! })
    })
    worker.on('error', err => fail(new ChunkWorkerError(`chunk worker failed: ${err.message}`)))
    worker.on('exit', code => fail(new ChunkWorkerError(`chunk worker exited with code ${code}`)))
    return t
  }
}

/** A reference to the process-wide chunk worker, from {@link acquireChunkPool}. */
export type ChunkLease = Lease<ChunkCipherPool>

/** Takes a reference to the process-wide chunk worker; the last release terminates it. */
export const acquireChunkPool: () => ChunkLease = sharedResource(
  // one thread: a second measured no faster on two cores, where FUSE, the kernel and the reader share the rest
  () => new ChunkCipherPool({ size: 1 }),
  pool => pool.close(),
)
