import { describe, expect, it } from 'vitest'
import { nowNs } from '../../src/vfs/stat.ts'

describe('nowNs, the clock file times are taken from', () => {
  it('reads the wall clock to the millisecond and never steps back, reading after reading', () => {
    let last = 0n
    const off: string[] = []
    // long enough to cross re-anchorings of the clock pair (every second)
    const end = Date.now() + 2500
    for (let i = 0; Date.now() < end; i++) {
      const before = Date.now()
      const ns = nowNs()
      const after = Date.now()
      const ms = Number(ns / 1_000_000n)
      if (ms < before - 1 || ms > after + 1) off.push(`reading ${i}: ${ms} outside [${before}, ${after}]`)
      if (ns < last) off.push(`reading ${i}: went back by ${last - ns} ns`)
      last = ns
    }
    expect(off.slice(0, 5)).toEqual([])
  })
})
