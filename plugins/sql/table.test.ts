import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isVfsError } from '../../src/vfs/errors.ts'
import type { SqlDatabase } from './database.ts'
import { BACKENDS, type TestDb } from './test-helpers.ts'

const SCHEMA_SQL = `
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TABLE teams (id integer PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE people (
  id bigserial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name varchar(40) NOT NULL,
  age integer CHECK (age >= 0),
  team_id integer REFERENCES teams(id),
  balance numeric(12, 4),
  score double precision,
  born date,
  seen timestamptz,
  local_seen timestamp,
  avatar bytea,
  prefs jsonb,
  raw json,
  tags text[],
  grid integer[][],
  stamps timestamptz[],
  big bigint,
  active boolean DEFAULT true,
  feeling mood,
  slug text GENERATED ALWAYS AS (lower(name)) STORED
);
CREATE TABLE memberships (team_id integer REFERENCES teams(id), person_id bigint REFERENCES people(id), role text NOT NULL, PRIMARY KEY (team_id, person_id));
INSERT INTO teams VALUES (1, 'core'), (2, 'docs');
`

function expectErr(err: unknown, code: string, detail?: RegExp): void {
  expect(isVfsError(err)).toBe(true)
  if (!isVfsError(err)) return
  expect(err.code).toBe(code)
  if (detail) expect(err.detail).toMatch(detail)
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

describe.each(BACKENDS)('SqlTable on $backend', ({ make }) => {
  let t: TestDb
  let db: SqlDatabase

  beforeEach(async () => {
    t = await make()
    await t.exec(SCHEMA_SQL)
    db = await t.open()
  })
  afterEach(async () => {
    await t.drop()
  })

  const people = () => db.tables.get('people')!
  const memberships = () => db.tables.get('memberships')!

  it('lists every table of the schema as a folder, in name order', () => {
    expect([...db.tables.keys()]).toEqual(['memberships', 'people', 'teams'])
  })

  it('reads the columns, primary key and constraints from the catalog', () => {
    const info = people().info
    expect(info.primaryKey).toEqual(['id'])
    const byName = Object.fromEntries(info.columns.map(c => [c.name, c]))
    expect(byName.name).toMatchObject({ type: 'character varying(40)', nullable: false, kind: 'text', array: false })
    expect(byName.balance).toMatchObject({ type: 'numeric(12,4)', kind: 'numeric' })
    expect(byName.grid).toMatchObject({ type: 'integer[]', kind: 'int', array: true })
    expect(byName.id!.default).toMatch(/^nextval\(/)
    expect(byName.slug!.generated).toBe('stored')
    expect(byName.feeling!.kind).toBe('text')
    const kinds = Object.fromEntries(info.constraints.map(c => [c.name, c.type]))
    expect(kinds).toMatchObject({ people_pkey: 'primary key', people_email_key: 'unique', people_age_check: 'check', people_team_id_fkey: 'foreign key' })
    const fk = info.constraints.find(c => c.type === 'foreign key')!
    expect(fk.references!.columns).toEqual(['id'])
    expect(fk.references!.table).toMatch(/teams$/)
    expect(info.constraints.find(c => c.type === 'check')!.definition).toBe('CHECK ((age >= 0))')
    expect(memberships().info.primaryKey).toEqual(['team_id', 'person_id'])
  })

  it('round-trips bigint, numeric, timestamptz, bytea, json, jsonb, arrays and NULL exactly', async () => {
    await t.exec(`INSERT INTO people (id, email, name, age, team_id, balance, score, born, seen, local_seen, avatar, prefs, raw, tags, grid, stamps, big, feeling)
      VALUES (9007199254740993, 'ada@example.com', 'Ada', 36, 1, '12345678.1234', 0.1, '1815-12-10', '2024-02-29 23:59:59.123456+02', '2024-01-01 00:00:00.000001',
              '\\x00ff10', '{"b": [1, 2.5, null], "a": "x"}', '{"z": 1,  "a": 2}', ARRAY['x', 'y,z', NULL, ''], '{{1,2},{3,4}}', ARRAY['2020-01-01 00:00:00.5+00'::timestamptz], -9223372036854775808, 'calm')`)
    const row = await people().get(['9007199254740993'])
    expect(row!.record).toEqual({
      id: '9007199254740993',
      email: 'ada@example.com',
      name: 'Ada',
      age: 36,
      team_id: 1,
      balance: '12345678.1234',
      score: 0.1,
      born: '1815-12-10',
      seen: '2024-02-29T21:59:59.123456+00:00',
      local_seen: '2024-01-01T00:00:00.000001',
      avatar: 'AP8Q',
      prefs: { a: 'x', b: [1, 2.5, null] },
      raw: { z: 1, a: 2 },
      tags: ['x', 'y,z', null, ''],
      grid: [[1, 2], [3, 4]],
      stamps: ['2020-01-01T00:00:00.5+00:00'],
      big: '-9223372036854775808',
      active: true,
      feeling: 'calm',
      slug: 'ada',
    })
    expect(row!.key).toEqual(['9007199254740993'])

    // Writing the same values back as new data stores exactly the same thing.
    const copy = { ...row!.record, id: '9007199254740994', email: 'ada2@example.com' }
    delete (copy as Record<string, unknown>).slug
    const inserted = await people().insert(copy)
    expect({ ...inserted.record, id: row!.record.id, email: row!.record.email }).toEqual(row!.record)
    const [a, b] = await t.exec(
      `SELECT balance::text, seen = '2024-02-29 21:59:59.123456+00' AS seen_ok, avatar = '\\x00ff10'::bytea AS avatar_ok, raw::text, tags::text, grid::text, big::text
       FROM people ORDER BY id`,
    )
    // json keeps its text as stored; a written json value is stored as compact JSON text.
    expect({ ...b, raw: a!.raw }).toEqual(a)
    expect(b!.raw).toBe('{"z":1,"a":2}')
    expect(a).toMatchObject({ balance: '12345678.1234', seen_ok: true, avatar_ok: true, raw: '{"z": 1,  "a": 2}', big: '-9223372036854775808' })
  })

  it('keeps NULL distinct from empty values', async () => {
    const r = await people().insert({ email: 'n@example.com', name: 'N', tags: [], prefs: null, avatar: '' })
    expect(r.record).toMatchObject({ age: null, tags: [], prefs: null, avatar: '', balance: null })
  })

  it('inserts with defaults and returns the stored row with its generated key', async () => {
    const r = await people().insert({ email: 'b@example.com', name: 'Bob' })
    expect(r.key).toEqual(['1'])
    expect(r.record).toMatchObject({ id: '1', active: true, slug: 'bob', age: null })
    expect(r.version).toMatch(/^\d+$/)
  })

  it('gets a missing key, or a key its column cannot hold, as undefined', async () => {
    expect(await people().get(['12345'])).toBeUndefined()
    expect(await people().get(['not-a-number'])).toBeUndefined()
    expect(await people().get(['99999999999999999999999'])).toBeUndefined()
  })

  it('updates only the changed columns and bumps the version', async () => {
    const r = await people().insert({ email: 'c@example.com', name: 'Cy', age: 3 })
    await t.exec(`CREATE TABLE audit (cols text); CREATE FUNCTION log_cols() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO ${t.schema}.audit SELECT string_agg(key, ',' ORDER BY key) FROM jsonb_each(to_jsonb(NEW)) n WHERE n.value IS DISTINCT FROM to_jsonb(OLD)->n.key; RETURN NEW; END $$;
      CREATE TRIGGER log_cols AFTER UPDATE ON people FOR EACH ROW EXECUTE FUNCTION log_cols();`)
    const u = await people().update(r, { ...r.record, age: 4 })
    expect(u.record.age).toBe(4)
    expect(u.version).not.toBe(r.version)
    expect(await t.exec('SELECT cols FROM audit')).toEqual([{ cols: 'age' }])
    // No change at all: no statement.
    expect(await people().update(u, { ...u.record })).toBe(u)
    expect(await t.exec('SELECT count(*)::int AS n FROM audit')).toEqual([{ n: 1 }])
  })

  it('refuses an update of a row changed since it was read with EAGAIN, leaving the other write in place', async () => {
    const r = await people().insert({ email: 'd@example.com', name: 'Di' })
    await t.exec(`UPDATE people SET name = 'Other' WHERE id = 1`)
    expectErr(await caught(people().update(r, { ...r.record, age: 5 })), 'EAGAIN', /changed in the database since it was read/)
    expect((await people().get(['1']))!.record).toMatchObject({ name: 'Other', age: null })
  })

  it('refuses an update of a row deleted since it was read with ENOENT', async () => {
    const r = await people().insert({ email: 'e@example.com', name: 'Ed' })
    await t.exec(`DELETE FROM people`)
    expectErr(await caught(people().update(r, { ...r.record, age: 5 })), 'ENOENT')
  })

  it('maps a unique violation to EEXIST with the database reason, row unchanged', async () => {
    await people().insert({ email: 'f@example.com', name: 'F' })
    const g = await people().insert({ email: 'g@example.com', name: 'G' })
    expectErr(await caught(people().insert({ email: 'f@example.com', name: 'F2' })), 'EEXIST', /duplicate key value violates unique constraint "people_email_key".*Key \(email\)=\(f@example.com\) already exists/)
    expectErr(await caught(people().update(g, { email: 'f@example.com' })), 'EEXIST', /people_email_key/)
    expect((await people().get(g.key))!.record.email).toBe('g@example.com')
  })

  it('maps foreign key, not null and check violations to EINVAL with the database reason', async () => {
    const r = await people().insert({ email: 'h@example.com', name: 'H' })
    expectErr(await caught(people().update(r, { team_id: 99 })), 'EINVAL', /violates foreign key constraint "people_team_id_fkey".*Key \(team_id\)=\(99\) is not present in table "teams"/)
    expectErr(await caught(people().update(r, { name: null })), 'EINVAL', /null value in column "name" .*violates not-null constraint/)
    expectErr(await caught(people().update(r, { age: -1 })), 'EINVAL', /violates check constraint "people_age_check"/)
    expectErr(await caught(people().update(r, { name: 'x'.repeat(41) })), 'EINVAL', /value too long for type character varying\(40\)/)
    expectErr(await caught(people().update(r, { born: 'someday' })), 'EINVAL', /invalid input syntax for type date/)
    expectErr(await caught(people().insert({ email: 'i@example.com' })), 'EINVAL', /not-null/)
    expect((await people().get(r.key))!.record).toEqual(r.record)
  })

  it('refuses values of the wrong shape, unknown fields and generated columns with EINVAL naming the field', async () => {
    const r = await people().insert({ email: 'j@example.com', name: 'J' })
    expectErr(await caught(people().update(r, { age: '3' })), 'EINVAL', /^age: expected an integer/)
    expectErr(await caught(people().update(r, { big: 1.5 })), 'EINVAL', /^big: expected an integer/)
    expectErr(await caught(people().update(r, { avatar: 'not base64!' })), 'EINVAL', /^avatar: expected base64/)
    expectErr(await caught(people().update(r, { tags: 'x' })), 'EINVAL', /^tags: expected an array/)
    expectErr(await caught(people().update(r, { nope: 1 })), 'EINVAL', /^nope: no such column in people/)
    expectErr(await caught(people().update(r, { slug: 'x' })), 'EINVAL', /^slug: generated by the database/)
  })

  it('deleting a row referenced by another is EINVAL; a missing row is ENOENT', async () => {
    const p = await people().insert({ email: 'k@example.com', name: 'K' })
    await memberships().insert({ team_id: 1, person_id: p.record.id, role: 'lead' })
    expectErr(await caught(people().delete(p.key)), 'EINVAL', /violates foreign key constraint/)
    await memberships().delete(['1', p.key[0]!])
    await people().delete(p.key)
    expectErr(await caught(people().delete(p.key)), 'ENOENT')
  })

  it('handles composite keys: get, list in key order, update and delete', async () => {
    for (const name of ['a', 'b', 'c']) await people().insert({ email: `${name}@x.org`, name })
    for (const [team, person] of [[2, 1], [1, 3], [1, 1], [2, 2]]) await memberships().insert({ team_id: team, person_id: String(person), role: 'member' })
    const page1 = await memberships().listKeys(3)
    expect(page1.rows.map(r => r.key)).toEqual([['1', '1'], ['1', '3'], ['2', '1']])
    const page2 = await memberships().listKeys(3, page1.next)
    expect(page2).toEqual({ rows: [{ key: ['2', '2'] }] })
    const m = (await memberships().get(['1', '3']))!
    expect(m.record).toEqual({ team_id: 1, person_id: '3', role: 'member' })
    await memberships().update(m, { role: 'lead' })
    expect((await memberships().get(['1', '3']))!.record.role).toBe('lead')
    await memberships().delete(['1', '3'])
    expect(await memberships().get(['1', '3'])).toBeUndefined()
  })

  it('renders the whole table as ndjson and csv, and refuses past the cap with EFBIG naming the folder', async () => {
    await people().insert({ email: 'a@x.org', name: 'A', tags: ['p', 'q'], age: 1 })
    await people().insert({ email: 'b@x.org', name: 'B, "the second"', tags: [''], prefs: { k: 1 } })
    const table = db.tables.get('teams')!
    expect((await table.renderWhole('ndjson', 1 << 20)).toString()).toBe('{"id":1,"name":"core"}\n{"id":2,"name":"docs"}\n')
    expect((await table.renderWhole('csv', 1 << 20)).toString()).toBe('id,name\n1,core\n2,docs\n')
    const csv = (await people().renderWhole('csv', 1 << 20)).toString().split('\n')
    expect(csv[0]).toBe('id,email,name,age,team_id,balance,score,born,seen,local_seen,avatar,prefs,raw,tags,grid,stamps,big,active,feeling,slug')
    expect(csv[1]).toBe('1,a@x.org,A,1,,,,,,,,,,"[""p"",""q""]",,,,true,,a')
    expect(csv[2]).toBe('2,b@x.org,"B, ""the second""",,,,,,,,,"{""k"":1}",,"[""""]",,,,true,,"b, ""the second"""')
    expectErr(await caught(people().renderWhole('ndjson', 100)), 'EFBIG', /people\.ndjson would be larger than 100 bytes; read the rows one by one in people\//)
  })

  it('reads from the catalog which writes a view or materialized view refuses, with the database reasons', async () => {
    await t.exec(`CREATE VIEW team_sizes AS SELECT team_id, count(*) AS n FROM memberships GROUP BY team_id;
      CREATE VIEW core_teams AS SELECT id, name FROM teams WHERE id < 10;
      CREATE MATERIALIZED VIEW team_names AS SELECT id, name FROM teams`)
    const db2 = await t.open({ tables: { teams: {}, team_sizes: { key: ['team_id'] }, core_teams: { key: ['id'] }, team_names: { key: ['id'] } } })
    expect(db2.tables.get('teams')!.info.refuses).toEqual({})
    expect(db2.tables.get('core_teams')!.info.refuses).toEqual({})
    expect(db2.tables.get('team_sizes')!.info.refuses).toEqual({
      update: expect.stringMatching(/^cannot update view "team_sizes": Views containing GROUP BY are not automatically updatable\. \(hint: /),
      insert: expect.stringMatching(/^cannot insert into view "team_sizes"/),
      delete: expect.stringMatching(/^cannot delete from view "team_sizes"/),
    })
    const names = db2.tables.get('team_names')!
    expect(names.info.refuses).toEqual({ update: 'cannot change materialized view "team_names"', insert: 'cannot change materialized view "team_names"', delete: 'cannot change materialized view "team_names"' })
    const row = (await names.get(['1']))!
    expectErr(await caught(names.update(row, { name: 'x' })), 'EROFS', /^cannot change materialized view "team_names"$/)
    expectErr(await caught(names.delete(['1'])), 'EROFS', /cannot change materialized view/)
  })

  it('keeps the padding of character(n) values and arrays, and finds a row by its key with or without the padding', async () => {
    await t.exec(`CREATE TABLE codes (code char(4) PRIMARY KEY, alts char(2)[])`)
    const db2 = await t.open({ tables: ['codes'] })
    const codes = db2.tables.get('codes')!
    const r = await codes.insert({ code: 'ab', alts: ['x', null, 'yz'] })
    expect(r.record).toEqual({ code: 'ab  ', alts: ['x ', null, 'yz'] })
    expect(r.key).toEqual(['ab  '])
    expect((await codes.get(['ab']))!.record.code).toBe('ab  ')
    expect((await codes.listKeys(10)).rows).toEqual([{ key: ['ab  '] }])
    expect((await codes.renderWhole('ndjson', 1 << 20)).toString()).toBe('{"code":"ab  ","alts":["x ",null,"yz"]}\n')
  })

  it('tells key text its columns can hold from text they cannot, asking the database for types such as uuid', async () => {
    await t.exec(`CREATE TABLE tokens (id uuid PRIMARY KEY DEFAULT gen_random_uuid())`)
    const db2 = await t.open({ tables: ['tokens', 'memberships'] })
    const tokens = db2.tables.get('tokens')!
    expect(await tokens.keyValues(['new'])).toBeUndefined()
    expect(await tokens.keyValues(['6ba7b810-9dad-11d1-80b4-00c04fd430c8'])).toEqual({ id: '6ba7b810-9dad-11d1-80b4-00c04fd430c8' })
    expect(await db2.tables.get('memberships')!.keyValues(['1', '9007199254740993'])).toEqual({ team_id: 1, person_id: '9007199254740993' })
    expect(await db2.tables.get('memberships')!.keyValues(['1', 'x'])).toBeUndefined()
    expect(await db2.tables.get('memberships')!.keyValues(['99999999999', '1'])).toBeUndefined()
  })

  it('names rows of keys with any characters and reads them back', async () => {
    await t.exec(`CREATE TABLE notes (title text PRIMARY KEY, body text)`)
    const db2 = await t.open({ tables: ['notes'] })
    const notes = db2.tables.get('notes')!
    const keys = ['a/b', 'x,y', '', '.hidden', '100%', 'ünïcødé ✓', 'x'.repeat(400)]
    for (const k of keys) await notes.insert({ title: k, body: k.slice(0, 3) })
    const listed = (await notes.listKeys(100)).rows.map(r => r.key[0])
    expect([...listed].sort()).toEqual([...keys].sort())
    for (const k of keys) expect((await notes.get([k]))!.record.title).toBe(k)
  })
})
