import { dirname, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Command } from 'commander'
import type { FacetConfig } from '../../config.ts'
import type { Logger } from '../../vfs/log.ts'
import type { Vfs } from '../../vfs/vfs.ts'
import { prepareConfigLoading } from '../config-loader.ts'
import type { ConfigOptions, Shared } from '../shared.ts'
import { addServeOptions, DEFAULT_GRAPHQL, DEFAULT_MOUNT_DIR, serveGraphql, type Address } from './up.ts'

interface DevOptions extends ConfigOptions {
  mount?: string
  allowOther?: boolean
  /** The GraphQL address; `false` with `--no-graphql`; undefined when neither is given. */
  graphql?: Address | false
}

/** What one reload did. */
export interface ReloadResult {
  /** Mount points swapped in place with `vfs.replace`. */
  replaced: string[]
  /** Mount points new in the config. */
  added: string[]
  /** Mount points gone from the config. */
  removed: string[]
}

/** Options for {@link createDevServer}. */
export interface DevServerOptions {
  /** The absolute path of the config file to load and watch. */
  configFile: string
  /** Where the VFS logs. */
  logger?: Logger
  /** Checks the loaded module's default export; the CLI passes its `checkConfig`. @default a check that `mounts` is an object */
  check?: (value: unknown, file: string) => FacetConfig
  /** Called after each reload, or with the error when loading the changed files failed (the old mounts stay). */
  onReload?: (result: ReloadResult | Error) => void
  /** Milliseconds to wait for more changes before reloading. @default 100 */
  debounceMs?: number
}

/** A live VFS that reloads its config when the config or any file it imports changes. */
export interface DevServer {
  readonly vfs: Vfs
  /** The project files the config imports (without node_modules), watched for changes. */
  readonly files: ReadonlySet<string>
  /** Reloads now; resolves with what changed. Throws when the config fails to load (the old mounts stay). */
  reload(): Promise<ReloadResult>
  /** Resolves once the file watcher has scanned its files. */
  ready(): Promise<void>
  /** Stops watching and closes the VFS. */
  close(): Promise<void>
}

/**
 * Loads `file` and everything it imports in a fresh module graph (tsx's `tsImport`
 * uses a new namespace per call), so an edited plugin file is really re-read.
 * Returns the config and the project files that were imported.
 */
export async function loadFresh(file: string, check: (value: unknown, file: string) => FacetConfig): Promise<{ config: FacetConfig; files: Set<string> }> {
  await prepareConfigLoading()
  const { tsImport } = await import('tsx/esm/api')
  const files = new Set<string>([file])
  const mod = (await tsImport(pathToFileURL(file).href, {
    parentURL: import.meta.url,
    onImport: url => {
      if (!url.startsWith('file:') || url.includes('/node_modules/')) return
      files.add(fileURLToPath(url.replace(/\?.*$/, '')))
    },
  })) as { default?: unknown }
  const value = (mod.default as { __esModule?: boolean; default?: unknown } | undefined)?.__esModule ? (mod.default as { default?: unknown }).default : mod.default
  return { config: check(value, file), files }
}

function basicCheck(value: unknown, file: string): FacetConfig {
  const mounts = (value as { mounts?: unknown } | undefined)?.mounts
  if (typeof mounts !== 'object' || mounts === null) throw new Error(`bad config ${file}: no default export with \`mounts\``)
  return value as FacetConfig
}

/**
 * Opens `configFile` as a VFS and watches it and every project file it imports
 * (chokidar). On a change it loads the config afresh and swaps each mount in place
 * with `vfs.replace()`: the FUSE mount stays up, and handles open on an old mount keep
 * working against it until closed. A config that fails to load leaves the old mounts.
 */
export async function createDevServer(options: DevServerOptions): Promise<DevServer> {
  const { createVfs } = await import('../../vfs/vfs.ts')
  const { watch } = await import('chokidar')
  const check = options.check ?? basicCheck
  const first = await loadFresh(options.configFile, check)
  const vfs = createVfs(options.logger ? { mounts: first.config.mounts, logger: options.logger } : { mounts: first.config.mounts })
  const files = new Set(first.files)
  // A config in a CommonJS package scope is compiled to CommonJS, and its imports are not reported: watch its folder then.
  const targets = files.size > 1 ? [...files] : [dirname(options.configFile)]
  const watcher = watch(targets, { ignoreInitial: true, depth: 5, ignored: p => /[\\/](node_modules|\.git)([\\/]|$)/.test(p) })
  const ready = new Promise<void>(done => watcher.once('ready', () => done()))
  let current = new Set(Object.keys(first.config.mounts).map(p => resolve('/', p)))
  let running: Promise<ReloadResult> | undefined
  let timer: NodeJS.Timeout | undefined

  async function reloadNow(): Promise<ReloadResult> {
    const next = await loadFresh(options.configFile, check)
    for (const f of next.files) {
      if (!files.has(f)) {
        files.add(f)
        watcher.add(f)
      }
    }
    const result: ReloadResult = { replaced: [], added: [], removed: [] }
    const paths = new Set<string>()
    for (const [path, mount] of Object.entries(next.config.mounts)) {
      const p = resolve('/', path)
      paths.add(p)
      if (current.has(p)) {
        await vfs.replace(p, mount)
        result.replaced.push(p)
      } else {
        vfs.mount(p, mount)
        result.added.push(p)
      }
    }
    for (const p of current) {
      if (!paths.has(p)) {
        await vfs.unmount(p)
        result.removed.push(p)
      }
    }
    current = paths
    return result
  }

  function reload(): Promise<ReloadResult> {
    const run = (running ?? Promise.resolve()).catch(() => undefined).then(reloadNow)
    running = run
    return run
  }

  watcher.on('change', () => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      reload().then(
        r => options.onReload?.(r),
        (err: unknown) => options.onReload?.(err instanceof Error ? err : new Error(String(err))),
      )
    }, options.debounceMs ?? 100)
  })

  return {
    vfs,
    files,
    reload,
    ready: () => ready,
    async close() {
      clearTimeout(timer)
      await watcher.close()
      await running?.catch(() => undefined)
      await vfs.close()
    },
  }
}

/** Adds `facet dev`: like `facet up` (with its mount, GraphQL and `--allow-other` options), and reloads plugins and the config when their files change, without unmounting. */
export function register(program: Command, shared: Shared): void {
  shared
    .addConfigOption(addServeOptions(program.command('dev').description('like `up`, reloading the config and its plugins on change without unmounting')))
    .action(async (options: DevOptions) => {
      await dev(options, shared)
    })
}

async function dev(options: DevOptions, shared: Shared): Promise<void> {
  const source = await shared.resolveConfigPath(options)
  if (source === 'demo') throw shared.usageError('facet dev watches a config file: pass --config F or add facet.config.ts')
  let server: DevServer
  try {
    server = await createDevServer({
      configFile: source,
      ...(options.logger ? { logger: options.logger } : {}),
      onReload: r => {
        if (r instanceof Error) shared.note(`facet dev: reload failed, keeping the running mounts: ${r.message}`)
        else shared.note(`facet dev: reloaded (${[...r.replaced, ...r.added].join(', ') || 'no mounts'}${r.removed.length ? `; removed ${r.removed.join(', ')}` : ''})`)
      },
    })
  } catch (err) {
    throw new shared.CliError(`cannot load config ${source}: ${err instanceof Error ? err.message : String(err)}`)
  }
  const dir = resolve(options.cwd ?? process.cwd(), options.mount ?? DEFAULT_MOUNT_DIR)
  const { mountFuse, FuseUnavailableError } = await import('../../fuse/index.ts')
  let fuse: { unmount(): Promise<void> } | undefined
  try {
    fuse = await mountFuse(server.vfs, dir, { logger: server.vfs.logger, ...(options.allowOther ? { allowOther: true } : {}) })
    await shared.print(`FacetFS mounted at ${dir} (dev: watching ${server.files.size} files)\n`)
  } catch (err) {
    if (!(err instanceof FuseUnavailableError)) {
      await server.close()
      throw new shared.CliError(`cannot mount at ${dir}: ${err instanceof Error ? err.message : String(err)}`)
    }
    await shared.print(`${err.message}\nFacetFS dev is running without a mount; Ctrl-C to stop\n`)
  }
  let graphql: { stop(): Promise<void> } | undefined
  try {
    if (options.graphql !== false) graphql = await serveGraphql(server.vfs, options.graphql ?? DEFAULT_GRAPHQL, options.graphql === undefined, shared)
  } catch (err) {
    await fuse?.unmount()
    await server.close()
    if (fuse) await shared.print('FacetFS unmounted\n')
    throw err
  }
  const keepAlive = setInterval(() => {}, 1 << 30)
  await new Promise<void>(done => {
    const stop = () => {
      process.off('SIGINT', stop).off('SIGTERM', stop)
      done()
    }
    process.on('SIGINT', stop).on('SIGTERM', stop)
  })
  clearInterval(keepAlive)
  await graphql?.stop()
  await fuse?.unmount()
  await server.close()
  await shared.print('FacetFS unmounted\n')
}
