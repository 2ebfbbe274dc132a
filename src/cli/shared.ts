import { access } from 'node:fs/promises'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Command } from 'commander'
import type { FacetConfig } from '../config.ts'
import { prepareConfigLoading } from './config-loader.ts'
import type { Logger } from '../vfs/log.ts'
import type { Vfs } from '../vfs/vfs.ts'

/** The file `--config` defaults to, looked up in the working folder. */
export const DEFAULT_CONFIG_FILE = 'facet.config.ts'

/**
 * An expected failure the CLI reports as `facet: <message>` with no stack trace.
 * `exitCode` 2 marks a usage error; anything else a failed command.
 */
export class CliError extends Error {
  override readonly name = 'CliError'
  /** The process exit code. @default 1 */
  readonly exitCode: number

  constructor(message: string, exitCode = 1) {
    super(message)
    this.exitCode = exitCode
  }
}

/** Makes a usage error (exit code 2), e.g. for an argument commander accepts but the command cannot. */
export function usageError(message: string): CliError {
  return new CliError(message, 2)
}

/** Options every config-reading command takes; {@link addConfigOption} adds them. */
export interface ConfigOptions {
  /** The config file, relative to `cwd`. @default `facet.config.ts` when present, else the built-in demo */
  config?: string | undefined
  /** The folder relative paths and the default config are resolved in. @default process.cwd() */
  cwd?: string | undefined
  /** Where the VFS logs. @default a pino logger on stderr at `FACET_LOG_LEVEL` or 'warn' */
  logger?: Logger | undefined
  /** For the demo's encrypted `/files`: a file holding the identity's passphrase. */
  passphraseFile?: string | undefined
  /** For the demo's encrypted `/files`: ask on the terminal when no passphrase is set, and say what was left out. @default false */
  interactive?: boolean | undefined
  /** For the demo's encrypted `/files`: open it even when its log was rolled back or its last block damaged (`--allow-rollback`). @default false */
  allowRollback?: boolean | undefined
  /** For the demo's encrypted `/files`: keep it in this log file (relative to `cwd`) or at this `postgres://` / `postgresql://` URL (`--files-store`). @default `<home>/chains/files.chain` */
  filesStore?: string | undefined
}

/** Where a config came from: an absolute file path, or `'demo'` for the built-in demo. */
export type ConfigSource = string

/** A config opened as a live VFS. */
export interface LoadedConfig {
  /** The VFS with every mount of the config mounted. */
  readonly vfs: Vfs
  /** The config as loaded. */
  readonly config: FacetConfig
  /** The absolute config file path, or `'demo'`. */
  readonly source: ConfigSource
  /** Closes the VFS and every mount; safe to call twice. */
  close(): Promise<void>
}

/**
 * Finds the config file `options` name: `--config` resolved against `cwd`, else
 * `facet.config.ts` in `cwd` when it exists, else `'demo'`.
 * Throws a {@link CliError} when an explicit `--config` file does not exist.
 */
export async function resolveConfigPath(options: ConfigOptions = {}): Promise<ConfigSource> {
  const cwd = options.cwd ?? process.cwd()
  if (options.config !== undefined) {
    const file = resolve(cwd, options.config)
    if (!(await exists(file))) throw new CliError(`config file not found: ${file}`)
    return file
  }
  const fallback = resolve(cwd, DEFAULT_CONFIG_FILE)
  return (await exists(fallback)) ? fallback : 'demo'
}

/** Options for {@link importConfig}. */
export interface ImportConfigOptions {
  /** Load the config file itself anew instead of from the module cache (files it imports stay cached). @default false */
  fresh?: boolean
}

/**
 * Imports a config module and checks its shape: it must default-export
 * `defineConfig({ mounts: { '/path': mount } })`. TypeScript configs load through tsx,
 * registered for the whole process, and `facetfs` in a config (or in a plugin it
 * imports) is this running copy, so a config in any folder shares `VfsError` and the
 * rest with the CLI (see {@link prepareConfigLoading}).
 * Throws a {@link CliError} naming the file when it cannot load or has the wrong shape.
 */
export async function importConfig(file: string, options: ImportConfigOptions = {}): Promise<FacetConfig> {
  const url = pathToFileURL(file)
  if (options.fresh) url.searchParams.set('t', String(Date.now()))
  let mod: { default?: unknown }
  try {
    await prepareConfigLoading()
    mod = await importModule(url.href)
  } catch (err) {
    throw new CliError(`cannot load config ${file}: ${err instanceof Error ? err.message : String(err)}`)
  }
  return checkConfig(mod.default, file)
}

/**
 * Imports a module through the process-wide loader, so it shares `facetfs` with the CLI.
 * Falls back to tsx's `tsImport` (a separate module graph) where that loader cannot, as
 * for a CommonJS config caught in a `require` cycle.
 */
async function importModule(href: string): Promise<{ default?: unknown }> {
  try {
    return esModule((await import(href)) as { default?: unknown })
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code !== 'ERR_UNKNOWN_FILE_EXTENSION' && code !== 'ERR_REQUIRE_CYCLE_MODULE') throw err
    const { tsImport } = await import('tsx/esm/api')
    return esModule((await tsImport(href, import.meta.url)) as { default?: unknown })
  }
}

/** The module a config meant: tsx compiles a `.ts` file in a CommonJS scope (a folder without package.json) to CommonJS, whose `default` then sits one level deeper. */
function esModule(mod: { default?: unknown }): { default?: unknown } {
  const inner = mod.default as { __esModule?: boolean; default?: unknown } | undefined
  return inner?.__esModule ? { default: inner.default } : mod
}

/** Checks that `value` is a {@link FacetConfig}; throws a {@link CliError} saying what is wrong. */
export function checkConfig(value: unknown, file: string): FacetConfig {
  const bad = (why: string) =>
    new CliError(`bad config ${file}: ${why}; expected \`export default defineConfig({ mounts: { '/path': mount } })\``)
  if (value === undefined) throw bad('no default export')
  if (typeof value !== 'object' || value === null) throw bad('the default export is not an object')
  const mounts = (value as { mounts?: unknown }).mounts
  if (typeof mounts !== 'object' || mounts === null || Array.isArray(mounts)) throw bad('`mounts` is missing or not an object')
  for (const [path, mount] of Object.entries(mounts)) {
    if (!path.startsWith('/')) throw bad(`mount point '${path}' does not start with '/'`)
    const m = mount as { name?: unknown; root?: { kind?: unknown } } | null
    if (typeof m !== 'object' || m === null || typeof m.name !== 'string' || m.root?.kind !== 'dir') {
      throw bad(`mounts['${path}'] is not a mount (an object with a name and a dir root)`)
    }
  }
  return value as FacetConfig
}

/**
 * Opens the config `options` name (see {@link resolveConfigPath}) as a VFS.
 * A mount table the router refuses (two mounts at one point, a bad path) is a {@link CliError}.
 */
export async function loadConfig(options: ConfigOptions = {}): Promise<LoadedConfig> {
  const source = await resolveConfigPath(options)
  if (options.filesStore !== undefined && source !== 'demo') throw usageError(`--files-store is for the built-in demo's /files; ${source} says where its own chains live`)
  const config = source === 'demo' ? await loadDemo(options) : await importConfig(source)
  const { createVfs } = await import('../vfs/vfs.ts')
  let vfs: Vfs
  try {
    vfs = createVfs(options.logger ? { mounts: config.mounts, logger: options.logger } : { mounts: config.mounts })
  } catch (err) {
    throw new CliError(`bad config ${source}: ${err instanceof Error ? err.message : String(err)}`)
  }
  let closing: Promise<void> | undefined
  return { vfs, config, source, close: () => (closing ??= vfs.close()) }
}

/** The built-in demo with the options the command line gave; a named `/files` store that cannot be opened is a {@link CliError} naming it. */
async function loadDemo(options: ConfigOptions): Promise<FacetConfig> {
  const { createDemoConfig } = await import('../demo/index.ts')
  try {
    return await createDemoConfig(await demoOptions(options))
  } catch (err) {
    const { FilesStoreError } = await import('../demo/files-store.ts')
    if (err instanceof FilesStoreError) throw new CliError(err.message)
    throw err
  }
}

async function demoOptions(options: ConfigOptions): Promise<import('../demo/index.ts').DemoOptions> {
  const demo: import('../demo/index.ts').DemoOptions = { prompt: options.interactive === true }
  if (options.passphraseFile) demo.passphraseFile = resolve(options.cwd ?? process.cwd(), options.passphraseFile)
  if (options.filesStore !== undefined) {
    const { isPostgresUrl } = await import('../demo/files-store.ts')
    if (options.filesStore === '') throw usageError('--files-store needs a log file path or a postgres://HOST/DB URL')
    demo.filesStore = isPostgresUrl(options.filesStore) ? options.filesStore : resolve(options.cwd ?? process.cwd(), options.filesStore)
  }
  demo.note = note
  if (options.logger) demo.logger = options.logger
  if (options.allowRollback) demo.allowRollback = true
  return demo
}

/** Opens the config, runs `fn` with its VFS, and closes it whatever happens. */
export async function withVfs<T>(options: ConfigOptions, fn: (vfs: Vfs) => Promise<T>): Promise<T> {
  const loaded = await loadConfig(options)
  try {
    return await fn(loaded.vfs)
  } finally {
    await loaded.close()
  }
}

/** Adds the `--config F` option every config-reading command takes. Returns `command`. */
export function addConfigOption(command: Command): Command {
  return command.option('-c, --config <file>', `config file (default: ${DEFAULT_CONFIG_FILE} in the working folder, else the built-in demo)`)
}

/** Writes to stdout and resolves once the data is handed to the OS, so large output is not cut at exit. */
export function print(data: string | Uint8Array): Promise<void> {
  return new Promise((done, fail) => {
    process.stdout.write(data, err => (err ? fail(err) : done()))
  })
}

/** Writes `text` to stderr (status lines that are not the command's output). */
export function note(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : text + '\n')
}

/** Reads all of stdin. */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file)
    return true
  } catch {
    return false
  }
}

/** The helpers every command module receives in `register(program, shared)`. */
/**
 * Unlocks identity `name` (default `'default'`) under `home` with the passphrase from
 * `passphraseFile`, `FACET_PASSPHRASE` or a prompt; a missing identity or a wrong or
 * missing passphrase becomes a {@link CliError} saying so.
 */
async function unlockIdentity(options: { home?: string | undefined; identity?: string | undefined; passphraseFile?: string | undefined }): Promise<import('../crypto/identity.ts').Identity> {
  const c = await import('../crypto/index.ts')
  const home = options.home ?? c.facetHome()
  const name = options.identity ?? 'default'
  try {
    const passphrase = await c.resolvePassphrase({ passphraseFile: options.passphraseFile, prompt: `Passphrase for identity '${name}': ` })
    return await c.loadIdentity(name, passphrase, home)
  } catch (err) {
    if (err instanceof c.PassphraseRequiredError || err instanceof c.WrongPassphraseError || err instanceof c.IdentityNotFoundError) throw new CliError((err as Error).message)
    throw err
  }
}

export interface Shared {
  unlockIdentity: typeof unlockIdentity
  loadConfig: typeof loadConfig
  withVfs: typeof withVfs
  importConfig: typeof importConfig
  resolveConfigPath: typeof resolveConfigPath
  addConfigOption: typeof addConfigOption
  print: typeof print
  note: typeof note
  readStdin: typeof readStdin
  usageError: typeof usageError
  CliError: typeof CliError
}

/** The one {@link Shared} instance `main` passes to every command. */
export const shared: Shared = {
  unlockIdentity,
  loadConfig,
  withVfs,
  importConfig,
  resolveConfigPath,
  addConfigOption,
  print,
  note,
  readStdin,
  usageError,
  CliError,
}

/**
 * A CLI command module: `src/cli/commands/<name>.ts` exports `register`, which adds
 * the command to `program`. Keep the module cheap to import: load heavy parts
 * (FUSE, GraphQL, crypto) with `await import()` inside the action. An action throws
 * to fail: a `VfsError` or {@link CliError} prints `facet: <message>` and exits 1
 * (2 for a usage error); anything else also prints its stack.
 */
export interface CommandModule {
  register(program: Command, shared: Shared): void
}
