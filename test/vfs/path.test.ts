import { describe, expect, it } from 'vitest'
import { basename, checkName, dirname, isWithin, join, normalize, split } from '../../src/vfs/path.ts'

describe('path', () => {
  it.each([
    ['/', '/'],
    ['', '/'],
    ['a/b', '/a/b'],
    ['//a///b/', '/a/b'],
    ['/a/./b/../c', '/a/c'],
    ['/a/b/..', '/a'],
  ])('normalises %j to %j', (input, expected) => {
    expect(normalize(input)).toBe(expected)
  })

  it.each([
    ['/..', "EINVAL: invalid argument ('..' leads above the root)"],
    ['/a/../..', "EINVAL: invalid argument ('..' leads above the root)"],
    ['/a\0b', 'EINVAL: invalid argument (path contains a NUL byte)'],
    [`/${'é'.repeat(128)}`, 'ENAMETOOLONG: name too long (file name over 255 bytes)'],
    [`/${'a/'.repeat(600_000)}`, 'ENAMETOOLONG: name too long (path over 1048576 bytes)'],
    ['/alias\uFFFD.txt', 'EILSEQ: illegal byte sequence (file names must be valid UTF-8)'],
    ['/half\uD800', 'EILSEQ: illegal byte sequence (file names must be valid UTF-8)'],
  ])('rejects %j', (input, message) => {
    expect(() => normalize(input)).toThrow(message)
  })

  it('accepts a 255-byte name and counts bytes, not characters', () => {
    expect(split(`/${'a'.repeat(255)}`)).toHaveLength(1)
    expect(() => checkName('é'.repeat(127) + 'a')).not.toThrow()
    expect(() => checkName('é'.repeat(128))).toThrow(/ENAMETOOLONG/)
  })

  it.each(['', '.', '..', 'a/b', 'a\0'])('refuses the file name %j with EINVAL', name => {
    expect(() => checkName(name)).toThrow(/^EINVAL/)
  })

  it('splits, joins and takes paths apart', () => {
    expect(split('/a/b')).toEqual(['a', 'b'])
    expect(split('/')).toEqual([])
    expect(join('/a', 'b/c', '../d')).toBe('/a/b/d')
    expect(dirname('/a/b')).toBe('/a')
    expect(dirname('/a')).toBe('/')
    expect(basename('/a/b')).toBe('b')
    expect(basename('/')).toBe('')
  })

  it('tells whether a path lies within a prefix on name boundaries', () => {
    expect(isWithin('/a/b', '/a')).toBe(true)
    expect(isWithin('/a', '/a')).toBe(true)
    expect(isWithin('/ab', '/a')).toBe(false)
    expect(isWithin('/x', '/')).toBe(true)
  })
})
