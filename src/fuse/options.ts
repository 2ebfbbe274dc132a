import { availableParallelism } from 'node:os'
import { BINDING_TIMEOUT_MS } from './answer.ts'

/** Kernel cache and transfer settings of a FUSE mount; each applies to the whole mount. */
export interface MountTuning {
  /**
   * Seconds the kernel trusts a file's attributes (size, mode, times, link count) before
   * asking again. With 0 every `stat`, every step of a path walk (the permission check of
   * each folder) and every `read` call asks FacetFS, one round trip each. Longer is safe
   * where every change the kernel did not make itself reaches it as an invalidation: the
   * mount invalidates the names a change event gives (a new lookup then brings fresh
   * attributes) and, as libfuse's path API gives each name of a hard-linked file a kernel
   * inode of its own, the other names of a hard-linked file changed through one of them.
   * What stays cached is the attributes of a file held open, for `fstat` on it, until the
   * timeout runs out.
   * Where every mount of the Vfs is its tree's sole writer (`Mount.soleWriter`: a chain opened for writing on a log file), {@link SOLE_WRITER_ATTR_TIMEOUT} is safe but for hard links (see `defaultAttrTimeout`).
   * @default 0
   */
  attrTimeout?: number
  /**
   * Seconds the kernel trusts a name → file lookup. Lookups past it are re-checked;
   * names that change behind the kernel's back are invalidated from the change bus.
   * @default 1
   */
  entryTimeout?: number
  /**
   * The largest read request, in bytes. Reads through the page cache come in requests of
   * at most the read-ahead ({@link readAheadKb}), so both are raised together.
   * @default 1048576
   */
  maxRead?: number
  /**
   * How far ahead the kernel reads a file being read in order, in KiB: with the kernel's
   * default (128) a sequential reader waits for one 128 KiB request at a time. Set on the
   * mount's backing device after mounting; needs root, else the default stays. 0 keeps it.
   * @default 1024
   */
  readAheadKb?: number
  /** The name `df` and `/proc/mounts` show in the source column; letters, digits, `._-` only. @default 'facetfs' */
  fsname?: string
  /**
   * Lets other users than the one mounting in. The kernel then checks every access
   * against the modes and owners the tree reports (`default_permissions` is always on).
   * Needs `user_allow_other` in `/etc/fuse.conf`, even for root.
   * @default false
   */
  allowOther?: boolean
  /** Has `fusermount3` unmount the folder when this process dies, even by SIGKILL. @default true */
  autoUnmount?: boolean
  /**
   * Native request workers: how many FUSE requests are in flight in this process at once
   * (1–64). Each call is answered on the one JS thread, so more workers than cores only
   * add contention: measured on 2 cores, 2 workers spent half the CPU of 8 per stat.
   * @default the number of cores, at least 2 and at most 8
   */
  workers?: number
  /**
   * How many blocking lock waits (`F_SETLKW`, `flock` without `LOCK_NB`) may be in
   * progress at once. Each holds a native worker until the lock is granted, so the mount
   * gets this many workers more than `workers` and ordinary calls are still answered while
   * processes wait; one wait more fails with `ENOLCK`.
   * @default 4
   */
  lockWaits?: number
  /**
   * Who checks modes and owners. `'facet'`: FacetFS's router, on every call by path (each
   * folder of the path searched, the caller's supplementary groups read from `/proc` when a
   * check needs them), so the kernel need not ask for the attributes of every folder of a
   * path walk (`ls -lR` of 10,000 files in half the time). `'kernel'`: libfuse's
   * `default_permissions`, the kernel checks against the attributes it asks for. Two
   * things only the kernel sees: opening a fifo (the kernel opens it without asking
   * FacetFS) and running a file (with `'facet'` any execute bit lets it run). So the
   * kernel checks where other users reach the mount (`allowOther`), and the router where
   * only the mounting user's processes can.
   * @default allowOther ? 'kernel' : 'facet'
   */
  permissions?: 'facet' | 'kernel'
  /** Makes libfuse print every request to stderr. @default false */
  debug?: boolean
}

const NAME = /^[A-Za-z0-9._-]+$/

/**
 * The attribute timeout, in seconds, of a mount whose trees change only through it: long
 * enough that `ls -l`, path walks and reads stop asking for attributes once per call
 * (measured on a chain, bench `chain`: `ls -lR` of 10,000 files 6.7 s to 0.8 s, 10,000
 * creates 2.5 times faster), short enough to bound what an open file's `fstat` may miss.
 */
export const SOLE_WRITER_ATTR_TIMEOUT = 1

/** The cores of this machine, at least 2 (one slow call never blocks the mount) and at most 8. */
export function defaultWorkers(): number {
  return Math.min(8, Math.max(2, availableParallelism()))
}

function seconds(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a number of seconds >= 0, got ${value}`)
  return value
}

function bytes(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 4096 || value > 1 << 20) throw new RangeError(`${name} must be a byte count from 4096 to 1048576, got ${value}`)
  return value
}

/** The read-ahead a mount asks for, in KiB (see {@link MountTuning.readAheadKb}); 0 leaves the kernel's. */
export function readAheadKb(tuning: MountTuning): number {
  const value = tuning.readAheadKb ?? 1024
  if (!Number.isSafeInteger(value) || value < 0 || value > 65536) throw new RangeError(`readAheadKb must be a whole number of KiB from 0 to 65536, got ${value}`)
  return value
}

/** Whether the kernel checks permissions on a mount so tuned (`default_permissions`), rather than the router. */
export function kernelChecks(tuning: MountTuning): boolean {
  const p = tuning.permissions ?? (tuning.allowOther ? 'kernel' : 'facet')
  if (p !== 'facet' && p !== 'kernel') throw new RangeError(`permissions must be 'facet' or 'kernel', got '${String(p)}'`)
  return p === 'kernel'
}

/** The blocking lock waits a mount allows at once (see {@link MountTuning.lockWaits}). */
export function lockWaits(tuning: MountTuning): number {
  const value = tuning.lockWaits ?? 4
  if (!Number.isSafeInteger(value) || value < 0 || value > 32) throw new RangeError(`lockWaits must be a whole number from 0 to 32, got ${value}`)
  return value
}

function workers(value: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > 64) throw new RangeError(`workers must be a whole number from 1 to 64, got ${value}`)
  return value
}

/**
 * Turns {@link MountTuning} into the options object fuse-napi's `Fuse` constructor takes.
 *
 * `default_permissions` is on with `permissions: 'kernel'`, the default with `allowOther`;
 * else the router checks modes and owners itself (see {@link MountTuning.permissions}). It never sets `kernel_cache` nor
 * `auto_cache`: a rendered view file can change without its size or time changing, so
 * the page cache is dropped on open unless the mount keeps it for a handle. fuse-napi's
 * own per-call timer is kept as a backstop behind the adapter's guard, except for `lock`
 * and `flock`, whose blocking waits must outlast it. `nullpath_ok`
 * spares libfuse building a path for calls on a handle (read, write, flush, fsync,
 * release): the handle says which file.
 */
export function fuseMountOptions(tuning: MountTuning = {}): Record<string, unknown> {
  const fsname = tuning.fsname ?? 'facetfs'
  if (!NAME.test(fsname)) throw new RangeError(`fsname may hold only letters, digits and ._- , got '${fsname}'`)
  const opts: Record<string, unknown> = {
    fsname,
    subtype: 'facet',
    maxRead: bytes('maxRead', tuning.maxRead ?? 1 << 20),
    attrTimeout: seconds('attrTimeout', tuning.attrTimeout ?? 0),
    entryTimeout: seconds('entryTimeout', tuning.entryTimeout ?? 1),
    defaultPermissions: kernelChecks(tuning),
    maxConcurrency: Math.min(64, workers(tuning.workers ?? defaultWorkers()) + lockWaits(tuning)),
    // a blocking lock waits as long as the holder holds: only the adapter's guard times out the others
    timeout: { default: BINDING_TIMEOUT_MS, lock: false, flock: false },
    nullPathOk: true,
  }
  if (tuning.allowOther) opts.allowOther = true
  if (tuning.autoUnmount ?? true) opts.autoUnmount = true
  if (tuning.debug) opts.debug = true
  return opts
}
