import type { Mount } from './vfs/mounts.ts'

/** A FacetFS configuration, as a `facet.config.ts` module exports it by default. */
export interface FacetConfig {
  /** Mounts by mount point, e.g. `{ '/notes': memoryMount() }`. */
  mounts: Record<string, Mount>
}

/** Declares a configuration. Returns its argument; it exists for types. */
export function defineConfig(config: FacetConfig): FacetConfig {
  return config
}
