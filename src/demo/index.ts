import { createRequire } from 'node:module'
import type { FacetConfig } from '../config.ts'
import { createLogger, silentLogger, type Logger } from '../vfs/log.ts'
import { memoryMount } from '../vfs/memory.ts'
import { lazyMount } from '../vfs/lazy.ts'
import type { Mount } from '../vfs/mounts.ts'
import { can, type OpContext } from '../vfs/node.ts'
import { defineView, dir, file, type View } from '../views/view.ts'

/** One record of the demo's built-in list. */
export interface Planet {
  name: string
  /** Position from the Sun, 1 for Mercury. */
  order: number
  kind: 'rocky' | 'gas giant' | 'ice giant'
  rings: boolean
}

/** The built-in list the `/hello` view renders. */
export const PLANETS: readonly Planet[] = [
  { name: 'mercury', order: 1, kind: 'rocky', rings: false },
  { name: 'venus', order: 2, kind: 'rocky', rings: false },
  { name: 'earth', order: 3, kind: 'rocky', rings: false },
  { name: 'mars', order: 4, kind: 'rocky', rings: false },
  { name: 'jupiter', order: 5, kind: 'gas giant', rings: true },
  { name: 'saturn', order: 6, kind: 'gas giant', rings: true },
  { name: 'uranus', order: 7, kind: 'ice giant', rings: true },
  { name: 'neptune', order: 8, kind: 'ice giant', rings: true },
]

const HELLO_README = `This is /hello, a read-only example view (src/demo).
Every file here is rendered from a built-in list of planets when it is read;
nothing is stored on disk. Writing here fails with "Read-only file system".
/scratch, next to it, is writable.
`

const SCRATCH_README = `This is /scratch, a folder held in memory: create, edit, rename and
delete anything here. Its content lives in the facet process and is lost
when that process exits.
`

/** The demo's read-only example view: `README.txt`, `summary.txt` and one JSON file per planet. */
export const helloView = defineView((planets: readonly Planet[] = PLANETS): View => ({
  name: 'hello',
  root: dir({
    'README.txt': file(HELLO_README),
    'summary.txt': file(() => summary(planets)),
    planets: dir(() => Object.fromEntries(planets.map(p => [`${p.name}.json`, file(() => JSON.stringify(p, null, 2) + '\n')]))),
  }),
}))

function summary(planets: readonly Planet[]): string {
  const count = (kind: Planet['kind']) => planets.filter(p => p.kind === kind).length
  const ringed = planets.filter(p => p.rings).map(p => p.name)
  return (
    `${planets.length} planets: ${count('rocky')} rocky, ${count('gas giant')} gas giants, ${count('ice giant')} ice giants\n` +
    `with rings: ${ringed.join(', ')}\n`
  )
}

/** A memory mount holding only a `README.txt` that says what the folder is. */
export async function scratchMount(): Promise<Mount> {
  const mount = memoryMount({ name: 'scratch' })
  const ctx: OpContext = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, logger: silentLogger }
  const root = mount.root
  if (!can.create(root)) throw new Error('a memory mount root must support create')
  const readme = await root.create('README.txt', 0o644, ctx)
  if (!can.write(readme)) throw new Error('a memory file must support write')
  await readme.write(0, Buffer.from(SCRATCH_README), ctx)
  return mount
}

export { DEMO_MOUNTS } from './mounts.ts'

/** Options for {@link createDemoConfig}. */
export interface DemoOptions {
  /** Mount the encrypted chain at `/files` when a passphrase can be had. @default true */
  chain?: boolean
  /** The FacetFS home the chain and its identity live in. @default `FACET_HOME` or ~/.facet */
  home?: string
  /** A file whose first line is the identity's passphrase. */
  passphraseFile?: string
  /** Ask for the passphrase on the terminal when none is set (only `facet up` does). @default false */
  prompt?: boolean
  /** Receives one line for each demo mount left out, and why (a missing passphrase only when `prompt` is set). */
  note?: (text: string) => void
  /** Where the chain at `/files` warns: a torn tail cut at open, a first-use pin, an accepted rollback. @default a pino logger on stderr */
  logger?: Logger
  /** Open `/files` even when its log is older than the one seen here, or its last block was damaged since (`facet up --allow-rollback`). @default false */
  allowRollback?: boolean
  /**
   * Keep `/files` in this log file, or in PostgreSQL at this `postgres://` URL (see
   * `filesStoreLocation` in files-store.ts), instead of `<home>/chains/files.chain`. A
   * store named here that cannot be opened makes {@link createDemoConfig} throw
   * `FilesStoreError` rather than leave `/files` out.
   */
  filesStore?: string
}

/**
 * Builds the built-in demo `facet` uses when there is no config: a read-only example
 * view at `/hello`, a writable memory folder at `/scratch`, an embedded PostgreSQL
 * (PGlite, opened on first use, and left out when `@electric-sql/pglite` is not installed)
 * at `/db`, FacetFS's own figures at `/proc`, and, when a passphrase is set or typed, the
 * encrypted chain `<home>/chains/files.chain` (or `options.filesStore`) at `/files` (see {@link DEMO_MOUNTS}).
 * Only the CLI loads it: the package's own entry points never import the plugins it uses.
 */
export async function createDemoConfig(options: DemoOptions = {}): Promise<FacetConfig> {
  const mounts: Record<string, Mount> = {
    '/hello': helloView(PLANETS),
    '/scratch': await scratchMount(),
  }
  if (installed('@electric-sql/pglite')) mounts['/db'] = lazyMount('db', async () => (await import('../../plugins/sql/index.ts')).createDemoSql())
  else if (options.prompt) options.note?.('/db (embedded PostgreSQL) is not mounted: install @electric-sql/pglite beside facetfs to have it')
  mounts['/proc'] = (await import('../../plugins/proc/index.ts')).procView()
  let identity: import('../crypto/identity.ts').Identity | undefined
  const files = options.chain === false ? undefined : await demoChain(options, id => (identity = id))
  if (files && identity) {
    // one store, opened on first use, behind both the tree and the typed GraphQL fields
    let opening: ReturnType<typeof demoDatasets> | undefined
    const open = (): ReturnType<typeof demoDatasets> => (opening ??= demoDatasets(identity!, options))
    const { datasetsGraphQL } = await import('../datasets/graphql.ts')
    mounts['/datasets'] = { ...lazyMount('datasets', () => open().then(d => d.mount)), graphql: datasetsGraphQL(() => open().then(d => d.store)) }
  }
  if (files) mounts['/files'] = files
  return { mounts }
}

/** True when `name` resolves from here; PGlite is an optional peer of facetfs. */
function installed(name: string): boolean {
  try {
    createRequire(import.meta.url).resolve(name)
    return true
  } catch {
    return false
  }
}

async function demoChain(options: DemoOptions, unlocked: (identity: import('../crypto/identity.ts').Identity) => void): Promise<Mount | undefined> {
  const canAsk = options.prompt === true && process.stdin.isTTY === true
  if (!options.passphraseFile && !process.env.FACET_PASSPHRASE && !canAsk) {
    if (options.prompt) options.note?.('/files (encrypted chain) is not mounted: set FACET_PASSPHRASE or pass --passphrase-file to open it')
    return undefined
  }
  const { facetHome, loadIdentity, createIdentity, readPublicIdentity } = await import('../crypto/identity.ts')
  const { resolvePassphrase } = await import('../crypto/passphrase.ts')
  const home = options.home ?? facetHome()
  let chainOptions: import('../chain/mount.ts').OpenChainMountOptions
  try {
    const exists = await readPublicIdentity('default', home).then(
      () => true,
      () => false,
    )
    const passphrase = await resolvePassphrase({
      passphraseFile: options.passphraseFile,
      confirm: !exists,
      prompt: exists ? "Passphrase for identity 'default' (opens /files): " : "New passphrase for identity 'default' (encrypts /files): ",
    })
    const identity = exists ? await loadIdentity('default', passphrase, home) : await createIdentity('default', passphrase, { home })
    unlocked(identity)
    chainOptions = { home, identity, logger: options.logger ?? createLogger(), allowRollback: options.allowRollback === true }
    if (options.filesStore === undefined) return await openFiles(chainOptions)
  } catch (err) {
    options.note?.(`/files (encrypted chain) is not mounted: ${err instanceof Error ? err.message : String(err)}`)
    return undefined
  }
  const { filesStoreLocation, FilesStoreError } = await import('./files-store.ts')
  try {
    return await openFiles({ ...chainOptions, ...filesStoreLocation(options.filesStore) })
  } catch (err) {
    throw new FilesStoreError(options.filesStore, err)
  }
}

/**
 * Opens `/files`; when a running `facet up` holds the writer lock, reads alongside it,
 * following its blocks. An identity the chain takes no blocks from (a contact it was shared
 * with) lets go of the writer lock at once, so the owner can go on writing, and follows too.
 */
async function openFiles(options: import('../chain/mount.ts').OpenChainMountOptions): Promise<Mount> {
  const { ChainLockedError, openChainMount } = await import('../chain/index.ts')
  let mount
  try {
    mount = await openChainMount(options)
  } catch (err) {
    if (!(err instanceof ChainLockedError)) throw err
    return await openChainMount({ ...options, readOnly: true, mount: { follow: true, readOnlyWhy: 'another FacetFS process holds /files read-write; this one reads alongside it, following its writes' } })
  }
  if (!mount.chain.readOnly) return mount
  await mount.dispose?.()
  return await openChainMount({ ...options, readOnly: true, mount: { follow: true } })
}

/** The dataset store `<home>/chains/datasets.chain`, read-only beside `facet dataset`, following its pushes. */
async function demoDatasets(identity: import('../crypto/identity.ts').Identity, options: DemoOptions) {
  const { openDatasetStore, datasetsMount } = await import('../datasets/index.ts')
  const { facetHome } = await import('../crypto/identity.ts')
  const opened = await openDatasetStore({ identity, home: options.home ?? facetHome(), readOnly: true, allowRollback: options.allowRollback === true })
  return { store: opened.store, mount: datasetsMount(opened.store, { onChange: l => opened.onChange(l), close: () => opened.close() }) as Mount }
}
