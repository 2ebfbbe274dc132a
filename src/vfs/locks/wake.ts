import { vfsError } from '../errors.ts'

/**
 * Waits for a lock's holder to let go: resolves when the function it adds to `waiters`
 * is called (and removes it), rejects with `EINTR` once any of `signals` aborts, at
 * once when one already has. The lock tables' blocking waits are this, woken by events,
 * never by polling.
 */
export function wakeOrAbort(waiters: Set<() => void>, signals: ReadonlyArray<AbortSignal | undefined>): Promise<void> {
  return new Promise((done, fail) => {
    const live = signals.filter((s): s is AbortSignal => s !== undefined)
    const finish = (): void => {
      waiters.delete(wake)
      for (const s of live) s.removeEventListener('abort', abort)
    }
    const wake = (): void => {
      finish()
      done()
    }
    const abort = (): void => {
      finish()
      fail(vfsError('EINTR', 'the wait for a lock was ended'))
    }
    if (live.some(s => s.aborted)) return abort()
    waiters.add(wake)
    for (const s of live) s.addEventListener('abort', abort, { once: true })
  })
}
