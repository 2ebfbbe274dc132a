import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { postgresLockTable } from '../../../src/chain/locks/postgres.ts'
import type { LockRequest } from '../../../src/vfs/locks/ranges.ts'
import type { LockTable } from '../../../src/vfs/locks/table.ts'
import { reachPostgres } from '../../helpers/pg.ts'

const PG_URL = process.env.FACET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

const { admin, reason } = await reachPostgres(PG_URL)

/** A flock request for the whole file, or a POSIX one when a range is given. */
const req = (owner: string, mode: 'read' | 'write' | 'unlock', start = 0, end = Infinity): LockRequest => ({ kind: start !== 0 || end !== Infinity ? 'posix' : 'flock', mode, owner, start, end, pid: 42 })

describe.skipIf(!admin)(`the PostgreSQL lock table${admin ? '' : ` (skipped: PostgreSQL unavailable at ${PG_URL}: ${reason})`}`, () => {
  const schema = `facet_locktable_test_${randomBytes(5).toString('hex')}`
  const table = `${schema}.locks`
  const chainId = randomBytes(16)
  const pools: pg.Pool[] = []
  let a: LockTable
  let b: LockTable
  const node = (at = table): LockTable => {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 4 })
    pools.push(pool)
    return postgresLockTable({ pool, connect: () => new pg.Client({ connectionString: PG_URL }), table: at, chainId })
  }
  /** The PostgreSQL backend pid and client port of the session of the node holding `file`. */
  const holderSession = async (file: string): Promise<{ pid: number; port: number }> => {
    const { rows } = await admin!.query<{ pid: number; port: number }>(
      `SELECT a.pid, a.client_port AS port FROM ${table} l JOIN pg_locks p ON p.locktype = 'advisory' AND p.objsubid = 1 AND p.mode = 'ExclusiveLock' AND p.granted
         AND p.classid = (l.node >> 32)::oid AND p.objid = (l.node & 4294967295)::oid JOIN pg_stat_activity a ON a.pid = p.pid WHERE l.file = $1 LIMIT 1`,
      [file],
    )
    return rows[0]!
  }
  const rowsOf = async (file: string) => (await admin!.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE file = $1`, [file])).rows[0]!.n

  beforeAll(async () => {
    await admin!.query(`CREATE SCHEMA ${schema}`)
  })
  beforeEach(() => {
    a = node()
    b = node()
  })
  afterEach(async () => {
    await a.close()
    await b.close()
    for (const p of pools.splice(0)) await p.end()
  })
  afterAll(async () => {
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin?.end()
  })

  it('creates its table once when several nodes take their first locks at the same moment', async () => {
    const fresh = [node(`${schema}.raced`), node(`${schema}.raced`), node(`${schema}.raced`)]
    try {
      await Promise.all(fresh.map((t, i) => t.lock(String(i), req('1', 'write'), { wait: false })))
      expect((await admin!.query(`SELECT count(*)::int AS n FROM ${schema}.raced`)).rows[0].n).toBe(3)
    } finally {
      for (const t of fresh) await t.close()
    }
  })

  it('refuses a lock another node holds with EAGAIN, reports the holder with no pid, and grants it once released', async () => {
    await a.lock('1', req('7', 'write'), { wait: false })
    await expect(b.lock('1', req('7', 'read'), { wait: false })).rejects.toMatchObject({ code: 'EAGAIN' })
    expect(await b.test('1', req('7', 'read'))).toEqual({ kind: 'flock', mode: 'write', owner: expect.stringMatching(/^\d+\/7$/), start: 0, end: Infinity, pid: 0 })
    expect(await a.test('1', req('8', 'read'))).toMatchObject({ pid: 42 })
    await a.lock('1', req('7', 'unlock'), { wait: false })
    await b.lock('1', req('7', 'write'), { wait: false })
    expect(await rowsOf('1')).toBe('1')
  })

  it('keeps byte ranges per owner: a split unlock leaves both ends locked against another node', async () => {
    await a.lock('2', req('p', 'write', 0, 100), { wait: false })
    await a.lock('2', req('p', 'unlock', 40, 60), { wait: false })
    await b.lock('2', req('q', 'write', 40, 60), { wait: false })
    await expect(b.lock('2', req('q', 'write', 30, 41), { wait: false })).rejects.toMatchObject({ code: 'EAGAIN' })
    await expect(b.lock('2', req('q', 'read', 99, 200), { wait: false })).rejects.toMatchObject({ code: 'EAGAIN' })
    expect(await rowsOf('2')).toBe('3')
  })

  it('ignores and deletes the rows of a node that holds no session, as left by one that died', async () => {
    await admin!.query(`CREATE UNLOGGED TABLE IF NOT EXISTS ${table} (chain_id bytea NOT NULL, file text NOT NULL, kind text NOT NULL, node bigint NOT NULL, owner text NOT NULL, mode text NOT NULL, start_at bigint NOT NULL, end_at bigint, pid integer NOT NULL)`)
    await admin!.query(`INSERT INTO ${table} VALUES ($1, '3', 'flock', 12345, '1', 'write', 0, NULL, 1)`, [chainId])
    await b.lock('3', req('9', 'write'), { wait: false })
    expect((await admin!.query(`SELECT count(*)::int AS n FROM ${table} WHERE node = 12345`)).rows[0].n).toBe(0)
  })

  it('wakes a waiter on another node when the holder node\'s session ends, as when its process dies', async () => {
    await a.lock('4', req('1', 'write'), { wait: false })
    let granted = false
    const waiting = b.lock('4', req('2', 'write'), { wait: true }).then(() => (granted = true))
    const { pid } = await holderSession('4')
    expect(granted).toBe(false)
    const killedAt = Date.now()
    await admin!.query('SELECT pg_terminate_backend($1)', [pid])
    await waiting
    console.log(`waiter granted ${Date.now() - killedAt} ms after the holder's session ended`)
    expect(await b.test('4', req('3', 'read'))).toMatchObject({ owner: expect.stringMatching(/\/2$/) })
  })

  it('lets go of its locks on close and wakes waiters elsewhere', async () => {
    await a.lock('5', req('1', 'read'), { wait: false })
    const waiting = b.lock('5', req('2', 'write'), { wait: true })
    await a.close()
    await waiting
    expect(await rowsOf('5')).toBe('1')
  })

  it('has the server probe the node session after 10 s idle, so a dead machine\'s locks go within 25 s', async () => {
    await a.lock('6', req('1', 'write'), { wait: false })
    const { port } = await holderSession('6')
    // the server's side of that connection: local port 5432, the node's port remote
    const socket = async () => {
      const { stdout } = await promisify(execFile)('ss', ['-tnoH', 'state', 'established'])
      return stdout.split('\n').find(l => / \S+:5432 +\S+:(\d+) /.exec(l)?.[1] === String(port)) ?? ''
    }
    let line = await socket()
    // while bytes are unacknowledged the kernel shows the retransmit timer instead (`timer:(on,…)`);
    // no event tells when that ends, so the socket is read again a few times
    for (let i = 0; i < 20 && line.includes('timer:(on,'); i++) {
      await new Promise(done => setTimeout(done, 100))
      line = await socket()
    }
    const timer = /timer:\(keepalive,(\d+(?:\.\d+)?)(ms|sec|min)/.exec(line)
    expect(timer, `no keepalive timer on the server's socket to port ${port}: ${line}`).not.toBe(null)
    const seconds = Number(timer![1]) * (timer![2] === 'ms' ? 0.001 : timer![2] === 'min' ? 60 : 1)
    expect(seconds).toBeLessThanOrEqual(10)
  })
})
