import type { HeldLock, LockRequest } from './ranges.ts'

export type { HeldLock, LockKind, LockMode, LockRequest } from './ranges.ts'

/** How {@link LockTable.lock} behaves when another owner holds a conflicting lock. */
export interface LockWait {
  /** Wait until the lock can be granted (`F_SETLKW`, `flock` without `LOCK_NB`) instead of failing with `EAGAIN`. */
  wait: boolean
  /** Ends a wait early: the call then fails with `EINTR`. */
  signal?: AbortSignal
}

/**
 * Where a mount keeps the `flock` and POSIX record locks on its files. Files are named by
 * a key of the mount's own (an inode number as a string) and owners by the kernel's lock
 * owner; a table shared by several machines keeps the owners of each apart. Conflicts
 * follow Linux (see `findConflict`); a mount without a table of its own gets one that
 * lives in the process.
 */
export interface LockTable {
  /** The lock that keeps `req` from being granted now, if any (`F_GETLK`). */
  test(file: string, req: LockRequest): Promise<HeldLock | undefined>
  /**
   * Grants `req`: takes, converts or splits the owner's locks on the range, or cuts them
   * (`unlock`, which never waits nor fails for a conflict). When another owner holds a
   * conflicting lock it throws `EAGAIN`, or with `wait` resolves once the lock is granted
   * (woken when a holder lets go, never by polling) and throws `EINTR` when `signal` aborts.
   */
  lock(file: string, req: LockRequest, how: LockWait): Promise<void>
  /** Ends waits in progress (they fail with `EINTR`) and lets go of every lock this table holds. */
  close(): Promise<void>
}
