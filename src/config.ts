import type { MountTuning } from './fuse/options.ts'
import type { Mount } from './vfs/mounts.ts'

/** A FacetFS configuration, as a `facet.config.ts` module exports it by default. */
export interface FacetConfig {
  /** Mounts by mount point, e.g. `{ '/notes': memoryMount() }`. */
  mounts: Record<string, Mount>
  /** How `facet up` and `facet dev` mount the tree with FUSE, e.g. `{ allowOther: true }`; command-line flags win. */
  fuse?: MountTuning
}

/** Declares a configuration. Returns its argument; it exists for types. */
export function defineConfig(config: FacetConfig): FacetConfig {
  return config
}
