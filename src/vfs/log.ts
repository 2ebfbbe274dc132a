import { pino, destination } from 'pino'

/** The logger FacetFS passes around: pino's, or anything with the same four methods. */
export interface Logger {
  /** Logs detail for tracing a problem: `obj` holds fields (e.g. `{ path }`), `msg` the text. */
  debug(obj: unknown, msg?: string): void
  /** Logs a normal event worth seeing, such as a mount coming up. */
  info(obj: unknown, msg?: string): void
  /** Logs something wrong that FacetFS worked around. */
  warn(obj: unknown, msg?: string): void
  /** Logs a failure; pass an error as `{ err }` so pino prints its stack. */
  error(obj: unknown, msg?: string): void
}

/**
 * Makes a pino logger writing to stderr.
 * @param level - the least level printed. @default 'warn', or `FACET_LOG_LEVEL`
 */
export function createLogger(level: string = process.env.FACET_LOG_LEVEL ?? 'warn'): Logger {
  return pino({ level, base: undefined }, destination(2))
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
}
