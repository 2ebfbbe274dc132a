import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { RowChange } from './live.ts'
import { BACKENDS, until, type TestDb } from './test-helpers.ts'

describe.each(BACKENDS)('live changes on $backend', ({ backend, make }) => {
  let t: TestDb
  beforeEach(async () => {
    t = await make()
    await t.exec(`CREATE TABLE items (shelf text, n integer, at timestamptz, PRIMARY KEY (shelf, n)); CREATE TABLE other (id int PRIMARY KEY)`)
  })
  afterEach(async () => {
    await t.drop()
  })

  const triggerCount = async () =>
    Number((await t.exec(`SELECT count(*)::int AS n FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = '${t.schema}' AND NOT g.tgisinternal`))[0]!.n)

  it('installs no trigger unless asked', async () => {
    await t.open()
    expect(await triggerCount()).toBe(0)
  })

  it('reports inserts, updates (with key changes), deletes and truncates made by other clients', async () => {
    const db = await t.open({ installTriggers: true, tables: ['items'] })
    expect(db.live).toBe(true)
    expect(await triggerCount()).toBe(2)
    const seen: Array<RowChange | undefined> = []
    const stop = await db.watch(c => seen.push(c))
    await t.exec(`INSERT INTO items VALUES ('a/b', 1, now())`)
    await t.exec(`UPDATE items SET n = 2 WHERE n = 1`)
    await t.exec(`DELETE FROM items`)
    await t.exec(`INSERT INTO other VALUES (1)`)
    await t.exec(`TRUNCATE items`)
    await until(() => seen.length >= 4)
    expect(seen).toEqual([
      { table: 'items', op: 'insert', key: ['a/b', '1'] },
      { table: 'items', op: 'update', key: ['a/b', '2'], oldKey: ['a/b', '1'] },
      { table: 'items', op: 'delete', oldKey: ['a/b', '2'] },
      { table: 'items', op: 'truncate' },
    ])
    await stop()
  })

  it.skipIf(backend !== 'pg')('reports a possible gap after the listening connection is terminated, then keeps listening', async () => {
    const channel = `facet_${t.schema}`
    const db = await t.open({ installTriggers: true, tables: ['items'], channel })
    const seen: Array<RowChange | undefined> = []
    const stop = await db.watch(c => seen.push(c))
    await t.exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`, [`LISTEN "${channel}"`])
    await until(() => seen.includes(undefined))
    await t.exec(`INSERT INTO items VALUES ('x', 1, NULL)`)
    await until(() => seen.length >= 2)
    expect(seen).toEqual([undefined, { table: 'items', op: 'insert', key: ['x', '1'] }])
    await stop()
  })
})
