import { createRequire } from 'node:module'
import { fuseMountOptions } from '../../src/fuse/options.ts'
import type { BareMount } from './bare-fuse.ts'
import { bareHandlers, type BareHandlerOptions, type BareTree } from './bare-tree.ts'

/** The part of a fuse-native `Fuse` instance this baseline uses. */
interface FuseNativeInstance {
  mount(cb: (err: Error | null) => void): void
  unmount(cb: (err: Error | null) => void): void
  _fuseOptions(): string
}

interface FuseNativeClass {
  new (mountpoint: string, ops: object, opts?: Record<string, unknown>): FuseNativeInstance
}

const require = createRequire(import.meta.url)

/** The label of rows measured against this floor. */
export const BARE_FUSE_NATIVE = 'bare fuse-native (libfuse 2)'

/**
 * Loads fuse-native 2.2.6 (libfuse 2, the binding FacetFS ran on before fuse-napi). Its
 * N-API prebuild loads on Node 24 and links the system `libfuse.so.2`; throws when that
 * is missing (`apt-get install libfuse2`).
 */
export function loadFuseNative(): FuseNativeClass {
  return require('fuse-native') as FuseNativeClass
}

/** Says whether the fuse-native floor can run here, or why not. */
export function fuseNativeAvailability(): { ok: true } | { ok: false; reason: string } {
  try {
    loadFuseNative()
    return { ok: true }
  } catch (err) {
    return { ok: false, reason: `fuse-native floor skipped (apt-get install libfuse2; npm i -D fuse-native@2.2.6): ${(err as Error).message.split('\n')[0]}` }
  }
}

/**
 * The libfuse 2 `-o` list with the meaning of a fuse-napi options object (by default the
 * adapter's, `fuseMountOptions()`), plus what libfuse 2 needed to be on a par, as the
 * fuse-native adapter mounted: `big_writes` and `max_write` (else 4 KiB writes),
 * `atomic_o_trunc`, and explicit timeouts (fuse-native drops a `0` and libfuse then
 * uses 1 s). Request workers and `nullpath_ok` have no libfuse 2 option.
 */
export function fuseNativeOptionList(napi: Record<string, unknown> = fuseMountOptions()): string[] {
  const list = [
    `fsname=${String(napi.fsname ?? 'facetfs')}`,
    `subtype=${String(napi.subtype ?? 'facet')}`,
    'big_writes',
    'max_write=131072',
    `max_read=${Number(napi.maxRead ?? 131072)}`,
    'atomic_o_trunc',
    `attr_timeout=${Number(napi.attrTimeout ?? 1)}`,
    `entry_timeout=${Number(napi.entryTimeout ?? 1)}`,
    'negative_timeout=0',
  ]
  if (napi.defaultPermissions) list.push('default_permissions')
  if (napi.allowOther) list.push('allow_other')
  if (napi.autoUnmount) list.push('auto_unmount')
  if (napi.kernelCache) list.push('kernel_cache')
  return list
}

/**
 * Mounts the same bare handler as `mountBareFuse` on fuse-native (libfuse 2, one thread per
 * request from `fuse_loop_mt`), with {@link fuseNativeOptionList}. fuse-native has no field
 * for most libfuse options but joins its list unescaped, so the whole list travels in
 * `fsname` (as the fuse-native adapter did). `keepCache` and `readBuffer` are refused:
 * fuse-native's `open` answers a handle only, and it has no `readBuffer`.
 */
export async function mountBareFuseNative(mountpoint: string, tree: BareTree, options: BareHandlerOptions & { optionList?: string[] } = {}): Promise<BareMount> {
  if (options.keepCache) throw new Error('fuse-native cannot keep the page cache on open')
  if (options.readBuffer) throw new Error('fuse-native has no readBuffer')
  const Fuse = loadFuseNative()
  const { ops, counts } = bareHandlers(tree, options)
  const list = options.optionList ?? fuseNativeOptionList()
  const fuse = new Fuse(mountpoint, ops, { fsname: list.join(',').replace(/^fsname=/, ''), timeout: false })
  await new Promise<void>((resolve, reject) => fuse.mount(err => (err ? reject(err) : resolve())))
  let mounted = true
  return {
    mountpoint,
    counts,
    unmount: () => {
      if (!mounted) return Promise.resolve()
      mounted = false
      return new Promise<void>((resolve, reject) => fuse.unmount(err => (err ? reject(err) : resolve())))
    },
  }
}
