/** How long a process-wide worker pool outlives its last user: a chain reopened meanwhile (the CLI, a test, a follower switching logs) does not start threads again. */
export const POOL_LINGER_MS = 2000

/** A counted reference to a process-wide resource, from {@link sharedResource}. */
export interface Lease<T> {
  readonly pool: T
  /** Gives the reference back; the last one closes the resource. Idempotent. */
  release(): Promise<void>
}

/**
 * One lazily made instance shared by every holder of a lease: the first `acquire` makes it,
 * and `lingerMs` after the last `release` it is closed (at once when 0), unless acquired
 * again meanwhile. Open chains share threads, a chain closed and reopened keeps them, and a
 * finished process still exits: the linger timer does not hold it.
 */
export function sharedResource<T>(make: () => T, close: (t: T) => Promise<void>, lingerMs = 0): () => Lease<T> {
  let shared: T | undefined
  let users = 0
  let linger: NodeJS.Timeout | undefined
  return () => {
    if (linger) {
      clearTimeout(linger)
      linger = undefined
    }
    shared ??= make()
    const pool = shared
    users++
    let released = false
    return {
      pool,
      async release() {
        if (released) return
        released = true
        if (--users > 0 || shared !== pool) return
        if (lingerMs <= 0) {
          shared = undefined
          await close(pool)
          return
        }
        linger = setTimeout(() => {
          linger = undefined
          if (users > 0 || shared !== pool) return
          shared = undefined
          close(pool).catch(() => {})
        }, lingerMs)
        linger.unref()
      },
    }
  }
}
