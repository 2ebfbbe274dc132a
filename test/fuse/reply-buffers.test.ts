import { describe, expect, it } from 'vitest'
import { KEPT_REPLY_BYTES, ReplyBuffers } from '../../src/fuse/reply-buffers.ts'

describe('the kept buffers of big read replies', () => {
  it('hands out a power of two at least as long as asked, and the same buffer again once given back', () => {
    const r = new ReplyBuffers()
    const a = r.take(1024 * 1024)
    expect(a.length).toBe(1024 * 1024)
    const b = r.take(200_000)
    expect(b.length).toBe(262_144)
    expect(r.take(KEPT_REPLY_BYTES).length).toBe(KEPT_REPLY_BYTES)
    r.give(a)
    expect(r.kept).toBe(1)
    // a shorter read takes the kept buffer rather than a new one
    expect(r.take(131_072)).toBe(a)
    expect(r.kept).toBe(0)
    // one longer than every kept buffer gets a new one
    r.give(b)
    const c = r.take(512 * 1024)
    expect(c).not.toBe(b)
    expect(c.length).toBe(512 * 1024)
  })

  it('keeps no more than it was told, so a burst of reads does not pin its memory', () => {
    const r = new ReplyBuffers(2)
    const bufs = [r.take(KEPT_REPLY_BYTES), r.take(KEPT_REPLY_BYTES), r.take(KEPT_REPLY_BYTES)]
    for (const b of bufs) r.give(b)
    expect(r.kept).toBe(2)
  })
})
