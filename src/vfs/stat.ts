import { constants as fsc } from 'node:fs'
import type { Attr, NodeKind, VNode } from './node.ts'

/** What `stat` returns: a node's attributes with full mode bits, in Node's field names. */
export interface Stat {
  /** What the node is. */
  kind: NodeKind
  /** File-type bits plus permissions, e.g. `0o100644`. */
  mode: number
  /** Length in bytes (of the target text, for a symlink). */
  size: number
  /** The owner's user id. */
  uid: number
  /** The owning group's id. */
  gid: number
  /** Last access time, in milliseconds since the epoch. */
  atimeMs: number
  /** Last modification time, in milliseconds since the epoch. */
  mtimeMs: number
  /** Last status change time, in milliseconds since the epoch. */
  ctimeMs: number
  /** The same times in nanoseconds, exact where the mount keeps them. */
  atimeNs: bigint
  /** `mtimeMs` in nanoseconds, exact where the mount keeps them. */
  mtimeNs: bigint
  /** `ctimeMs` in nanoseconds, exact where the mount keeps them. */
  ctimeNs: bigint
  /** Hard links: 1 for a file and 2 for a directory unless the mount says otherwise. */
  nlink: number
  /** Inode number, unique in the whole tree (each mount has its own range). */
  ino: number
  /** The device number of a device node, else 0. */
  rdev: number
  /** Preferred I/O size in bytes: always 4096. */
  blksize: number
  /** Space used, in 512-byte blocks: `size` rounded up. */
  blocks: number
}

/** The file-type bits of each node kind. */
export const S_IFMT: Record<NodeKind, number> = {
  file: fsc.S_IFREG,
  dir: fsc.S_IFDIR,
  symlink: fsc.S_IFLNK,
  fifo: fsc.S_IFIFO,
  chardev: fsc.S_IFCHR,
  blockdev: fsc.S_IFBLK,
  socket: fsc.S_IFSOCK,
}

const MS = 1_000_000n

/** Milliseconds (possibly fractional) as whole nanoseconds. */
export function msToNs(ms: number): bigint {
  const whole = Math.floor(ms)
  return BigInt(whole) * MS + BigInt(Math.round((ms - whole) * 1e6))
}

/** Nanoseconds as milliseconds, as Node's `*Ms` stat fields carry them. */
export function nsToMs(ns: bigint): number {
  const whole = ns / MS
  return Number(whole) + Number(ns - whole * MS) / 1e6
}

/**
 * The wall clock (`Date.now()`) and the monotonic clock read together: the monotonic
 * clock is read on both sides of the wall clock, and again when a preemption came between
 * them, so the pair is within a fraction of a millisecond of one moment.
 */
function readAnchor(): { wallMs: number; perfMs: number } {
  let best = { wallMs: 0, perfMs: 0, gap: Infinity }
  for (let i = 0; i < 5 && best.gap > 0.05; i++) {
    const before = performance.now()
    const wallMs = Date.now()
    const after = performance.now()
    // Date.now() counts whole milliseconds, so times are at most 1 ms behind it, never ahead
    if (after - before < best.gap) best = { wallMs, perfMs: (before + after) / 2, gap: after - before }
  }
  return best
}

/** Re-read every second. */
let anchor = readAnchor()
/** The last time {@link nowNs} gave, in microseconds, so small steps back are smoothed out. */
let lastUs = 0

/**
 * The current time in nanoseconds since the epoch, with microsecond resolution. It is the
 * wall clock, re-anchored every second, plus the monotonic clock's progress since: unlike
 * `performance.timeOrigin + performance.now()`, which is fixed at start and drifts from the
 * wall clock (and was seen milliseconds off it at once), it follows the clock `date` shows.
 */
export function nowNs(): bigint {
  const perf = performance.now()
  if (perf - anchor.perfMs >= 1000) anchor = readAnchor()
  let us = Math.floor((anchor.wallMs + (perf - anchor.perfMs)) * 1000)
  // a re-anchoring may step back a little; a clock set back for real (over a second) is followed
  if (us < lastUs && lastUs - us < 1_000_000) us = lastUs
  lastUs = us
  return BigInt(us) * 1000n
}

/** How many inode numbers each mount has to itself: its own numbers go below this, the mount's id above. */
const PER_MOUNT = 2 ** 40

/**
 * Gives every node an inode number unique in the whole tree: the number its mount
 * reports (or one assigned on first sight when it reports none) in a range of the
 * mount's own, so `cp -a`, `tar` and `du` never take files of two mounts for hard links.
 */
export class InodeNumbers {
  private readonly byNode = new WeakMap<VNode, number>()
  private next = 2

  /** The inode number of `node` in the mount numbered `mountId` (0 for folders above every mount). */
  of(node: VNode, a: Attr, mountId: number): number {
    if (a.ino !== undefined && a.ino > 0 && a.ino < PER_MOUNT) return mountId * PER_MOUNT + a.ino
    let ino = this.byNode.get(node)
    if (ino === undefined) {
      ino = this.next++
      this.byNode.set(node, ino)
    }
    return ino
  }
}

/** Builds the {@link Stat} of `node` from the attributes its mount reported. */
export function toStat(node: VNode, a: Attr, ino: number): Stat {
  return {
    kind: node.kind,
    mode: S_IFMT[node.kind] | (a.mode & 0o7777),
    size: a.size,
    uid: a.uid,
    gid: a.gid,
    atimeMs: a.atimeMs,
    mtimeMs: a.mtimeMs,
    ctimeMs: a.ctimeMs,
    atimeNs: a.atimeNs ?? msToNs(a.atimeMs),
    mtimeNs: a.mtimeNs ?? msToNs(a.mtimeMs),
    ctimeNs: a.ctimeNs ?? msToNs(a.ctimeMs),
    nlink: a.nlink ?? (node.kind === 'dir' ? 2 : 1),
    ino,
    rdev: a.rdev ?? 0,
    blksize: 4096,
    blocks: Math.ceil(a.size / 512),
  }
}
