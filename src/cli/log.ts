import { InvalidArgumentError } from 'commander'
import { destination, pino } from 'pino'
import type { Logger } from '../vfs/log.ts'

/** How the CLI writes log entries on stderr: `text`, one human line each, or `json`, pino's structured lines. */
export type LogFormat = 'text' | 'json'

/** The levels `--log-level` takes, least severe first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const

/** A level of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** Options for {@link createCliLogger}. */
export interface CliLoggerOptions {
  /** The least level written. @default `FACET_LOG_LEVEL`, else 'warn' */
  level?: LogLevel
  /** @default 'text' on a terminal, 'json' when stderr is not one */
  format?: LogFormat
  /**
   * Keep `text` lines until {@link CliLogger.flush}, which leaves out the ones that repeat
   * the error the command ends with: a one-shot command (`facet write`) then prints one
   * line for a refused write, not a log line and then the `facet:` message. @default false
   */
  hold?: boolean
  /** Where lines go. @default stderr */
  write?: (line: string) => void
}

/** A {@link Logger} for the CLI, with a flush for held lines. */
export interface CliLogger extends Logger {
  /** Writes the held lines, leaving out those about `shown` (same errno code and path): it is printed anyway. */
  flush(shown?: { code?: unknown; path?: unknown }): void
}

/** Parses `--log-level`; throws commander's usage error for anything else. */
export function parseLogLevel(text: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel
  throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`)
}

/** Parses `--log-format`; throws commander's usage error for anything else. */
export function parseLogFormat(text: string): LogFormat {
  if (text === 'text' || text === 'json') return text
  throw new InvalidArgumentError('expected text or json')
}

/** Makes the logger a CLI command runs with; see {@link CliLoggerOptions}. */
export function createCliLogger(options: CliLoggerOptions = {}): CliLogger {
  const envLevel = process.env.FACET_LOG_LEVEL
  const level: LogLevel = options.level ?? ((LOG_LEVELS as readonly string[]).includes(envLevel ?? '') ? (envLevel as LogLevel) : 'warn')
  const format = options.format ?? (process.stderr.isTTY ? 'text' : 'json')
  if (format === 'json') {
    // written at once, so entries come before the `facet:` line that may follow them
    const log = pino({ level, base: undefined }, destination({ dest: 2, sync: true }))
    return { debug: log.debug.bind(log), info: log.info.bind(log), warn: log.warn.bind(log), error: log.error.bind(log), flush() {} }
  }
  const write = options.write ?? ((line: string) => void process.stderr.write(line))
  const least = LOG_LEVELS.indexOf(level)
  const held: { line: string; fields: Record<string, unknown> }[] = []
  const at =
    (name: Exclude<LogLevel, 'silent'>) =>
    (obj: unknown, msg?: string): void => {
      if (LOG_LEVELS.indexOf(name) < least) return
      const fields = typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>) : { value: obj }
      const line = textLine(name, fields, msg)
      if (options.hold) held.push({ line, fields })
      else write(line)
    }
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    flush(shown) {
      for (const { line, fields } of held.splice(0)) {
        if (shown && fields.code === shown.code && fields.path === shown.path) continue
        write(line)
      }
    },
  }
}

/** One human line: `facet: warn: write to a view refused: /db/books/1.json: EINVAL: malformed json…`. */
function textLine(level: string, fields: Record<string, unknown>, msg: string | undefined): string {
  const { path, code, reason, err, ...rest } = fields
  const errText = err instanceof Error ? (level === 'debug' ? (err.stack ?? err.message) : err.message) : err
  const detail = [path, code, reason, errText].filter(x => x !== undefined && x !== '').map(String)
  const extra = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
  let line = `facet: ${level}: ${msg ?? ''}`.trimEnd()
  if (detail.length > 0) line += `: ${detail.join(': ')}`
  if (extra.length > 0) line += ` (${extra.join(' ')})`
  return line + '\n'
}
