import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { basename, dirname, join, relative, resolve } from 'node:path'
import type { Command } from 'commander'
import type { Shared } from '../shared.ts'

interface InitOptions {
  name?: string
  facetfs?: string
  cwd?: string
}

/** Options for {@link scaffold}. */
export interface ScaffoldOptions {
  /** The package name. @default the folder's name, made a valid npm name */
  name?: string
  /** The `facetfs` dependency, e.g. `file:../facetfs-0.1.0.tgz`. @default `FACET_INIT_FACETFS`, else `^` and this package's version */
  facetfs?: string
}

/** The package.json of this running copy of facetfs. */
interface Manifest {
  version: string
  peerDependencies: Record<string, string>
  devDependencies: Record<string, string>
}

/** The files {@link scaffold} writes besides package.json, as paths in the new project; `templates/plugin` holds them. */
async function templateFiles(root: string, under = ''): Promise<string[]> {
  const files: string[] = []
  for (const entry of await readdir(join(root, under), { withFileTypes: true })) {
    const rel = under ? `${under}/${entry.name}` : entry.name
    if (entry.isDirectory()) files.push(...(await templateFiles(root, rel)))
    else files.push(rel)
  }
  return files.sort()
}

/** npm publishes no file named `.gitignore`, so the template holds it as `gitignore`. */
const target = (rel: string) => (rel === 'gitignore' ? '.gitignore' : rel)

/** Makes `text` a valid npm package name: lower case, `a-z0-9-._` only, no leading dot or underscore. */
export function packageName(text: string): string {
  const name = text
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+|-+$/g, '')
  return name || 'facet-plugin'
}

/**
 * Writes a plugin project into `dir` (created when missing): package.json depending on
 * facetfs, tsconfig.json, `src/view.ts` (a read-write collection over a JSON file,
 * checked with a zod schema), `facet.config.ts` mounting it at `/notes`, a test that runs
 * the conformance suite of `facetfs/testing` on it, a README and a .gitignore.
 * Refuses, writing nothing, when any of those files exists. Returns the paths written.
 */
export async function scaffold(dir: string, options: ScaffoldOptions = {}): Promise<string[]> {
  const require = createRequire(import.meta.url)
  const manifestFile = require.resolve('facetfs/package.json')
  const manifest = require(manifestFile) as Manifest
  const templates = join(dirname(manifestFile), 'templates', 'plugin')
  const files = await templateFiles(templates)
  const writes = ['package.json', ...files.map(target)]
  const taken = (await Promise.all(writes.map(async f => ((await exists(join(dir, f))) ? f : undefined)))).filter(f => f !== undefined)
  if (taken.length > 0) throw new Error(`${dir} already has ${taken.join(', ')}; nothing was written`)

  const name = options.name ?? packageName(basename(resolve(dir)))
  const pkg = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: { test: 'tsc && vitest run', up: 'facet up', dev: 'facet dev' },
    dependencies: {
      facetfs: options.facetfs ?? process.env.FACET_INIT_FACETFS ?? `^${manifest.version}`,
      zod: manifest.devDependencies.zod,
    },
    devDependencies: {
      '@types/node': manifest.devDependencies['@types/node'],
      typescript: manifest.devDependencies.typescript,
      vitest: manifest.peerDependencies.vitest,
    },
  }
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n')
  for (const rel of files) {
    const text = (await readFile(join(templates, rel), 'utf8')).replaceAll('{{name}}', name)
    await mkdir(dirname(join(dir, target(rel))), { recursive: true })
    await writeFile(join(dir, target(rel)), text)
  }
  return writes
}

/** Adds `facet init [DIR]`: scaffolds a plugin project that depends on facetfs and passes its own test. */
export function register(program: Command, shared: Shared): void {
  program
    .command('init')
    .description('make a plugin project: a view over a JSON file, its config, and a test running the conformance suite')
    .argument('[dir]', 'the folder to make it in, created when missing (default: the working folder)')
    .option('--name <name>', 'the package name (default: the folder name)')
    .option('--facetfs <spec>', 'the facetfs dependency, e.g. file:../facetfs-0.1.0.tgz (default: FACET_INIT_FACETFS, else this version)')
    .action(async (dirArg: string | undefined, options: InitOptions) => {
      const cwd = options.cwd ?? process.cwd()
      const dir = resolve(cwd, dirArg ?? '.')
      let written: string[]
      try {
        written = await scaffold(dir, { ...(options.name ? { name: options.name } : {}), ...(options.facetfs ? { facetfs: options.facetfs } : {}) })
      } catch (err) {
        throw new shared.CliError(`cannot init: ${err instanceof Error ? err.message : String(err)}`)
      }
      const where = relative(cwd, dir) || '.'
      await shared.print(
        `Made a FacetFS plugin project in ${dir}: ${written.join(', ')}\n\nNext:\n` +
          (where === '.' ? '' : `  cd ${where}\n`) +
          '  npm install\n  npm test        type check, then the conformance suite on src/view.ts\n  npx facet up    mount it on ./mnt until Ctrl-C\n',
      )
    })
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file)
    return true
  } catch {
    return false
  }
}
