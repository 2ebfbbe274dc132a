/** Kernel cache and transfer settings of a FUSE mount; each applies to the whole mount. */
export interface MountTuning {
  /**
   * Seconds the kernel trusts a file's attributes (size, mode, times) before asking
   * again. A record changed outside FacetFS shows its new size in `stat` after at most
   * this long; its content is fresh on the next open regardless (the page cache is
   * dropped on open, and a read past the cached size re-checks it). 0.1 s keeps the
   * attributes a `lookup` returned for the `stat` that follows it, so `ls -l` costs one
   * round trip per entry instead of two.
   * @default 0.1
   */
  attrTimeout?: number
  /**
   * Seconds the kernel trusts a name → file lookup. Lookups past it are re-checked; a
   * file's attributes are still re-read per `attrTimeout`, so this only delays noticing
   * a name that vanished or changed kind outside FacetFS.
   * @default 1
   */
  entryTimeout?: number
  /** The largest write request, in bytes; writes are split into requests of this size. @default 131072 */
  maxWrite?: number
  /** The largest read request, in bytes. @default 131072 */
  maxRead?: number
  /** The name `df` and `/proc/mounts` show in the source column; letters, digits, `._-` only. @default 'facetfs' */
  fsname?: string
  /** Lets other users than the one mounting in (needs `user_allow_other` in `/etc/fuse.conf` for non-root). @default false */
  allowOther?: boolean
  /** Has `fusermount` unmount the folder when this process dies, even by SIGKILL. @default true */
  autoUnmount?: boolean
  /** Makes libfuse print every request to stderr. @default false */
  debug?: boolean
}

const NAME = /^[A-Za-z0-9._-]+$/

function seconds(name: string, value: number): string {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a number of seconds >= 0, got ${value}`)
  return String(value)
}

function bytes(name: string, value: number): string {
  if (!Number.isSafeInteger(value) || value < 4096 || value > 1 << 20) throw new RangeError(`${name} must be a byte count from 4096 to 1048576, got ${value}`)
  return String(value)
}

/**
 * Builds the libfuse `-o` options of a mount as one comma-separated list.
 *
 * It always includes `big_writes` (libfuse 2 splits writes into 4 KiB requests without
 * it), `max_write`/`max_read`, `atomic_o_trunc` (an `O_TRUNC` open reaches the file's
 * handle instead of a separate truncate, so a view can buffer the new content), and
 * explicit `attr_timeout`/`entry_timeout`/`negative_timeout` (fuse-native drops a `0`
 * timeout and libfuse then uses 1 s). It never includes `kernel_cache` nor `auto_cache`:
 * a rendered view file can change without its size or time changing, so the page cache
 * is dropped on every open. `use_ino` is left off so `st_ino` stays unique across mounts.
 */
export function mountOptionList(tuning: MountTuning = {}): string[] {
  const fsname = tuning.fsname ?? 'facetfs'
  if (!NAME.test(fsname)) throw new RangeError(`fsname may hold only letters, digits and ._- , got '${fsname}'`)
  const list = [
    `fsname=${fsname}`,
    'subtype=facet',
    'big_writes',
    `max_write=${bytes('maxWrite', tuning.maxWrite ?? 131072)}`,
    `max_read=${bytes('maxRead', tuning.maxRead ?? 131072)}`,
    'atomic_o_trunc',
    `attr_timeout=${seconds('attrTimeout', tuning.attrTimeout ?? 0.1)}`,
    `entry_timeout=${seconds('entryTimeout', tuning.entryTimeout ?? 1)}`,
    'negative_timeout=0',
  ]
  if (tuning.allowOther) list.push('allow_other')
  if (tuning.autoUnmount ?? true) list.push('auto_unmount')
  if (tuning.debug) list.push('debug')
  return list
}

/**
 * Turns {@link MountTuning} into the options object fuse-native's `Fuse` constructor takes.
 *
 * fuse-native has no field for most libfuse options, but it joins its own list without
 * escaping (`'-o' + ['fsname=' + opts.fsname, …].join(',')`). So the whole list from
 * {@link mountOptionList} travels in the `fsname` field, minus its `fsname=` prefix,
 * and fuse-native's resulting string is exactly `-o` + that list. This is the one place
 * that relies on it; a test checks the string fuse-native builds. fuse-native's own
 * 15 s per-call timer is turned off (`timeout: false`): the adapter's guard answers
 * first, and one timer per call is enough.
 */
export function fuseNativeOptions(tuning: MountTuning = {}): Record<string, unknown> {
  const list = mountOptionList(tuning)
  return { fsname: list.join(',').slice('fsname='.length), timeout: false }
}
