import { describe, expect, it } from 'vitest'
import { SharedWriting, type WriteLease } from '../../src/chain/shared-writing.ts'
import { silentLogger } from '../../src/vfs/log.ts'

/**
 * A write lease in memory that another node keeps asking for: every acquire is heard as
 * "wanted" before it returns, as when the other nodes' NOTIFY asks arrive while this node
 * waits for the lock. Records what happens in order.
 */
function contendedLease() {
  const log: string[] = []
  const wanted = new Set<() => void>()
  let released!: () => void
  const releasedOnce = new Promise<void>(r => (released = r))
  const lease: WriteLease = {
    async acquire() {
      log.push('acquire')
      for (const fn of wanted) fn()
    },
    async release() {
      log.push('release')
      released()
    },
    onWanted: fn => void wanted.add(fn),
    async close() {},
  }
  return { lease, log, releasedOnce }
}

describe('SharedWriting (the write lease protocol of one node)', () => {
  it('runs the change that waited for the lease before handing it to a node that asked meanwhile', { timeout: 5000 }, async () => {
    const { lease, log, releasedOnce } = contendedLease()
    const sw = new SharedWriting(lease, { catchUp: async () => void log.push('catch up') }, silentLogger)
    await sw.enter()
    log.push('change')
    sw.leave()
    await releasedOnce
    expect(log).toEqual(['acquire', 'catch up', 'change', 'release'])
    await sw.close()
  })

  it('admits the commit a change makes inside it, and hands over once both are done', { timeout: 5000 }, async () => {
    const { lease, log, releasedOnce } = contendedLease()
    const sw = new SharedWriting(lease, { catchUp: async () => {} }, silentLogger)
    await sw.enter()
    await sw.enter(true)
    log.push('commit')
    sw.leave()
    expect(sw.held).toBe(true)
    log.push('change done')
    sw.leave()
    await releasedOnce
    expect(log).toEqual(['acquire', 'commit', 'change done', 'release'])
    await sw.close()
  })
})
