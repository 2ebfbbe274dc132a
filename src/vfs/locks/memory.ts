import { vfsError } from '../errors.ts'
import { applyLock, findConflict, type HeldLock, type LockRequest } from './ranges.ts'
import type { LockTable, LockWait } from './table.ts'
import { wakeOrAbort } from './wake.ts'

interface FileLocks {
  held: HeldLock[]
  /** Waiters to wake when a lock on the file goes or shrinks. */
  waiters: Set<() => void>
}

/**
 * A {@link LockTable} in this process's memory: what the kernel keeps for a local
 * filesystem, for mounts whose files no other machine sees. Waiters are woken the moment
 * a lock on their file is released or changed.
 */
export function createMemoryLockTable(): LockTable {
  const files = new Map<string, FileLocks>()
  const closing = new AbortController()

  const entry = (file: string): FileLocks => {
    let f = files.get(file)
    if (!f) files.set(file, (f = { held: [], waiters: new Set() }))
    return f
  }
  const grant = (file: string, f: FileLocks, req: LockRequest): void => {
    const mine: HeldLock[] = []
    const others: HeldLock[] = []
    for (const h of f.held) (h.kind === req.kind && h.owner === req.owner ? mine : others).push(h)
    f.held = others.concat(applyLock(mine, req))
    for (const wake of f.waiters) wake()
    if (f.held.length === 0 && f.waiters.size === 0) files.delete(file)
  }

  return {
    async test(file, req) {
      return findConflict(files.get(file)?.held ?? [], req)
    },
    async lock(file, req, how: LockWait) {
      for (;;) {
        if (closing.signal.aborted) throw vfsError('EINTR', 'the lock table closed')
        // looked up afresh each time: a file whose last lock went is dropped from the map
        const f = entry(file)
        if (!findConflict(f.held, req)) return grant(file, f, req)
        if (!how.wait) throw vfsError('EAGAIN', 'another owner holds a conflicting lock')
        await wakeOrAbort(f.waiters, [how.signal, closing.signal])
      }
    },
    async close() {
      closing.abort()
      files.clear()
    },
  }
}
