import type { Logger } from '../vfs/log.ts'
import type { TokenVerifier } from './tokens.ts'

/** Tells long-lived uses of a token (a WebSocket, an SSE stream) when the token stops being valid. */
export interface RevocationWatch {
  /**
   * Calls `onRevoked` once, after `token` stops being valid (revoked, or its token file
   * unreadable). Returns a function that stops watching.
   */
  watch(token: string, onRevoked: () => void): () => void
  /** Checks every watched token now, without waiting for the next round; resolves when done. */
  check(): Promise<void>
  /** Stops checking and forgets every watcher. */
  close(): void
}

/** Options for {@link createRevocationWatch}. */
export interface RevocationWatchOptions {
  /** How often watched tokens are checked again. @default 250 (ms) */
  intervalMs?: number
  /** Where a failed check is logged. @default nowhere */
  logger?: Logger
}

/**
 * Watches tokens for revocation by asking `tokens` again every `intervalMs` while any
 * token is watched (a file verifier re-reads `tokens.json` only when it changed, so a
 * round costs a `stat`). The timer runs only while something is watched and never holds
 * the process open. A check that fails counts as a revocation: a stream is never kept
 * on a token that can no longer be shown valid.
 */
export function createRevocationWatch(tokens: TokenVerifier, options: RevocationWatchOptions = {}): RevocationWatch {
  const intervalMs = options.intervalMs ?? 250
  const watchers = new Map<string, Set<() => void>>()
  let timer: NodeJS.Timeout | undefined
  let round: Promise<void> | undefined
  let closed = false

  const revoke = (token: string) => {
    const set = watchers.get(token)
    watchers.delete(token)
    for (const fn of set ?? []) {
      try {
        fn()
      } catch (err) {
        options.logger?.error({ err }, 'graphql: ending a stream of a revoked token failed')
      }
    }
  }
  const runRound = async () => {
    for (const token of [...watchers.keys()]) {
      let valid = false
      try {
        valid = (await tokens.identify(token)) !== undefined
      } catch (err) {
        options.logger?.warn({ err }, 'graphql: cannot check a token; ending its streams')
      }
      if (!valid) revoke(token)
    }
    if (watchers.size === 0) stop()
  }
  const check = (): Promise<void> => (round ??= runRound().finally(() => (round = undefined)))
  const start = () => {
    if (timer || closed) return
    timer = setInterval(() => void check(), intervalMs)
    timer.unref()
  }
  const stop = () => {
    if (timer) clearInterval(timer)
    timer = undefined
  }

  return {
    watch(token, onRevoked) {
      if (closed) return () => {}
      let set = watchers.get(token)
      if (!set) watchers.set(token, (set = new Set()))
      let once = false
      const fn = () => {
        if (once) return
        once = true
        onRevoked()
      }
      set.add(fn)
      start()
      return () => {
        const s = watchers.get(token)
        if (!s?.delete(fn)) return
        if (s.size === 0) watchers.delete(token)
        if (watchers.size === 0) stop()
      }
    },
    check,
    close() {
      closed = true
      stop()
      watchers.clear()
    },
  }
}
