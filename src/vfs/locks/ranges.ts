/** Which lock family: BSD `flock` (whole file, per open file) or POSIX `fcntl` record locks (byte ranges, per process). On Linux the two never conflict. */
export type LockKind = 'flock' | 'posix'

/** A shared (`read`) or exclusive (`write`) lock. */
export type LockMode = 'read' | 'write'

/** One lock held on a file: bytes `start` up to (not including) `end`; `end` is `Infinity` for "to the end of the file, however long it grows". */
export interface HeldLock {
  readonly kind: LockKind
  readonly mode: LockMode
  /** Who holds it: the kernel's lock owner (an open file for `flock`, a process for POSIX), made unique across machines by the table. */
  readonly owner: string
  readonly start: number
  readonly end: number
  /** The holding process as the kernel reported it (0 when it is on another machine). */
  readonly pid: number
}

/** A lock to take (`read`, `write`) or give up (`unlock`) on a byte range. */
export interface LockRequest {
  readonly kind: LockKind
  readonly mode: LockMode | 'unlock'
  readonly owner: string
  readonly start: number
  readonly end: number
  readonly pid: number
}

/** The whole file, as `flock` locks it and as a close unlocks it. */
export const WHOLE_FILE = { start: 0, end: Infinity } as const

const overlaps = (a: { start: number; end: number }, b: { start: number; end: number }): boolean => a.start < b.end && b.start < a.end

/**
 * The first lock in `held` that keeps `req` from being granted, with Linux's rules: only
 * locks of the same kind count (`flock` and POSIX locks are independent), an owner never
 * conflicts with itself, ranges must overlap, and two `read` locks share. An `unlock`
 * never conflicts.
 */
export function findConflict(held: readonly HeldLock[], req: LockRequest): HeldLock | undefined {
  if (req.mode === 'unlock') return undefined
  for (const h of held) {
    if (h.kind !== req.kind || h.owner === req.owner || !overlaps(h, req)) continue
    if (h.mode === 'write' || req.mode === 'write') return h
  }
  return undefined
}

/**
 * The locks `req.owner` holds of `req.kind` after `req` is granted, given `mine`, the ones
 * it held before: the requested range is cut out of its old locks (splitting one that
 * spans it), then added with the new mode (`unlock` adds nothing); touching or
 * overlapping ranges of one mode are merged, as Linux keeps them.
 */
export function applyLock(mine: readonly HeldLock[], req: LockRequest): HeldLock[] {
  const out: HeldLock[] = []
  for (const h of mine) {
    if (!overlaps(h, req)) {
      out.push(h)
      continue
    }
    if (h.start < req.start) out.push({ ...h, end: req.start })
    if (h.end > req.end) out.push({ ...h, start: req.end })
  }
  if (req.mode === 'unlock') return out.sort(byStart)
  let added: HeldLock = { kind: req.kind, mode: req.mode, owner: req.owner, start: req.start, end: req.end, pid: req.pid }
  const kept: HeldLock[] = []
  for (const h of out) {
    // after the cut nothing overlaps the new range; a neighbour of the same mode that touches it joins it
    if (h.mode === added.mode && (h.end === added.start || h.start === added.end)) added = { ...added, start: Math.min(h.start, added.start), end: Math.max(h.end, added.end) }
    else kept.push(h)
  }
  kept.push(added)
  return kept.sort(byStart)
}

const byStart = (a: HeldLock, b: HeldLock): number => a.start - b.start

/** True when `a` and `b` hold exactly the same ranges in the same modes. */
export function sameLocks(a: readonly HeldLock[], b: readonly HeldLock[]): boolean {
  return a.length === b.length && a.every((h, i) => h.start === b[i]!.start && h.end === b[i]!.end && h.mode === b[i]!.mode)
}
