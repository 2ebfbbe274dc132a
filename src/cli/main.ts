import { createRequire } from 'node:module'
import { Command, CommanderError } from 'commander'
import { DEMO_MOUNTS } from '../demo/mounts.ts'
import { isVfsError } from '../vfs/errors.ts'
import * as cat from './commands/cat.ts'
import * as compact from './commands/compact.ts'
import * as dataset from './commands/dataset.ts'
import * as dev from './commands/dev.ts'
import * as identity from './commands/identity.ts'
import * as group from './commands/group.ts'
import * as init from './commands/init.ts'
import * as ls from './commands/ls.ts'
import * as query from './commands/query.ts'
import * as share from './commands/share.ts'
import * as stat from './commands/stat.ts'
import * as token from './commands/token.ts'
import * as trust from './commands/trust.ts'
import * as up from './commands/up.ts'
import * as verify from './commands/verify.ts'
import * as write from './commands/write.ts'
import { createCliLogger, LOG_LEVELS, parseLogFormat, parseLogLevel, type CliLogger, type LogFormat, type LogLevel } from './log.ts'
import { CliError, shared, type CommandModule } from './shared.ts'

/** The commands `facet` offers, in help order. Add a command by adding its module here. */
export const COMMANDS: readonly CommandModule[] = [up, dev, init, ls, cat, stat, write, query, token, identity, share, group, verify, trust, compact, dataset]

const { version } = createRequire(import.meta.url)('facetfs/package.json') as { version: string }

/** The commands that serve until stopped: their log lines are written as they come, not held to the end. */
const SERVING = new Set(['up', 'dev'])

/** What one run of the program made, for {@link main} to finish with. */
export interface ProgramRun {
  /** The logger the command ran with, set just before its action. */
  logger?: CliLogger
}

/**
 * Builds the `facet` program with every command of {@link COMMANDS} registered. Before
 * a command's action it makes the logger `--log-level` and `--log-format` ask for and
 * hands it to the command as its `logger` option; `run.logger` keeps it.
 */
export function createProgram(run: ProgramRun = {}): Command {
  const program = new Command('facet')
    .description('FacetFS: a programmable virtual filesystem, mounted with FUSE or used in-process')
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`facet: ${text.replace(/^error: /, '')}`) })
    .showSuggestionAfterError()
    .option('--log-level <level>', `the least log level written: ${LOG_LEVELS.join(', ')} (default: FACET_LOG_LEVEL, else warn)`, parseLogLevel)
    .option('--log-format <format>', 'text, one line per entry, or json, structured (default: text on a terminal, else json)', parseLogFormat)
  program.hook('preAction', (_program, action) => {
    const { logLevel, logFormat } = program.opts<{ logLevel?: LogLevel; logFormat?: LogFormat }>()
    run.logger = createCliLogger({ level: logLevel, format: logFormat, hold: !SERVING.has(action.name()) })
    action.setOptionValue('logger', run.logger)
  })
  program.addHelpText(
    'after',
    `
Every command takes --config F (default: facet.config.ts in the working folder,
else the built-in demo, which mounts:
${DEMO_MOUNTS.map(([path, what]) => `  ${path.padEnd(10)}${what}`).join('\n')}

Examples:
  facet up --mount ./mnt        mount the tree with FUSE until Ctrl-C
  facet ls -l /hello/planets    list a folder without FUSE
  facet cat /hello/summary.txt  print a file`,
  )
  for (const command of COMMANDS) command.register(program, shared)
  return program
}

/**
 * Runs the CLI on `argv` (node's, with the interpreter and script first) and returns
 * the exit code: 0 on success, 1 when the command failed, 2 on a usage error.
 * Expected errors print `facet: <message>` on stderr, without a stack trace.
 */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  process.stdout.on('error', err => {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') process.exit(0)
    throw err
  })
  const run: ProgramRun = {}
  try {
    await createProgram(run).parseAsync(argv)
    run.logger?.flush()
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    // a refused write was logged as it happened; its `facet:` line below says it once
    run.logger?.flush(isVfsError(err) ? err : undefined)
    return report(err)
  }
}

function report(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2
  if (err instanceof CliError) {
    process.stderr.write(`facet: ${err.message}\n`)
    return err.exitCode
  }
  if (isVfsError(err)) {
    process.stderr.write(`facet: ${err.message}\n`)
    return 1
  }
  if ((err as NodeJS.ErrnoException | null)?.code === 'EPIPE') return 0
  process.stderr.write(`facet: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  return 1
}
