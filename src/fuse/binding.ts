import { createRequire } from 'node:module'

/** What a fuse-native handler answers with: `0`, a byte count, or a negative errno, then the op's values. */
export type FuseCallback = (code: number, ...values: unknown[]) => void

/** The part of a fuse-native `Fuse` instance the adapter uses. */
export interface FuseInstance {
  readonly mnt: string
  mount(cb: (err: Error | null) => void): void
  unmount(cb: (err: (Error & { unmountFailure?: boolean }) | null) => void): void
  _fuseOptions(): string
  /** fuse-native's own `fgetattr` dispatcher; the adapter replaces it on its instance (see `ops.ts`). */
  _op_fgetattr(signal: (code: number, stat?: Uint32Array) => void, path: string, fd: number): void
}

/** fuse-native's `Fuse` class, as far as the adapter uses it. */
export interface FuseClass {
  new (mountpoint: string, ops: object, opts?: Record<string, unknown>): FuseInstance
  prototype: FuseInstance
}

/**
 * Thrown when FUSE cannot be used on this machine: fuse-native or `libfuse.so.2` fails to
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
 * Loads fuse-native on first use. Its prebuilt binding links `libfuse.so.2` and throws
 * at load time without it, so nothing imports it eagerly; a failure becomes a
 * {@link FuseUnavailableError} naming the package to install and the loader's reason.
 * @param load - how to load the module. @default `require('fuse-native')`
 */
export function loadFuseNative(load: () => unknown = () => require('fuse-native')): FuseClass {
  try {
    return load() as FuseClass
  } catch (err) {
    const cause = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new FuseUnavailableError(`install libfuse2 (apt-get install libfuse2) — ${cause}`, { cause: err })
  }
}
