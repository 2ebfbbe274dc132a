import { createRequire, registerHooks } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'

/** True when this module runs from the TypeScript sources (a dev checkout) rather than from `dist/`. */
const FROM_SOURCE = import.meta.url.endsWith('.ts')

/** The `exports` condition that names a subpath's TypeScript source in package.json; a dev checkout resolves `facetfs` with it. */
export const SOURCE_CONDITION = 'facetfs-source'

const TSX_REGISTERED = Symbol.for('facetfs.tsx-registered')

let prepared: Promise<void> | undefined

/**
 * The file URL of each `facetfs` specifier (`facetfs`, `facetfs/sql`, …) in this running
 * copy of the package, read from its package.json `exports`: the TypeScript source in a
 * dev checkout, the compiled `dist/` file in an installed package.
 */
export function ownEntries(): Map<string, string> {
  const manifest = createRequire(import.meta.url).resolve('facetfs/package.json')
  const root = dirname(manifest)
  const { exports } = createRequire(import.meta.url)(manifest) as { exports: Record<string, string | Record<string, string>> }
  const entries = new Map<string, string>()
  for (const [subpath, target] of Object.entries(exports)) {
    const file = typeof target === 'string' ? target : FROM_SOURCE ? target[SOURCE_CONDITION] : target.default
    if (file) entries.set(subpath === '.' ? 'facetfs' : `facetfs/${subpath.slice(2)}`, pathToFileURL(join(root, file)).href)
  }
  return entries
}

/**
 * Makes configs loadable in this process, once: registers tsx (configs and the plugins
 * they import are TypeScript, with decorators and all) and a resolve hook that answers
 * `facetfs` and `facetfs/*` with this running copy of the package, from any importer.
 * So a config works from any folder, with or without a package.json or an installed
 * `facetfs`, and it always shares one `facetfs` (one `VfsError`, one logger) with the
 * CLI that loads it; its other imports resolve from its own folder as usual.
 */
export function prepareConfigLoading(): Promise<void> {
  return (prepared ??= prepare())
}

async function prepare(): Promise<void> {
  if (typeof registerHooks !== 'function') throw new Error(`loading a config needs Node 22.15 or later; this is Node ${process.version}`)
  const global = globalThis as { [TSX_REGISTERED]?: boolean }
  if (!global[TSX_REGISTERED]) {
    const { register } = await import('tsx/esm/api')
    register()
    global[TSX_REGISTERED] = true
  }
  const own = ownEntries()
  registerHooks({
    resolve(specifier, context, next) {
      const url = own.get(specifier)
      return url === undefined ? next(specifier, context) : { url, shortCircuit: true }
    },
  })
}
