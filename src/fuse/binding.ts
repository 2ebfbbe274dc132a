import { createRequire } from 'node:module'

/** What a fuse-napi handler answers with: `0`, a byte count, or a negative errno, then the op's values. */
export type FuseCallback = (code: number, ...values: unknown[]) => void

/** The caller of the FUSE request being handled, as fuse-napi's `context()` reports it. */
export interface FuseRequestContext {
  readonly uid: number
  readonly gid: number
  readonly pid: number
  readonly umask: number
  /** The open file the request is about, when it is about one: `lockOwner` names who locks, `flockRelease` marks the last close of a file that had a `flock`. */
  readonly fileInfo?: { readonly lockOwner: number | bigint; readonly flockRelease: boolean } | null
}

/** The part of a fuse-napi `Fuse` instance the adapter uses. */
export interface FuseInstance {
  readonly mnt: string
  mount(cb: (err: Error | null) => void): void
  unmount(cb: (err: Error | null) => void): void
  _fuseOptions(): string
  /** The caller of the request being handled; `null` outside a handler. */
  context(): FuseRequestContext | null
  /** Drops the kernel's cached entry for `path` (never from inside a handler: `EDEADLK`). */
  invalidateEntry(path: string, cb: (err: Error | null) => void): void
}

/** fuse-napi's `Fuse` class, as far as the adapter uses it. */
export interface FuseClass {
  new (mountpoint: string, ops: object, opts?: Record<string, unknown>): FuseInstance
  prototype: FuseInstance
  /** fuse-napi's `UTIME_NOW` nanoseconds value. */
  readonly UTIME_NOW: number
  /** fuse-napi's `UTIME_OMIT` nanoseconds value. */
  readonly UTIME_OMIT: number
}

/**
 * Thrown when FUSE cannot be used on this machine: fuse-napi or `libfuse3.so.3` fails to
 * load, or `/dev/fuse` is missing. The message starts with `FUSE unavailable:` and says
 * how to fix it; everything that does not mount (GraphQL, the CLI's in-process commands)
 * keeps working.
 */
export class FuseUnavailableError extends Error {
  override readonly name = 'FuseUnavailableError'
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`FUSE unavailable: ${reason}`, options)
  }
}

const require = createRequire(import.meta.url)

/**
 * Loads fuse-napi on first use. Its prebuilt binding links the system's `libfuse3.so.3`
 * and throws at load time without it (and on a Node without a prebuild), so nothing
 * imports it eagerly; a failure becomes a {@link FuseUnavailableError} naming the package
 * to install and the loader's reason.
 * @param load - how to load the module. @default `require('fuse-napi')`
 */
export function loadFuse(load: () => unknown = () => require('fuse-napi')): FuseClass {
  try {
    return load() as FuseClass
  } catch (err) {
    const cause = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new FuseUnavailableError(`install fuse3 (apt-get install fuse3) and run on Node 22 or 24 — ${cause}`, { cause: err })
  }
}
