import { resolve } from 'node:path'
import { InvalidArgumentError, type Command } from 'commander'
import type { MountTuning } from '../../fuse/options.ts'
import type { Vfs } from '../../vfs/vfs.ts'
import type { ConfigOptions, Shared } from '../shared.ts'

interface UpOptions extends ConfigOptions {
  mount?: string
  passphraseFile?: string
  /** Lets other local users use the mount (`allow_other`, with the kernel checking modes). */
  allowOther?: boolean
  /** The GraphQL address; `false` with `--no-graphql`; undefined when neither is given. */
  graphql?: Address | false
}

/** A `HOST:PORT` pair as `--graphql` takes it. */
export interface Address {
  host: string
  port: number
}

/** The mount folder `facet up` uses without `--mount`, relative to the working folder. */
export const DEFAULT_MOUNT_DIR = 'mnt'

/** Where `facet up` serves GraphQL without `--graphql`. */
export const DEFAULT_GRAPHQL: Address = { host: '127.0.0.1', port: 4000 }

/** Parses `HOST:PORT` (or `[v6]:PORT`, or just `PORT` for 127.0.0.1; port 0 picks a free one); throws commander's usage error when malformed. */
export function parseAddress(text: string): Address {
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[^:\s]+):)?(\d{1,5})$/.exec(text)
  const port = Number(match?.[2])
  if (!match || port > 65535) throw new InvalidArgumentError('expected HOST:PORT, e.g. 127.0.0.1:4000')
  return { host: match[1]?.replace(/^\[|\]$/g, '') ?? '127.0.0.1', port }
}

/** The options of `facet up` that `facet dev` takes too: where to mount, GraphQL, other users. Returns `command`. */
export function addServeOptions(command: Command): Command {
  return command
    .option('-m, --mount <dir>', `folder to mount on, created when missing (default: ./${DEFAULT_MOUNT_DIR})`)
    .option('--graphql <host:port>', `serve the GraphQL API on this address (default: ${DEFAULT_GRAPHQL.host}:${DEFAULT_GRAPHQL.port})`, parseAddress)
    .option('--no-graphql', 'do not serve the GraphQL API')
    .option('--allow-other', "let other local users use the mount; the kernel checks every access against modes and owners (needs 'user_allow_other' in /etc/fuse.conf)")
}

/** Adds `facet up`: opens the config, mounts it with FUSE and serves until SIGINT/SIGTERM. */
export function register(program: Command, shared: Shared): void {
  shared
    .addConfigOption(
      addServeOptions(program.command('up').description('mount the tree with FUSE (and serve GraphQL) until Ctrl-C or SIGTERM'))
        .option('--passphrase-file <file>', 'passphrase of the identity that opens the demo /files chain (else FACET_PASSPHRASE or a prompt)')
        .option('--allow-rollback', 'open the demo /files chain even when its log is older than the one seen here, or its last block was damaged since (cut, then trusted)')
        .option('--files-store <path|url>', 'keep the demo /files chain in this log file, or in PostgreSQL at postgres://HOST/DB, created on first use; a second facet up on the same store mounts it read-only (default: <home>/chains/files.chain)'),
    )
    .action(async (options: UpOptions) => {
      await up(options, shared)
    })
}

async function up(options: UpOptions, shared: Shared): Promise<void> {
  const loaded = await shared.loadConfig({ ...options, interactive: true })
  const { vfs } = loaded
  const stops: { name: string; stop: () => Promise<void> }[] = []
  const stopping = waitForSignal()
  try {
    const dir = resolve(options.cwd ?? process.cwd(), options.mount ?? DEFAULT_MOUNT_DIR)
    const fuse = await mountTree(vfs, dir, shared, fuseTuning(loaded.config.fuse, options))
    if (fuse) stops.push({ name: 'unmount', stop: () => fuse.unmount() })
    if (options.graphql !== false) {
      const served = await serveGraphql(vfs, options.graphql ?? DEFAULT_GRAPHQL, options.graphql === undefined, shared)
      if (served) stops.push(served)
    }
  } catch (err) {
    stopping.cancel()
    await stopAll(stops)
    await loaded.close()
    if (stops.some(s => s.name === 'unmount')) await shared.print('FacetFS unmounted\n')
    throw err
  }

  const signal = await stopping.signal
  vfs.logger.info({ signal }, 'shutting down')
  const failures = await stopAll(stops)
  await loaded.close()
  if (failures.length > 0) throw new shared.CliError(failures.join('; '))
  if (stops.some(s => s.name === 'unmount')) await shared.print('FacetFS unmounted\n')
  else await shared.print('FacetFS stopped\n')
  // Nothing should hold the loop now; if a stray handle does, still end as asked.
  setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref()
}

/** The FUSE settings of a config, with the command line's `--allow-other` on top. */
export function fuseTuning(config: MountTuning | undefined, options: { allowOther?: boolean }): MountTuning {
  return options.allowOther ? { ...config, allowOther: true } : { ...config }
}

/** Mounts `vfs` on `dir` (created when missing, cleared when a killed process left it mounted) and prints where; prints why and returns undefined when FUSE is unavailable. */
export async function mountTree(vfs: Vfs, dir: string, shared: Shared, tuning: MountTuning = {}): Promise<{ unmount(): Promise<void> } | undefined> {
  const where = vfs.mounts().map(m => m.path).join(', ')
  const { mountFuse, FuseUnavailableError } = await import('../../fuse/index.ts')
  try {
    const fuse = await mountFuse(vfs, dir, { logger: vfs.logger, ...tuning })
    if (tuning.allowOther) await shared.print('other users may use the mount; the kernel checks their access against modes and owners\n')
    await shared.print(`FacetFS mounted at ${dir} (mounts: ${where})\n`)
    return fuse
  } catch (err) {
    if (err instanceof FuseUnavailableError && tuning.allowOther && /user_allow_other/.test(err.message)) {
      throw new shared.CliError(`cannot mount at ${dir} for other users: add a line 'user_allow_other' to /etc/fuse.conf (as root), or leave out --allow-other`)
    }
    if (err instanceof FuseUnavailableError) {
      await shared.print(`${err.message}\nFacetFS is running without a mount (mounts: ${where}); Ctrl-C to stop\n`)
      return undefined
    }
    const message = err instanceof Error ? err.message : String(err)
    throw new shared.CliError(message.startsWith('cannot mount') ? message : `cannot mount at ${dir}: ${message}`)
  }
}

/**
 * Starts the GraphQL server on `address`, prints its URL, and returns how to stop it.
 * When the address is only the default and cannot be had (the port is taken), it says
 * so and `up` carries on with FUSE alone; an explicit `--graphql` that fails is an error.
 * Either way the message names the flags that get past it.
 */
export async function serveGraphql(vfs: Vfs, address: Address, byDefault: boolean, shared: Shared): Promise<{ name: string; stop: () => Promise<void> } | undefined> {
  const { serveGraphQL } = await import('../../graphql/server.ts')
  try {
    const server = await serveGraphQL(vfs, { host: address.host, port: address.port })
    await shared.print(`GraphQL at ${server.url} (GraphiQL in a browser, subscriptions at ${server.wsUrl})\n`)
    return { name: 'graphql', stop: () => server.close() }
  } catch (err) {
    const at = `${address.host}:${address.port}`
    const why = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? `${at} is in use` : err instanceof Error ? err.message : String(err)
    const flags = 'choose another address with --graphql HOST:PORT (port 0 picks a free one), or leave GraphQL out with --no-graphql'
    if (!byDefault) throw new shared.CliError(`cannot serve GraphQL: ${why}; ${flags}`)
    shared.note(`GraphQL is not served: ${why}; ${flags}`)
    return undefined
  }
}

async function stopAll(stops: { name: string; stop: () => Promise<void> }[]): Promise<string[]> {
  const failures: string[] = []
  for (const { name, stop } of stops.reverse()) {
    try {
      await stop()
    } catch (err) {
      failures.push(`${name} failed: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  return failures
}

/**
 * Listens for the first SIGINT or SIGTERM, from before anything is mounted, so a signal
 * arriving right after the "mounted" line is never lost. A second signal while shutting
 * down exits at once with 130 (SIGINT) or 143 (SIGTERM).
 */
function waitForSignal(): { signal: Promise<NodeJS.Signals>; cancel(): void } {
  const keepAlive = setInterval(() => {}, 1 << 30)
  let onSignal: (signal: NodeJS.Signals) => void = () => {}
  const stop = () => {
    clearInterval(keepAlive)
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal)
  }
  const signal = new Promise<NodeJS.Signals>(done => {
    onSignal = (received: NodeJS.Signals) => {
      stop()
      process.once('SIGINT', () => process.exit(130)).once('SIGTERM', () => process.exit(143))
      done(received)
    }
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal)
  })
  return { signal, cancel: stop }
}
