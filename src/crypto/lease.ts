/** A counted reference to a process-wide resource, from {@link sharedResource}. */
export interface Lease<T> {
  readonly pool: T
  /** Gives the reference back; the last one closes the resource. Idempotent. */
  release(): Promise<void>
}

/**
 * One lazily made instance shared by every holder of a lease: the first `acquire` makes it,
 * the last `release` closes it, so open chains share threads and a finished process exits.
 */
export function sharedResource<T>(make: () => T, close: (t: T) => Promise<void>): () => Lease<T> {
  let shared: T | undefined
  let users = 0
  return () => {
    shared ??= make()
    const pool = shared
    users++
    let released = false
    return {
      pool,
      async release() {
        if (released) return
        released = true
        if (--users === 0 && shared === pool) {
          shared = undefined
          await close(pool)
        }
      },
    }
  }
}
