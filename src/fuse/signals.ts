import { constants } from 'node:os'
import type { Logger } from '../vfs/log.ts'

/** Options for {@link unmountOnSignals}. */
export interface SignalOptions {
  /** The signals to handle. @default ['SIGINT', 'SIGTERM'] */
  signals?: NodeJS.Signals[]
  /** Milliseconds to wait for the unmounts before exiting anyway. @default 5000 */
  graceMs?: number
  /** Where unmount failures are logged. @default none */
  logger?: Logger
}

/**
 * Installs SIGINT/SIGTERM handlers that unmount every mount `mounts()` returns, then
 * exit with 128 + the signal number (130 for Ctrl-C). A second signal while unmounting
 * exits at once. Returns the function that removes the handlers.
 */
export function unmountOnSignals(
  mounts: () => Iterable<{ unmount(): Promise<void> }>,
  options: SignalOptions = {},
): () => void {
  const signals = options.signals ?? ['SIGINT', 'SIGTERM']
  const graceMs = options.graceMs ?? 5000
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    const code = 128 + (constants.signals[signal] ?? 1)
    if (stopping) process.exit(code)
    stopping = true
    const all = Promise.allSettled([...mounts()].map(m => m.unmount())).then(results => {
      for (const r of results) if (r.status === 'rejected') options.logger?.error({ err: r.reason }, 'unmount on signal failed')
    })
    const grace = new Promise(done => setTimeout(done, graceMs).unref())
    void Promise.race([all, grace]).then(() => process.exit(code))
  }
  for (const s of signals) process.on(s, onSignal)
  return () => {
    for (const s of signals) process.off(s, onSignal)
  }
}
