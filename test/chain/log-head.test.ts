import { describe, expect, it } from 'vitest'
import type { ChainLog } from '../../src/chain/backend.ts'
import { BlockVerifier } from '../../src/chain/log.ts'
import { LogHead } from '../../src/chain/log-head.ts'

/** A verifier that ended at block `seq` (hash bytes all `seq`), of format `format`. */
function verifierAt(seq: number, format = 3): BlockVerifier {
  const v = new BlockVerifier()
  v.headSeq = seq
  v.headHash = Buffer.alloc(32, seq)
  v.formatVersion = format
  v.baseSeq = 2
  return v
}

// LogHead keeps the log it is given and never reads it
const log = {} as ChainLog

describe('LogHead (where this node stands in the log)', () => {
  it('stands where the verifier of the open ended, its tip on its head', () => {
    const v = verifierAt(5)
    const h = new LogHead(log, v, 1000)
    expect([h.log, h.end, h.baseSeq, h.headSeq, h.headFormat, h.tipSeq]).toEqual([log, 1000, 2, 5, 3, 5])
    expect(h.headHash).toEqual(Buffer.alloc(32, 5))
    expect(h.tipHash).toBe(h.headHash)
    expect(h.writers).toBe(v.writers)
    expect(h.blockOffsets).toEqual([])
  })

  it('takes a landed block of its own as head and keeps its frame offset, leaving the tip (signed ahead) alone', () => {
    const h = new LogHead(log, verifierAt(5), 1000)
    h.tipSeq = 7
    h.tipHash = Buffer.alloc(32, 7)
    h.landed(6, Buffer.alloc(32, 6), 4, 1000)
    expect([h.headSeq, h.headFormat, h.tipSeq, h.blockOffsets]).toEqual([6, 4, 7, [1000]])
    expect(h.headHash).toEqual(Buffer.alloc(32, 6))
    expect(h.tipHash).toEqual(Buffer.alloc(32, 7))
  })

  it('moves head and tip to where a catch-up ended, with its writers and format, keeping the base and the offsets', () => {
    const h = new LogHead(log, verifierAt(5), 1000)
    h.blockOffsets.push(10, 20)
    const later = verifierAt(9, 4)
    later.baseSeq = 0
    h.moveTo(later, 5000)
    expect([h.end, h.headSeq, h.tipSeq, h.headFormat, h.baseSeq, h.blockOffsets]).toEqual([5000, 9, 9, 4, 2, [10, 20]])
    expect(h.tipHash).toEqual(Buffer.alloc(32, 9))
    expect(h.writers).toBe(later.writers)
  })
})
