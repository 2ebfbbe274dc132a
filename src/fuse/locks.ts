import { vfsError, VfsError } from '../vfs/errors.ts'
import { createMemoryLockTable } from '../vfs/locks/memory.ts'
import { WHOLE_FILE, type LockKind, type LockMode, type LockRequest } from '../vfs/locks/ranges.ts'
import type { LockTable } from '../vfs/locks/table.ts'
import type { Vfs } from '../vfs/vfs.ts'
import type { Answerer } from './answer.ts'
import type { FuseCallback, FuseRequestContext } from './binding.ts'

/** fcntl commands as libfuse passes them (x86-64 and arm64 Linux). */
const F_GETLK = 5
const F_SETLK = 6
const F_SETLKW = 7
/** fcntl lock types. */
const F_RDLCK = 0
const F_WRLCK = 1
const F_UNLCK = 2
/** flock operations. */
const LOCK_SH = 1
const LOCK_EX = 2
const LOCK_NB = 4
const LOCK_UN = 8
const UNLINKED = '(handle)'

/** A POSIX lock as fuse-napi gives it and takes it back for `F_GETLK`. */
interface FuseLock {
  type: number
  whence: number
  start: number | bigint
  length: number | bigint
  pid: number
}

/** Options for {@link createFuseLocks}. */
export interface FuseLocksOptions {
  answer: Answerer
  context: () => FuseRequestContext | null
  /** How many blocking waits may be in progress at once; one more fails with `ENOLCK` (each holds a native worker). */
  maxWaits: number
}

/** The FUSE `lock` and `flock` handlers of a mount, with what `release` needs of them. */
export interface FuseLocks {
  lock(path: string | null, fd: number, command: number, lock: FuseLock, cb: FuseCallback): void
  flock(path: string | null, fd: number, operation: number, cb: FuseCallback): void
  /** Lets go of the `flock` lock of handle `fd` when the kernel says its last descriptor closed; call before the handle is released. */
  released(fd: number): Promise<void>
  /** Ends every wait (`EINTR`) and drops the locks kept in this process. */
  close(): Promise<void>
}

/**
 * Serves `flock` and POSIX record locks (`fcntl`, `lockf`) for a FUSE mount. A file's
 * locks go to its mount's own table when it has one (`Mount.locks`, shared by every
 * machine mounting a PostgreSQL chain), else to a table in this process, which behaves as
 * the kernel's own local locks would. libfuse unlocks a process's POSIX locks on each
 * `close` itself (an `F_UNLCK` on the whole file); the kernel marks the last close of a
 * file that had a `flock`, and {@link FuseLocks.released} drops that one.
 *
 * A blocking wait is answered without the call timeout, so it waits as long as the
 * holder holds; each such wait holds one native worker, and at most `maxWaits` run at
 * once (the mount has that many workers more than its `workers`, so other calls keep
 * being answered); one more fails with `ENOLCK`. Deadlocks between waiters are not
 * detected (no `EDEADLK`), and a waiting process that is killed stays in the kernel until
 * the lock is granted or the mount ends.
 */
export function createFuseLocks(vfs: Vfs, { answer, context, maxWaits }: FuseLocksOptions): FuseLocks {
  const local = createMemoryLockTable()
  const closing = new AbortController()
  let waits = 0
  /** Where each handle's locks go, looked up on its first lock. */
  const targets = new Map<number, Promise<{ table: LockTable; file: string }>>()
  /** The files each POSIX owner locked through this mount (table id and file), so a close of a file the owner never locked skips the table. */
  const posixHeld = new Map<string, Set<string>>()
  const tableIds = new WeakMap<LockTable, number>()
  let nextTableId = 1
  const heldKey = (table: LockTable, file: string): string => {
    let id = tableIds.get(table)
    if (id === undefined) tableIds.set(table, (id = nextTableId++))
    return `${id}:${file}`
  }

  const target = (fd: number): Promise<{ table: LockTable; file: string }> => {
    let t = targets.get(fd)
    if (!t) {
      t = vfs.lockTarget(fd).then(({ table, file }) => ({ table: table ?? local, file }))
      t.catch(() => targets.delete(fd))
      targets.set(fd, t)
    }
    return t
  }
  const caller = (): { owner: string; pid: number } => {
    const c = context()
    return { owner: String(c?.fileInfo?.lockOwner ?? 0), pid: c?.pid ?? 0 }
  }
  /** Takes `req`, waiting (untimed, up to `maxWaits` at once) when `wait` and it conflicts. */
  const take = async (fd: number, req: LockRequest, wait: boolean): Promise<void> => {
    const { table, file } = await target(fd)
    try {
      await table.lock(file, req, { wait: false })
    } catch (err) {
      if (!wait || !(err instanceof VfsError) || err.code !== 'EAGAIN') throw err
      if (waits >= maxWaits) throw vfsError('ENOLCK', `${maxWaits} lock waits are in progress already`)
      waits++
      try {
        await table.lock(file, req, { wait: true, signal: closing.signal })
      } finally {
        waits--
      }
    }
  }

  return {
    lock(path, fd, command, lock, cb) {
      const at = path ?? UNLINKED
      const { owner, pid } = caller()
      const mode: LockMode | 'unlock' | undefined = lock.type === F_RDLCK ? 'read' : lock.type === F_WRLCK ? 'write' : lock.type === F_UNLCK ? 'unlock' : undefined
      const range = rangeOf(lock)
      if (!mode || !range) return cb(-22)
      const req: LockRequest = { kind: 'posix', mode, owner, pid, ...range }
      if (command === F_GETLK) {
        return answer('lock', at, cb, async () => {
          const { table, file } = await target(fd)
          return table.test(file, req)
        }, held => [0, held ? { type: held.mode === 'write' ? F_WRLCK : F_RDLCK, whence: 0, start: held.start, length: held.end === Infinity ? 0 : held.end - held.start, pid: held.pid } : { ...lock, type: F_UNLCK }])
      }
      if (command !== F_SETLK && command !== F_SETLKW) return cb(-22)
      if (mode === 'unlock') {
        // libfuse sends one on every close: an owner that never locked this file has nothing to let go
        const files = posixHeld.get(owner)
        if (!files) return cb(0)
        return answer('lock', at, cb, async () => {
          const { table, file } = await target(fd)
          const key = heldKey(table, file)
          if (!files.has(key)) return
          await table.lock(file, req, { wait: false })
          if (req.start === 0 && req.end === Infinity) files.delete(key)
          if (files.size === 0 && posixHeld.get(owner) === files) posixHeld.delete(owner)
        }, () => 0)
      }
      ;(command === F_SETLKW ? answer.untimed : answer)('lock', at, cb, async () => {
        await take(fd, req, command === F_SETLKW)
        const { table, file } = await target(fd)
        let files = posixHeld.get(owner)
        if (!files) posixHeld.set(owner, (files = new Set()))
        files.add(heldKey(table, file))
      }, () => 0)
    },

    flock(path, fd, operation, cb) {
      const { owner, pid } = caller()
      const mode: LockMode | 'unlock' | undefined = operation & LOCK_UN ? 'unlock' : operation & LOCK_EX ? 'write' : operation & LOCK_SH ? 'read' : undefined
      if (!mode) return cb(-22)
      const wait = mode !== 'unlock' && (operation & LOCK_NB) === 0
      const req: LockRequest = { kind: 'flock', mode, owner, pid, ...WHOLE_FILE }
      ;(wait ? answer.untimed : answer)('flock', path ?? UNLINKED, cb, () => take(fd, req, wait), () => 0)
    },

    async released(fd) {
      const c = context()
      const t = targets.get(fd)
      targets.delete(fd)
      if (!t || !c?.fileInfo?.flockRelease) return
      const { table, file } = await t
      await unlockAll(table, file, 'flock', String(c.fileInfo.lockOwner))
    },

    async close() {
      closing.abort()
      targets.clear()
      await local.close()
    },
  }
}

function unlockAll(table: LockTable, file: string, kind: LockKind, owner: string): Promise<void> {
  return table.lock(file, { kind, mode: 'unlock', owner, pid: 0, ...WHOLE_FILE }, { wait: false })
}

/** The bytes a POSIX lock covers, `end` exclusive (`Infinity`: to the end of the file); undefined when it is no valid range. */
function rangeOf(lock: FuseLock): { start: number; end: number } | undefined {
  // the kernel has already made `whence` SEEK_SET and the length non-negative; a negative one is taken as POSIX says
  const start = Number(lock.start)
  const length = Number(lock.length)
  if (!Number.isFinite(start) || !Number.isFinite(length)) return undefined
  if (length === 0) return start >= 0 ? { start, end: Infinity } : undefined
  const from = length > 0 ? start : start + length
  const to = length > 0 ? start + length : start
  if (from < 0) return undefined
  // a range reaching past what a double holds exactly is as good as "to the end"
  return { start: from, end: Number.isSafeInteger(to) ? to : Infinity }
}
