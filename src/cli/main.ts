import { createRequire } from 'node:module'
import { Command, CommanderError } from 'commander'
import { DEMO_MOUNTS } from '../demo/mounts.ts'
import { isVfsError } from '../vfs/errors.ts'
import * as cat from './commands/cat.ts'
import * as compact from './commands/compact.ts'
import * as dev from './commands/dev.ts'
import * as identity from './commands/identity.ts'
import * as ls from './commands/ls.ts'
import * as query from './commands/query.ts'
import * as stat from './commands/stat.ts'
import * as token from './commands/token.ts'
import * as up from './commands/up.ts'
import * as verify from './commands/verify.ts'
import * as write from './commands/write.ts'
import { CliError, shared, type CommandModule } from './shared.ts'

/** The commands `facet` offers, in help order. Add a command by adding its module here. */
export const COMMANDS: readonly CommandModule[] = [up, dev, ls, cat, stat, write, query, token, identity, verify, compact]

const { version } = createRequire(import.meta.url)('facetfs/package.json') as { version: string }

/** Builds the `facet` program with every command of {@link COMMANDS} registered. */
export function createProgram(): Command {
  const program = new Command('facet')
    .description('FacetFS: a programmable virtual filesystem, mounted with FUSE or used in-process')
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`facet: ${text.replace(/^error: /, '')}`) })
    .showSuggestionAfterError()
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
  try {
    await createProgram().parseAsync(argv)
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
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
