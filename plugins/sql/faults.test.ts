import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isVfsError } from '../../src/vfs/errors.ts'
import type { SqlDatabase } from './database.ts'
import { createPgSource, type SqlSource } from './source.ts'
import { PG_URL, pgTestDb, type TestDb } from './test-helpers.ts'

describe('connection faults on the PostgreSQL server', () => {
  let t: TestDb
  let db: SqlDatabase
  let app: string

  beforeEach(async () => {
    t = await pgTestDb()
    app = `facet-${t.schema}`
    await t.exec(`CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)`)
    await t.exec(`INSERT INTO counters SELECT g, 0 FROM generate_series(1, 5) g`)
    db = await t.open({ pool: { application_name: app }, maxConnections: 2 })
  })
  afterEach(async () => {
    await t.drop()
  })

  const terminate = () => t.exec(`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1`, [app])
  const counters = () => db.tables.get('counters')!

  it('reconnects by itself after its idle connections are terminated', async () => {
    expect((await counters().get(['1']))!.record).toEqual({ id: 1, n: 0 })
    expect((await terminate())[0]!.n).toBeGreaterThan(0)
    expect((await counters().get(['2']))!.record).toEqual({ id: 2, n: 0 })
    const r = (await counters().get(['3']))!
    expect((await counters().update(r, { n: 7 })).record).toEqual({ id: 3, n: 7 })
  })

  it('fails a write whose connection is terminated mid-statement with EIO and a clear message; the row is unchanged and the next write works', async () => {
    const r = (await counters().get(['1']))!
    await t.exec('BEGIN')
    await t.exec('LOCK TABLE counters IN ACCESS EXCLUSIVE MODE')
    const pending = counters().update(r, { n: 1 }).then(
      () => undefined,
      (err: unknown) => err,
    )
    // Wait until the update is blocked on the lock, then cut its connection.
    for (let i = 0; i < 100; i++) {
      const rows = await t.exec(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [app])
      if (rows.length) break
      await new Promise(res => setTimeout(res, 20))
    }
    await terminate()
    const err = await pending
    await t.exec('COMMIT')
    expect(isVfsError(err, 'EIO')).toBe(true)
    expect((err as Error).message).toMatch(/^EIO: i\/o error \(database connection lost: .*terminat.*; FacetFS reconnects on the next operation\)$/)
    expect((await counters().get(['1']))!.record).toEqual({ id: 1, n: 0 })
    expect((await counters().update(r, { n: 2 })).record).toEqual({ id: 1, n: 2 })
  })

  it('fails a transaction whose connection is terminated between statements with EIO, and keeps working', async () => {
    const err = await db.source
      .transaction(async tx => {
        await tx.query('SELECT 1')
        await terminate()
        await new Promise(res => setTimeout(res, 100))
        await tx.query('SELECT 1')
      })
      .catch((e: unknown) => e)
    expect(isVfsError(err, 'EIO')).toBe(true)
    expect((err as Error).message).toMatch(/database connection lost/)
    expect((await counters().renderWhole('ndjson', 1 << 20)).toString().split('\n')[0]).toBe('{"id":1,"n":0}')
  })

  it('loses no acknowledged write while connections are terminated again and again', async () => {
    const acknowledged: number[] = []
    const failures: unknown[] = []
    let stop = false
    const killer = (async () => {
      while (!stop) {
        await terminate()
        await new Promise(res => setTimeout(res, 15))
      }
    })()
    for (let i = 100; i < 160; i++) {
      try {
        await counters().insert({ id: i, n: i })
        acknowledged.push(i)
      } catch (err) {
        failures.push(err)
      }
    }
    stop = true
    await killer
    for (const err of failures) expect(isVfsError(err, 'EIO') || isVfsError(err, 'EEXIST')).toBe(true)
    const stored = (await t.exec(`SELECT id FROM counters WHERE id >= 100 ORDER BY id`)).map(r => r.id as number)
    for (const id of acknowledged) expect(stored).toContain(id)
    expect(acknowledged.length).toBeGreaterThan(0)
  })

  describe('whole-table files', () => {
    const ROWS = 5000
    let kills: number
    let killAfter: number
    /** Terminates the backend of the render's transaction after its `killAfter`-th FETCH, once per render attempt that reaches it. */
    const killingSource = (): SqlSource => {
      const inner = createPgSource({ url: PG_URL, pool: { application_name: app } })
      return {
        ...inner,
        transaction: (fn, opts) =>
          inner.transaction(async tx => {
            const pid = (await tx.query('SELECT pg_backend_pid()::text')).rows[0]![0]!
            let fetches = 0
            return fn({
              async query(text, params, o) {
                const r = await tx.query(text, params, o)
                if (text.startsWith('FETCH') && ++fetches === killAfter && kills === 0) {
                  kills++
                  await t.exec('SELECT pg_terminate_backend($1::int)', [pid])
                  await new Promise(res => setTimeout(res, 50))
                }
                return r
              },
            })
          }, opts),
      }
    }

    beforeEach(async () => {
      kills = 0
      killAfter = 3
      await t.exec(`CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)`)
      await t.exec(`INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, ${ROWS}) g`)
    })

    const ids = (lines: string[], parse: (line: string) => number) => {
      const seen = lines.map(parse)
      return { count: seen.length, distinct: new Set(seen).size, first: seen[0], last: seen[seen.length - 1] }
    }

    it('restarts a whole-table render from nothing after its backend is terminated mid-stream: exact rows, no duplicates', async () => {
      const killed = await t.open({ source: killingSource(), tables: ['items'], fetchSize: 500 })
      const items = killed.tables.get('items')!
      const nd = (await items.renderWhole('ndjson', 1 << 26)).toString().split('\n').filter(Boolean)
      expect(kills).toBe(1)
      expect(ids(nd, l => (JSON.parse(l) as { id: number }).id)).toEqual({ count: ROWS, distinct: ROWS, first: 1, last: ROWS })
      kills = 0
      const csv = (await items.renderWhole('csv', 1 << 26)).toString().split('\n').filter(Boolean)
      expect(kills).toBe(1)
      expect(csv[0]).toBe('id,label')
      expect(ids(csv.slice(1), l => Number(l.split(',')[0]))).toEqual({ count: ROWS, distinct: ROWS, first: 1, last: ROWS })
    })

    it('renders one snapshot: rows others change during a render are all in it or all out of it, also across the restart', async () => {
      killAfter = 2
      const killed = await t.open({ source: killingSource(), tables: ['items'], fetchSize: 500 })
      const render = killed.tables.get('items')!.renderWhole('ndjson', 1 << 26)
      await t.exec(`BEGIN; INSERT INTO items SELECT g, 'late ' || g FROM generate_series(${ROWS + 1}, ${ROWS + 100}) g; DELETE FROM items WHERE id <= 100; COMMIT`)
      const seen = (await render).toString().split('\n').filter(Boolean).map(l => (JSON.parse(l) as { id: number }).id)
      const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
      expect([range(1, ROWS), range(101, ROWS + 100)]).toContainEqual(seen)
      expect(kills).toBe(1)
    })

    it('never serves a whole-table file with duplicate or missing rows while backends are terminated again and again', async () => {
      const table = (await t.open({ pool: { application_name: app }, maxConnections: 2, fetchSize: 200 })).tables.get('items')!
      let stop = false
      // the pause between kills doubles with each render in a row cut off, so a slow machine still completes some renders
      let cutInARow = 0
      const killer = (async () => {
        while (!stop) {
          await terminate()
          await new Promise(res => setTimeout(res, 25 * 2 ** Math.min(cutInARow, 6)))
        }
      })()
      let complete = 0
      const failures: unknown[] = []
      for (let i = 0; i < 20 || (complete === 0 && i < 40); i++) {
        try {
          const lines = (await table.renderWhole('ndjson', 1 << 26)).toString().split('\n').filter(Boolean)
          expect(ids(lines, l => (JSON.parse(l) as { id: number }).id)).toEqual({ count: ROWS, distinct: ROWS, first: 1, last: ROWS })
          complete++
          cutInARow = 0
        } catch (err) {
          failures.push(err)
          cutInARow++
        }
      }
      stop = true
      await killer
      for (const err of failures) expect(isVfsError(err, 'EIO'), String(err)).toBe(true)
      expect(complete).toBeGreaterThan(0)
    })
  })
})
