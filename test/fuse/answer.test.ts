import { describe, expect, it } from 'vitest'
import { createAnswerer, fuseErrno, guardTimeout, type Reply } from '../../src/fuse/answer.ts'
import { vfsError } from '../../src/vfs/errors.ts'
import type { Logger } from '../../src/vfs/log.ts'

interface Logged {
  level: string
  msg: string | undefined
}

function recordingLogger(): Logger & { lines: Logged[] } {
  const lines: Logged[] = []
  const at = (level: string) => (_obj: unknown, msg?: string) => void lines.push({ level, msg })
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

/** Runs one call through a fresh answerer and collects every callback invocation. */
function call<T>(
  work: () => T | PromiseLike<T>,
  reply: (value: T) => Reply | number = () => 0,
  options: { timeoutMs?: number; late?: (value: T) => void } = {},
) {
  const logger = recordingLogger()
  const answer = createAnswerer({ timeoutMs: options.timeoutMs ?? 1000, logger })
  const calls: unknown[][] = []
  answer('getattr', '/x', (...args: unknown[]) => void calls.push(args), work, reply, options.late)
  return { calls, logger }
}

const tick = (ms = 0) => new Promise(done => setTimeout(done, ms))

describe('answering a FUSE call exactly once', () => {
  it('answers a synchronous value at once with the reply', () => {
    const { calls } = call(() => 7, n => [0, n * 2])
    expect(calls).toEqual([[0, 14]])
  })

  it('answers a resolved promise with the reply', async () => {
    const { calls } = call(async () => 'target', t => [0, t])
    await tick()
    expect(calls).toEqual([[0, 'target']])
  })

  it('answers a VfsError thrown synchronously with its negative errno (ENOENT → -2)', () => {
    const { calls } = call(() => {
      throw vfsError('ENOENT')
    })
    expect(calls).toEqual([[-2]])
  })

  it('answers a rejected VfsError with its negative errno (EROFS → -30)', async () => {
    const { calls } = call(() => Promise.reject(vfsError('EROFS')))
    await tick()
    expect(calls).toEqual([[-30]])
  })

  it('answers any other thrown error with EIO (-5) and logs it', async () => {
    const { calls, logger } = call(() => {
      throw new TypeError('adapter bug')
    })
    expect(calls).toEqual([[-5]])
    expect(logger.lines).toEqual([{ level: 'error', msg: 'FUSE handler failed; answered EIO' }])
  })

  it('answers EIO (-5) when the reply itself throws', () => {
    const { calls } = call(() => 1, () => {
      throw new RangeError('bad reply')
    })
    expect(calls).toEqual([[-5]])
  })

  it('answers ETIMEDOUT (-110) once when the work never settles', async () => {
    const { calls, logger } = call(() => new Promise(() => {}), () => 0, { timeoutMs: 20 })
    await tick(60)
    expect(calls).toEqual([[-110]])
    expect(logger.lines).toEqual([{ level: 'warn', msg: 'FUSE call took too long; answered ETIMEDOUT' }])
  })

  it('swallows a late value, logs it and hands it to the cleanup', async () => {
    const late: number[] = []
    const { calls, logger } = call(() => new Promise<number>(done => setTimeout(done, 50, 42)), n => [0, n], { timeoutMs: 10, late: n => late.push(n) })
    await tick(100)
    expect(calls).toEqual([[-110]])
    expect(late).toEqual([42])
    expect(logger.lines.map(l => l.msg)).toEqual(['FUSE call took too long; answered ETIMEDOUT', 'FUSE call finished after it was answered; result dropped'])
  })

  it('swallows a late failure and only logs it', async () => {
    const { calls, logger } = call(() => new Promise((_, fail) => setTimeout(fail, 50, new Error('too late'))), () => 0, { timeoutMs: 10 })
    await tick(100)
    expect(calls).toEqual([[-110]])
    expect(logger.lines.map(l => l.msg)).toEqual(['FUSE call took too long; answered ETIMEDOUT', 'FUSE call failed after it was answered'])
  })

  it('keeps the guard below fuse-napi’s own 15 s limit', () => {
    expect(guardTimeout(60_000)).toBe(14_000)
    expect(guardTimeout(12_000)).toBe(12_000)
    expect(guardTimeout(0)).toBe(1)
  })

  it('maps a VfsError to its errno and anything else to EIO', () => {
    const logger = recordingLogger()
    expect(fuseErrno(vfsError('ENOTEMPTY'), 'rmdir', '/d', logger)).toBe(-39)
    expect(fuseErrno('a string', 'rmdir', '/d', logger)).toBe(-5)
  })
})
