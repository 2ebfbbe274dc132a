import type { ChainBackend } from '../chain/backend.ts'
import { resolveChainPath } from '../chain/paths.ts'
import { postgresBackend } from '../chain/postgres.ts'
import { postgresLocation } from '../chain/postgres-location.ts'

/** Where the demo keeps its `/files` chain: a log file, or a backend such as PostgreSQL. */
export type FilesStoreLocation = { path: string } | { backend: ChainBackend }

const POSTGRES_URL = /^postgres(?:ql)?:\/\//i

/** True when `store` is a PostgreSQL connection URL (`postgres://…` or `postgresql://…`) rather than a path. */
export function isPostgresUrl(store: string): boolean {
  return POSTGRES_URL.test(store)
}

/**
 * Reads a `--files-store` value: a PostgreSQL URL becomes a postgres backend keeping the
 * blocks in its `facet_chain_blocks` table (created on first use; nothing connects until
 * the chain opens), written by every `facet up` on it at once (shared writers, each with
 * its own identity among the chain's writers), anything else the path of a log file, as given. Throws when a URL does
 * not parse or a path is empty.
 */
export function filesStoreLocation(store: string): FilesStoreLocation {
  if (!isPostgresUrl(store)) {
    if (store === '') throw new Error('no store given (expected a log file path or postgres://HOST/DB)')
    return { path: store }
  }
  try {
    new URL(store)
  } catch {
    throw new Error('invalid PostgreSQL URL (expected postgres://[USER[:PASSWORD]@]HOST[:PORT]/DB)')
  }
  return { backend: postgresBackend({ url: store, sharedWriters: true }) }
}

/** `store` as messages show it: a URL's password masked. */
export function describeFilesStore(store: string): string {
  if (!isPostgresUrl(store)) return store
  return store.replace(/^([a-z]+:\/\/[^:@/]*):[^@/]*@/i, '$1:***@')
}

/** Thrown when the `/files` store the demo was told to use cannot be opened; the message names the store (a URL's password masked) and why. */
export class FilesStoreError extends Error {
  override readonly name = 'FilesStoreError'
  constructor(
    /** The store as given. */
    readonly store: string,
    cause: unknown,
  ) {
    super(`cannot open /files in ${describeFilesStore(store)}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
}

/**
 * The chain a command's CHAIN argument names, and how messages show it: a PostgreSQL URL
 * (its table from `?table=`) as a backend (`sharedWriters` to write among mounted nodes),
 * else a log file or a chain name under `home`. `fail` makes the error of a URL that does
 * not parse, from the chain as shown and why.
 */
export function chainArgument(arg: string, home: string, fail: (shown: string, why: string) => Error, options: { sharedWriters?: boolean } = {}): { where: string | ChainBackend; shown: string } {
  if (!isPostgresUrl(arg)) {
    const path = resolveChainPath(arg, home)
    return { where: path, shown: path }
  }
  const shown = describeFilesStore(arg)
  try {
    return { where: postgresBackend({ ...postgresLocation(arg), ...(options.sharedWriters ? { sharedWriters: true } : {}) }), shown }
  } catch (err) {
    throw fail(shown, (err as Error).message)
  }
}
