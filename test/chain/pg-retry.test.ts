import { randomBytes } from 'node:crypto'
import { createServer, connect, type Server, type Socket } from 'node:net'
import pg from 'pg'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { chainMount } from '../../src/chain/mount.ts'
import { postgresBackend } from '../../src/chain/postgres.ts'
import { isTransientPgError, retryTransient } from '../../src/chain/pg-retry.ts'
import { Chain } from '../../src/chain/store.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { reachPostgres, TEST_PG_URL } from '../helpers/pg.ts'
import { cannotRunCluster, startPgCluster } from '../helpers/pg-cluster.ts'
import { tempHome, testIdentity } from './helpers.ts'

const { admin, reason } = await reachPostgres()
const noCluster = await cannotRunCluster()
const target = new URL(TEST_PG_URL)

/**
 * A TCP relay to the test server that, when armed, passes one block's append (the one
 * statement that inserts its row and commits) on and then drops both ends before its
 * answer comes back: the transaction commits, the client never hears.
 */
async function commitLosingRelay(): Promise<{ port: number; arm(): void; dropped(): number; close(): Promise<void> }> {
  let armed = false
  let dropped = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer(client => {
    const upstream = connect(Number(target.port || 5432), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    let losing = false
    client.on('data', d => {
      // an extended-protocol Parse message ('P') of the append; its answer is flushed at Sync, after the commit
      if (armed && d[0] === 0x50 && d.includes('INSERT INTO')) {
        armed = false
        losing = true
      }
      upstream.write(d)
    })
    upstream.on('data', d => {
      if (!losing) return void client.write(d)
      dropped++
      client.destroy()
      upstream.destroy()
    })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>(done => server.listen(0, '127.0.0.1', done))
  return {
    port: (server.address() as { port: number }).port,
    arm: () => void (armed = true),
    dropped: () => dropped,
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise(done => server.close(() => done()))
    },
  }
}

describe('isTransientPgError', () => {
  it('counts a refused connection transient, and a statement error not', async () => {
    const refused = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/test' })
    const err = await refused.connect().then(() => undefined, (e: unknown) => e)
    expect(isTransientPgError(err)).toBe(true)
    expect(isTransientPgError(Object.assign(new Error('syntax error at or near "SELEC"'), { code: '42601' }))).toBe(false)
    expect(isTransientPgError(Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }))).toBe(false)
    expect(isTransientPgError(undefined)).toBe(false)
  })

  it('retries a transient failure until it succeeds, and rethrows any other at once', async () => {
    let tries = 0
    expect(await retryTransient(async () => (++tries < 3 ? Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) : 'done'), { what: 'a test' })).toBe('done')
    expect(tries).toBe(3)
    tries = 0
    const bad = Object.assign(new Error('no such table'), { code: '42P01' })
    await expect(retryTransient(async () => (tries++, Promise.reject(bad)), { what: 'a test' })).rejects.toBe(bad)
    expect(tries).toBe(1)
    const gone = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    await expect(retryTransient(async () => Promise.reject(gone), { what: 'a test', forMs: 300 })).rejects.toBe(gone)
  })
})

describe.skipIf(!admin)(`appends to a chain in PostgreSQL through faults${admin ? '' : ` (skipped: ${reason})`}`, () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let table: string

  beforeEach(async () => {
    t = await tempHome()
    table = `facet_chain_retry_${randomBytes(6).toString('hex')}`
  })
  afterEach(async () => {
    await admin!.query(`DROP TABLE IF EXISTS ${table}`)
    await admin!.query(`DROP TABLE IF EXISTS ${table}_locks`)
    await t.cleanup()
  })
  afterAll(async () => {
    await admin?.end()
  })

  it('counts a block whose COMMIT answer was lost as landed when its row is there, and goes on writing', async () => {
    const relay = await commitLosingRelay()
    try {
      const via = new URL(TEST_PG_URL)
      via.hostname = '127.0.0.1'
      via.port = String(relay.port)
      const chain = await Chain.openOrCreate(postgresBackend({ url: via.toString(), table }), { identity: testIdentity(), home: t.home })
      const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
      await vfs.writeFile('/c/one.txt', 'one\n')
      await chain.sync()
      relay.arm()
      await vfs.writeFile('/c/two.txt', 'two\n')
      await chain.sync()
      expect(relay.dropped()).toBe(1)
      await vfs.writeFile('/c/three.txt', 'three\n')
      await chain.sync()
      const head = chain.headSeq
      await vfs.close()

      // every block once, in order, and the chain reads back whole
      const { rows } = await admin!.query<{ seq: string }>(`SELECT seq FROM ${table} ORDER BY seq`)
      expect(rows.map(r => Number(r.seq))).toEqual([...Array(head + 1).keys()])
      expect((await verifyChain(postgresBackend({ url: TEST_PG_URL, table }), { home: t.home })).ok).toBe(true)
      const again = await Chain.openOrCreate(postgresBackend({ url: TEST_PG_URL, table }), { identity: testIdentity(), home: t.home })
      const back = createVfs({ mounts: { '/c': chainMount(again) }, logger: silentLogger })
      expect(await Promise.all(['one', 'two', 'three'].map(async n => (await back.readFile(`/c/${n}.txt`)).toString()))).toEqual(['one\n', 'two\n', 'three\n'])
      await back.close()
    } finally {
      await relay.close()
    }
  })

  it.skipIf(noCluster)(`keeps a lone writer writing through a server restart: it takes its advisory lock again on a new session${noCluster ? ` (skipped: ${noCluster})` : ''}`, async () => {
    const cluster = await startPgCluster()
    try {
      const chain = await Chain.openOrCreate(postgresBackend({ url: cluster.url(), table }), { identity: testIdentity(), home: t.home })
      const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
      await vfs.writeFile('/c/before.txt', 'before\n')
      await chain.sync()
      await cluster.stop()
      await cluster.start()
      await vfs.writeFile('/c/after.txt', 'after\n')
      await chain.sync()
      // the new session holds the lock: a second writer is still kept out
      await expect(Chain.openOrCreate(postgresBackend({ url: cluster.url(), table }), { identity: testIdentity(), home: t.home })).rejects.toThrow(/open for writing by another session/)
      await vfs.close()
      const again = await Chain.openOrCreate(postgresBackend({ url: cluster.url(), table }), { identity: testIdentity(), home: t.home })
      const back = createVfs({ mounts: { '/c': chainMount(again) }, logger: silentLogger })
      expect([(await back.readFile('/c/before.txt')).toString(), (await back.readFile('/c/after.txt')).toString()]).toEqual(['before\n', 'after\n'])
      await back.close()
    } finally {
      await cluster.destroy()
    }
  }, 60_000)
})
