import { describe, expect, it } from 'vitest'
import { CommitQueue } from '../../src/chain/commit-queue.ts'
import { silentLogger, type Logger } from '../../src/vfs/log.ts'

/** A commit that the test lets sign and finish by hand, one step at a time. */
interface HeldCommit {
  sign(): void
  finish(err?: Error): void
}

/** A queue whose commits are held until the test moves them on; `log` records their starts in order. */
function heldQueue(delayMs = 5, logger: Logger = silentLogger) {
  const log: string[] = []
  const commits: HeldCommit[] = []
  let started = 0
  const queue = new CommitQueue({
    commit: signed =>
      new Promise<void>((resolve, reject) => {
        const n = ++started
        log.push(`start ${n}`)
        commits.push({
          sign: () => (log.push(`signed ${n}`), signed()),
          finish: err => (err ? reject(err) : resolve()),
        })
      }),
    delayMs,
    logger,
    path: 'test.chain',
  })
  return { queue, log, commits }
}

/** Lets every pending promise callback run. */
const settle = () => new Promise(r => setTimeout(r, 0))

describe('CommitQueue (group commit)', () => {
  it('gives every caller that asks before a commit starts the same commit', async () => {
    const { queue, log, commits } = heldQueue()
    const a = queue.request()
    const b = queue.request()
    expect(a).toBe(b)
    expect(queue.queued).toBe(true)
    await settle()
    expect(log).toEqual(['start 1'])
    expect(queue.queued).toBe(false)
    commits[0]!.sign()
    commits[0]!.finish()
    await a
  })

  it('starts the next commit once the one before is signed, not once it is written', async () => {
    const { queue, log, commits } = heldQueue()
    const first = queue.request()
    await settle()
    const second = queue.request()
    const third = queue.request()
    expect(second).toBe(third)
    await settle()
    expect(log).toEqual(['start 1'])
    commits[0]!.sign()
    await settle()
    expect(log).toEqual(['start 1', 'signed 1', 'start 2'])
    commits[1]!.sign()
    commits[1]!.finish()
    commits[0]!.finish()
    await Promise.all([first, second])
  })

  it('runs a scheduled commit after the delay, and while one runs waits for it to end before starting another', async () => {
    const { queue, log, commits } = heldQueue(5)
    queue.schedule()
    queue.schedule()
    expect(log).toEqual([])
    await new Promise(r => setTimeout(r, 30))
    expect(log).toEqual(['start 1'])
    queue.schedule()
    await new Promise(r => setTimeout(r, 30))
    expect(log).toEqual(['start 1'])
    commits[0]!.sign()
    commits[0]!.finish()
    await new Promise(r => setTimeout(r, 30))
    expect(log).toEqual(['start 1', 'signed 1', 'start 2'])
    commits[1]!.sign()
    commits[1]!.finish()
    await queue.settled
  })

  it('logs a scheduled commit that fails instead of throwing it, and tells the failure to whoever waits on the commit running', async () => {
    const warnings: string[] = []
    const logger: Logger = { ...silentLogger, warn: (_, msg) => void warnings.push(msg ?? '') }
    const { queue, commits } = heldQueue(1, logger)
    queue.schedule()
    await new Promise(r => setTimeout(r, 20))
    const current = queue.current
    commits[0]!.finish(new Error('disk full'))
    await expect(current).rejects.toThrow('disk full')
    await settle()
    expect(warnings).toEqual(['a background commit did not land; its changes wait for the next one (a close or fsync reports it)'])
    await expect(queue.settled).resolves.toBeUndefined()
  })

  it('drops a scheduled commit when one starts, and schedules none once closed', async () => {
    const { queue, log } = heldQueue(5)
    queue.schedule()
    queue.cancelTimer()
    queue.close()
    queue.schedule()
    await new Promise(r => setTimeout(r, 30))
    expect(log).toEqual([])
  })

  it('runs work between commits: after those asked for, before those asked for meanwhile', async () => {
    const { queue, log, commits } = heldQueue()
    const before = queue.request()
    await settle()
    let release!: () => void
    const work = queue.between(async () => {
      log.push('work')
      await new Promise<void>(r => (release = r))
      return 42
    })
    await settle()
    expect(log).toEqual(['start 1'])
    commits[0]!.sign()
    commits[0]!.finish()
    await before
    await settle()
    expect(log).toEqual(['start 1', 'signed 1', 'work'])
    const after = queue.request()
    await settle()
    expect(log).toEqual(['start 1', 'signed 1', 'work'])
    release()
    expect(await work).toBe(42)
    await settle()
    expect(log).toEqual(['start 1', 'signed 1', 'work', 'start 2'])
    commits[1]!.sign()
    commits[1]!.finish()
    await after
  })
})
