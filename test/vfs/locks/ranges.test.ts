import { describe, expect, it } from 'vitest'
import { applyLock, findConflict, type HeldLock, type LockRequest } from '../../../src/vfs/locks/ranges.ts'

const held = (owner: string, mode: 'read' | 'write', start: number, end: number, kind: 'flock' | 'posix' = 'posix'): HeldLock => ({ kind, mode, owner, start, end, pid: 7 })
const req = (owner: string, mode: 'read' | 'write' | 'unlock', start: number, end: number, kind: 'flock' | 'posix' = 'posix'): LockRequest => ({ kind, mode, owner, start, end, pid: 9 })
const ranges = (locks: HeldLock[]) => locks.map(h => [h.mode, h.start, h.end])

describe('findConflict', () => {
  const table = [held('a', 'write', 0, 10), held('b', 'read', 20, 30), held('c', 'write', 0, Infinity, 'flock')]

  it('finds a write lock of another owner overlapping a read request', () => {
    expect(findConflict(table, req('x', 'read', 5, 6))).toEqual(table[0])
  })

  it('lets read locks share a range', () => {
    expect(findConflict(table, req('x', 'read', 20, 30))).toBeUndefined()
  })

  it('refuses a write request over another owner\'s read lock', () => {
    expect(findConflict(table, req('x', 'write', 25, 26))).toEqual(table[1])
  })

  it('grants ranges that only touch: end is exclusive', () => {
    expect(findConflict(table, req('x', 'write', 10, 20))).toBeUndefined()
    expect(findConflict(table, req('x', 'write', 30, Infinity))).toBeUndefined()
  })

  it('never has an owner conflict with itself', () => {
    expect(findConflict(table, req('a', 'write', 0, 10))).toBeUndefined()
  })

  it('keeps flock and POSIX locks apart, as Linux does', () => {
    expect(findConflict([table[2]!], req('x', 'write', 0, Infinity, 'posix'))).toBeUndefined()
    expect(findConflict([table[0]!], req('x', 'write', 0, Infinity, 'flock'))).toBeUndefined()
    expect(findConflict(table, req('x', 'read', 0, Infinity, 'flock'))).toEqual(table[2])
  })

  it('never finds a conflict for an unlock', () => {
    expect(findConflict(table, req('x', 'unlock', 0, Infinity))).toBeUndefined()
  })

  it('counts a lock to the end of the file against any later range', () => {
    expect(findConflict([held('a', 'write', 100, Infinity)], req('x', 'read', 2 ** 50, 2 ** 50 + 1))).toEqual(held('a', 'write', 100, Infinity))
  })
})

describe('applyLock', () => {
  it('splits an owner\'s write lock when it unlocks the middle', () => {
    expect(ranges(applyLock([held('a', 'write', 0, 100)], req('a', 'unlock', 40, 60)))).toEqual([
      ['write', 0, 40],
      ['write', 60, 100],
    ])
  })

  it('converts the middle of a write lock to a read lock, keeping both ends', () => {
    expect(ranges(applyLock([held('a', 'write', 0, 100)], req('a', 'read', 40, 60)))).toEqual([
      ['write', 0, 40],
      ['read', 40, 60],
      ['write', 60, 100],
    ])
  })

  it('merges touching and overlapping ranges of one mode', () => {
    expect(ranges(applyLock([held('a', 'read', 0, 10), held('a', 'read', 20, 30)], req('a', 'read', 5, 20)))).toEqual([['read', 0, 30]])
  })

  it('replaces the whole range when the same owner locks it again in another mode (flock upgrade)', () => {
    expect(ranges(applyLock([held('a', 'read', 0, Infinity, 'flock')], req('a', 'write', 0, Infinity, 'flock')))).toEqual([['write', 0, Infinity]])
  })

  it('leaves nothing after unlocking the whole file', () => {
    expect(applyLock([held('a', 'write', 0, 10), held('a', 'read', 50, Infinity)], req('a', 'unlock', 0, Infinity))).toEqual([])
  })

  it('cuts an unlock to the end of the file out of a bounded lock', () => {
    expect(ranges(applyLock([held('a', 'write', 0, 10)], req('a', 'unlock', 5, Infinity)))).toEqual([['write', 0, 5]])
  })
})
