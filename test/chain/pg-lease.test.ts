import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { postgresWriteLease } from '../../src/chain/pg-lease.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { reachPostgres, TEST_PG_URL } from '../helpers/pg.ts'

const { admin, reason } = await reachPostgres(TEST_PG_URL)

describe.skipIf(!admin)(`the write lease in PostgreSQL${admin ? '' : ` (skipped: ${reason})`}`, () => {
  afterAll(async () => {
    await admin?.end()
  })

  it('leaves no error listener behind on the pooled connection it held, however often it is taken and given back', async () => {
    // one connection for the lease, one for its listening: every acquire gets the same one back
    const pool = new pg.Pool({ connectionString: TEST_PG_URL, max: 2 })
    const lease = postgresWriteLease({ pool: () => pool, channel: 'facet_lease_test', chainHex: '00'.repeat(16), keys: [0x7ace, 0x1ea5e], logger: silentLogger })
    try {
      const c = await pool.connect()
      const before = c.listenerCount('error')
      c.release()
      for (let i = 0; i < 15; i++) {
        await lease.acquire()
        await lease.release()
      }
      const held = await pool.connect()
      const after = held.listenerCount('error')
      held.release()
      expect(after).toBe(before)
    } finally {
      await lease.close()
      await pool.end()
    }
  })
})
