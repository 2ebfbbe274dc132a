import { loadFuse } from '../../src/fuse/binding.ts'
import { fuseMountOptions } from '../../src/fuse/options.ts'
import { bareHandlers, type BareCounts, type BareHandlerOptions, type BareTree } from './bare-tree.ts'

export type { BareCounts, BareHandlerOptions, BareTree } from './bare-tree.ts'

/** libfuse 3 capability bits (`fuse_common.h`) a bare mount may ask for or drop at init. */
export const FUSE_CAP = {
  ASYNC_READ: 1 << 0,
  READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  WRITEBACK_CACHE: 1 << 16,
  PARALLEL_DIROPS: 1 << 18,
} as const

/** What the kernel and libfuse settled on at init, as fuse-napi's `initWithConfig` reports it. */
export interface BareConnection {
  protoMajor: number
  protoMinor: number
  maxWrite: number
  maxRead: number
  maxReadahead: number
  maxBackground: number
  capable: number
  want: number
}

/** Options of {@link mountBareFuse}. */
export interface BareFuseOptions extends BareHandlerOptions {
  /** fuse-napi constructor options. @default the adapter's own, `fuseMountOptions()` */
  fuseOptions?: Record<string, unknown>
  /** {@link FUSE_CAP} bits to ask for at init, on top of libfuse's defaults (those the kernel lacks are left out). @default 0 */
  want?: number
  /** {@link FUSE_CAP} bits to drop at init. @default 0 */
  unwant?: number
  /** The largest write request to take, in bytes (at init). @default libfuse's, 1 MiB */
  maxWrite?: number
}

/** A mounted bare handler. */
export interface BareMount {
  readonly mountpoint: string
  /** Calls that reached the handler since mount, per operation. */
  readonly counts: BareCounts
  /** What init settled on, where the binding reports it. */
  readonly connection?: BareConnection
  unmount(): Promise<void>
}

/**
 * Mounts the bare handler ({@link bareHandlers}) on fuse-napi (FUSE 3), by default with the
 * very options the adapter mounts with (`fuseMountOptions()`: request workers, max_read,
 * timeouts, default_permissions, nullpath_ok), so FacetFS rows and this floor differ only
 * by what FacetFS does per call.
 */
export async function mountBareFuse(mountpoint: string, tree: BareTree, options: BareFuseOptions = {}): Promise<BareMount> {
  const Fuse = loadFuse()
  const { ops, counts } = bareHandlers(tree, options)
  // with nullPathOk, fuse-napi takes utimens only in its handle-passing form
  if (ops.utimens) {
    delete ops.utimens
    ops.utimensWithHandle = (_path: string | null, _fd: unknown, _atime: unknown, _mtime: unknown, cb: (code: number) => void): void => cb(0)
  }
  const want = options.want ?? 0
  const unwant = options.unwant ?? 0
  let connection: BareConnection | undefined
  ops.initWithConfig = (conn: BareConnection, cb: (code: number, config?: { want?: number; maxWrite?: number }) => void): void => {
    connection = { ...conn }
    const config: { want?: number; maxWrite?: number } = {}
    const wanted = ((conn.want | (want & conn.capable)) & ~unwant) >>> 0
    if (wanted !== conn.want) config.want = connection.want = wanted
    if (options.maxWrite !== undefined) config.maxWrite = connection.maxWrite = options.maxWrite
    cb(0, config)
  }
  const fuse = new Fuse(mountpoint, ops, options.fuseOptions ?? fuseMountOptions())
  await new Promise<void>((resolve, reject) => fuse.mount(err => (err ? reject(err) : resolve())))
  let mounted = true
  return {
    mountpoint,
    counts,
    get connection() {
      return connection
    },
    unmount: () => {
      if (!mounted) return Promise.resolve()
      mounted = false
      return new Promise<void>((resolve, reject) => fuse.unmount(err => (err ? reject(err) : resolve())))
    },
  }
}
