import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { liveHeapUsed } from '../../test/helpers/heap.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { createPgSource, createPgliteSource } from './source.ts'
import { BACKENDS, countedSource, PG_URL, pgTestDb, type TestDb } from './test-helpers.ts'
import { sql } from './view.ts'

describe.each(BACKENDS)('keyed access on $backend', ({ make }) => {
  let t: TestDb
  beforeAll(async () => {
    t = await make()
    await t.exec(`CREATE TABLE events (region text, seq bigint, body text, PRIMARY KEY (region, seq))`)
    await t.exec(`INSERT INTO events SELECT 'r' || (g % 10), g, repeat('x', 50) FROM generate_series(1, 20000) g`)
    await t.exec(`ANALYZE events`)
  })
  afterAll(async () => {
    await t.drop()
  })

  it('reads one row with an index scan, never a sequential scan', async () => {
    const db = await t.open()
    const events = db.tables.get('events')!
    expect((await events.get(['r3', '13']))!.record).toEqual({ region: 'r3', seq: '13', body: 'x'.repeat(50) })
    const params = events.keyParams(['r3', '13'])!
    const { rows } = await db.source.query(`EXPLAIN (FORMAT JSON) ${events.getSql}`, params)
    const plan = JSON.stringify(JSON.parse(rows[0]![0]!))
    expect(plan).toMatch(/"Node Type":"Index (Only )?Scan"/)
    expect(plan).not.toMatch(/Seq Scan/)
  })

  it('pages through keys in key order without repeating or skipping', async () => {
    const db = await t.open()
    const events = db.tables.get('events')!
    let after: string[] | undefined
    let count = 0
    const seen = new Set<string>()
    let last: [string, number] = ['', 0]
    for (;;) {
      const page = await events.listKeys(3000, after)
      for (const r of page.rows) {
        const k: [string, number] = [r.key[0]!, Number(r.key[1])]
        expect(k[0] > last[0] || (k[0] === last[0] && k[1] > last[1])).toBe(true)
        last = k
        seen.add(k.join())
        count++
      }
      if (!page.next) break
      after = page.next
    }
    expect(count).toBe(20000)
    expect(seen.size).toBe(20000)
  })

  it('looks up the rows of a listed page with one query per 256 of them, each stat and read exact', async () => {
    const raw = 'pglite' in t.connection ? await createPgliteSource(t.connection.pglite) : createPgSource({ url: PG_URL })
    const { source, count } = countedSource(raw)
    const vfs = createVfs({ mounts: { '/db': sql({ source, schema: t.schema, tables: ['events'] }) }, logger: silentLogger })
    try {
      const page = await vfs.readdir('/db/events', { limit: 512 })
      const names = page.entries.map(e => e.name).filter(name => name !== '.schema')
      expect(names.length).toBeGreaterThan(500)
      const before = count()
      const sizes: number[] = []
      for (const name of names) sizes.push((await vfs.lstat(`/db/events/${name}`)).size)
      // ls -l's order: every name of the page, in listing order, then nothing else
      expect(count() - before).toBe(Math.ceil(names.length / 256))
      // the rows fetched together are the rows themselves, not their neighbours
      for (const at of [0, 255, 256, names.length - 1]) {
        const [region, seq] = names[at]!.replace(/\.json$/, '').split(',')
        const text = (await vfs.readFile(`/db/events/${names[at]}`)).toString()
        expect(JSON.parse(text)).toEqual({ region, seq, body: 'x'.repeat(50) })
        expect(sizes[at]).toBe(Buffer.byteLength(text))
      }
    } finally {
      await vfs.close() // closes the source too
    }
  })
})

describe('a 1,000,000-row table on the PostgreSQL server', () => {
  let t: TestDb
  beforeAll(async () => {
    t = await pgTestDb()
    await t.exec(`CREATE TABLE big (id integer PRIMARY KEY, name text NOT NULL)`)
    await t.exec(`INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, 1000000) g`)
    await t.exec(`ANALYZE big`)
  }, 120_000)
  afterAll(async () => {
    await t.drop()
  })

  it('lists every key in pages with heap use bounded', async () => {
    const db = await t.open({ tables: { big: { label: 'name' } } })
    const big = db.tables.get('big')!
    const first = await big.listKeys(1000)
    expect(first.rows[0]).toEqual({ key: ['1'], label: 'row 1' })
    const base = liveHeapUsed()
    let peak = 0
    let count = first.rows.length
    let after = first.next
    while (after) {
      const page = await big.listKeys(1000, after)
      count += page.rows.length
      after = page.next
      if (count % 100_000 === 0) peak = Math.max(peak, liveHeapUsed() - base)
    }
    expect(count).toBe(1_000_000)
    // A million keys held at once would take tens of MiB; paging keeps only one page live.
    expect(peak).toBeLessThan(8 * 1024 * 1024)
  }, 120_000)

  it('refuses the whole-table files of a table far over the cap with EFBIG without reading it', async () => {
    const db = await t.open({ tables: ['big'] })
    await expect(db.tables.get('big')!.renderWhole('csv', 1 << 20)).rejects.toMatchObject({ code: 'EFBIG' })
  })
})
