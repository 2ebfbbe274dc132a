import { describe, expect, it } from 'vitest'
import { createMemoryLockTable } from '../../../src/vfs/locks/memory.ts'
import type { LockRequest } from '../../../src/vfs/locks/ranges.ts'

const req = (owner: string, mode: 'read' | 'write' | 'unlock', start = 0, end = Infinity): LockRequest => ({ kind: 'posix', mode, owner, start, end, pid: 1 })

describe('the in-memory lock table', () => {
  it('refuses a conflicting lock with EAGAIN and reports the holder to a test', async () => {
    const t = createMemoryLockTable()
    await t.lock('1', req('a', 'write', 0, 4), { wait: false })
    await expect(t.lock('1', req('b', 'read', 2, 3), { wait: false })).rejects.toMatchObject({ code: 'EAGAIN' })
    expect(await t.test('1', req('b', 'read', 2, 3))).toEqual({ kind: 'posix', mode: 'write', owner: 'a', start: 0, end: 4, pid: 1 })
    await t.lock('2', req('b', 'write'), { wait: false })
    await t.close()
  })

  it('wakes a waiter the moment the holder unlocks', async () => {
    const t = createMemoryLockTable()
    await t.lock('1', req('a', 'write'), { wait: false })
    let granted = false
    const waiting = t.lock('1', req('b', 'write'), { wait: true }).then(() => (granted = true))
    await t.lock('1', req('a', 'read', 10, 20), { wait: false })
    expect(granted).toBe(false)
    await t.lock('1', req('a', 'unlock'), { wait: false })
    await waiting
    expect(granted).toBe(true)
    expect(await t.test('1', req('a', 'read'))).toMatchObject({ owner: 'b', mode: 'write' })
    await t.close()
  })

  it('ends a wait with EINTR when its signal aborts or the table closes', async () => {
    const t = createMemoryLockTable()
    await t.lock('1', req('a', 'write'), { wait: false })
    const stop = new AbortController()
    const aborted = t.lock('1', req('b', 'write'), { wait: true, signal: stop.signal })
    stop.abort()
    await expect(aborted).rejects.toMatchObject({ code: 'EINTR' })
    const closed = t.lock('1', req('c', 'read'), { wait: true })
    await t.close()
    await expect(closed).rejects.toMatchObject({ code: 'EINTR' })
  })
})
