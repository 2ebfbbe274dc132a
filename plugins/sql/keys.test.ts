import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { encodeKey } from '../../src/views/collection.ts'
import { keyHash, parseRowKey, rowKey, trimBytes } from './keys.ts'

const nameOf = (key: string) => encodeKey(key) + '.json'
const bytes = (s: string) => Buffer.byteLength(s)

describe('row names', () => {
  it('names a simple key by itself and a composite key joined with commas', () => {
    expect(nameOf(rowKey(['42'], 5))).toBe('42.json')
    expect(nameOf(rowKey(['7', '42'], 5))).toBe('7,42.json')
    expect(parseRowKey('7,42', 2)).toEqual({ parts: ['7', '42'] })
  })

  it('escapes commas, tildes and backslashes in parts, and leaves slashes and dots to the collection', () => {
    expect(rowKey(['a,b', 'c~d\\e'], 5)).toBe('a\\,b,c\\~d\\\\e')
    expect(parseRowKey('a\\,b,c\\~d\\\\e', 2)).toEqual({ parts: ['a,b', 'c~d\\e'] })
    expect(nameOf(rowKey(['a/b'], 5))).toBe('a%2Fb.json')
    expect(nameOf(rowKey(['.hidden'], 5))).toBe('%2Ehidden.json')
    expect(nameOf(rowKey(['', '1'], 5))).toBe(',1.json')
  })

  it('adds a readable label after ~, trimmed by bytes so the name fits in 255 bytes, never cutting the key', () => {
    expect(rowKey(['42'], 5, 'Ada Lovelace')).toBe('42~Ada Lovelace')
    const name = nameOf(rowKey(['42'], 5, 'é'.repeat(300)))
    expect(bytes(name)).toBeLessThanOrEqual(255)
    expect(name).toMatch(/^42~é+\.json$/)
    expect(rowKey(['42'], 5, 'a/b\nc')).toBe('42~a b c')
    expect(parseRowKey('42~anything, at all~', 1)).toEqual({ parts: ['42'], label: 'anything, at all~' })
  })

  it('names a key too long for 255 bytes by a readable prefix and its hash, label dropped', () => {
    const key = ['k'.repeat(300)]
    const name = nameOf(rowKey(key, 5, 'label'))
    expect(name).toBe('k'.repeat(255 - 5 - 44) + '#' + keyHash(key) + '.json')
    expect(parseRowKey(rowKey(key, 5), 1)).toEqual({ hash: keyHash(key) })
  })

  it('rejects keys with the wrong number of parts or a dangling escape', () => {
    expect(parseRowKey('1,2', 1)).toBeUndefined()
    expect(parseRowKey('1', 2)).toBeUndefined()
    expect(parseRowKey('a\\', 1)).toBeUndefined()
  })

  it('trims by bytes without splitting a character', () => {
    expect(trimBytes('aé✓', 3)).toBe('aé')
    expect(trimBytes('aé✓', 5)).toBe('aé')
    expect(trimBytes('aé✓', 6)).toBe('aé✓')
  })

  it('parses back every key it names, whatever the parts and label, within 255 bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 120 }), { minLength: 1, maxLength: 3 }), fc.option(fc.string({ maxLength: 300 })), (parts, label) => {
        const key = rowKey(parts, 5, label)
        const name = nameOf(key)
        expect(bytes(name)).toBeLessThanOrEqual(255)
        expect(name).not.toContain('/')
        expect(name).not.toContain('\0')
        const parsed = parseRowKey(key, parts.length)
        if (parsed?.hash !== undefined) expect(parsed.hash).toBe(keyHash(parts))
        else expect(parsed?.parts).toEqual(parts)
      }),
      { numRuns: 500 },
    )
  })
})
