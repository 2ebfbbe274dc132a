import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Chain, ChainLockedError, chainMount, type ChainBackend } from '../chain/index.ts'
import { facetHome, type Identity } from '../crypto/identity.ts'
import { silentLogger, type Logger } from '../vfs/log.ts'
import { createVfs, type Vfs } from '../vfs/vfs.ts'
import { DatasetStore } from './store.ts'

/** Where a store's folder sits in the private VFS of {@link openDatasetStore}. */
const BASE = '/store'

/** Options for {@link openDatasetStore}. */
export interface OpenDatasetStoreOptions {
  /** The unlocked identity that reads the chain (and signs versions, unless `readOnly`). */
  identity: Identity
  /** The FacetFS home. @default facetHome() */
  home?: string
  /** The chain's name under `<home>/chains`. @default 'datasets' */
  chain?: string
  /** An explicit log path instead. */
  path?: string
  /** Blocks elsewhere, e.g. `postgresBackend({ url })`, so machines share one store. */
  backend?: ChainBackend
  /** Open without the writer lock (beside a writer), following what it appends. @default false */
  readOnly?: boolean
  /** Accept a rolled-back log (see `ChainOptions.allowRollback`). @default false */
  allowRollback?: boolean
  logger?: Logger
}

/** An open dataset store, with the chain VFS it lives in. */
export interface OpenDatasetStore {
  readonly store: DatasetStore
  readonly vfs: Vfs
  readonly chain: Chain
  /** Calls `listener` whenever another process's blocks changed the store (read-only opens). */
  onChange(listener: () => void): () => void
  close(): Promise<void>
}

/**
 * Opens the dataset store kept in chain `<home>/chains/datasets.chain` (made on first use),
 * through the chain's public mount: the store is a folder of that chain's tree.
 */
export async function openDatasetStore(options: OpenDatasetStoreOptions): Promise<OpenDatasetStore> {
  const home = options.home ?? facetHome()
  const where: string | ChainBackend = options.backend ?? options.path ?? join(home, 'chains', `${options.chain ?? 'datasets'}.chain`)
  if (typeof where === 'string') await mkdir(dirname(where), { recursive: true, mode: 0o700 })
  const chainOptions = { identity: options.identity, home, logger: options.logger ?? silentLogger, allowRollback: options.allowRollback === true }
  let chain: Chain
  if (options.readOnly) {
    // a first reader makes the store, unless a writer holds it (and so has made it)
    await openDatasetStore({ ...options, readOnly: false }).then(
      o => o.close(),
      err => {
        if (!(err instanceof ChainLockedError)) throw err
      },
    )
    chain = await Chain.open(where, { ...chainOptions, readOnly: true })
  } else {
    chain = await Chain.openOrCreate(where, chainOptions)
  }
  const mount = chainMount(chain, { name: 'datasets-store', history: false, follow: options.readOnly === true })
  const vfs = createVfs({ mounts: { [BASE]: mount }, logger: options.logger ?? silentLogger })
  let store: DatasetStore
  try {
    store = await DatasetStore.open(vfs, BASE, options.readOnly ? {} : { identity: options.identity, create: true })
  } catch (err) {
    await vfs.close()
    throw err
  }
  return {
    store,
    vfs,
    chain,
    onChange(listener) {
      return vfs.watch(BASE, () => {
        store.chunks.refresh()
        listener()
      })
    },
    close: () => vfs.close(),
  }
}
