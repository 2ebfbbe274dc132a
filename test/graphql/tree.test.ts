import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isoTime, permissionString } from '../../src/graphql/tree.ts'

describe('isoTime', () => {
  it('formats every millisecond time as Date#toISOString does', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: -1e13, max: 3e14 }), fc.double({ min: 0, max: 3e14, noNaN: true })), ms => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString())
      }),
      { numRuns: 5000 },
    )
    for (const ms of [0, 951782400000, 951868800000, 4107542400000, 253402300799999, 1.5]) expect(isoTime(ms)).toBe(new Date(ms).toISOString())
  })
})

describe('permissionString', () => {
  it('formats mode bits as ls -l does, setuid, setgid and sticky included', () => {
    expect(permissionString('file', 0o100644)).toBe('-rw-r--r--')
    expect(permissionString('dir', 0o1777)).toBe('drwxrwxrwt')
    expect(permissionString('file', 0o6755)).toBe('-rwsr-sr-x')
    expect(permissionString('file', 0o6644)).toBe('-rwSr-Sr--')
    expect(permissionString('symlink', 0o777)).toBe('lrwxrwxrwx')
  })
})
