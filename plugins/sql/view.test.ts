import { constants as fsc } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isVfsError } from '../../src/vfs/errors.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type ChangeEvent, type Vfs } from '../../src/vfs/vfs.ts'
import { runViewConformance, errnoOf } from '../../src/views/testing.ts'
import { DEMO_SQL } from './demo.ts'
import { BACKENDS, pgliteTestDb, until, type TestDb } from './test-helpers.ts'
import { sql, type SqlOptions } from './view.ts'

function viewOf(t: TestDb, options: Partial<SqlOptions> = {}) {
  return sql({ ...t.connection, schema: t.schema, ...options })
}

describe.each(BACKENDS)('the sql view on $backend', ({ make }) => {
  let t: TestDb
  let vfs: Vfs
  const mount = async (options: Partial<SqlOptions> = {}) => {
    vfs = createVfs({ mounts: { '/db': viewOf(t, options) }, logger: silentLogger })
    return vfs
  }

  beforeEach(async () => {
    t = await make()
    await t.exec(DEMO_SQL)
  })
  afterEach(async () => {
    await vfs?.close()
    await t.drop()
  })

  it('shows each table as a folder beside its whole-table files', async () => {
    const v = await mount()
    expect((await v.readdirAll('/db')).map(e => `${e.name}:${e.kind}`)).toEqual([
      'authors:dir', 'authors.csv:file', 'authors.ndjson:file',
      'books:dir', 'books.csv:file', 'books.ndjson:file',
      'reviews:dir', 'reviews.csv:file', 'reviews.ndjson:file',
    ])
    expect((await v.readdirAll('/db/reviews')).map(e => e.name)).toEqual(['.schema', '1,babbage.json', '2,church.json', '3,searle.json'])
  })

  it('reads a row as JSON with its exact size on stat', async () => {
    const v = await mount()
    const text = (await v.readFile('/db/reviews/1,babbage.json')).toString()
    expect(text).toBe(JSON.stringify({ book_id: 1, reviewer: 'babbage', stars: 5, body: 'Saw further than I did.', created_at: '2024-03-01T10:00:00.123456+00:00' }, null, 2) + '\n')
    expect((await v.stat('/db/reviews/1,babbage.json')).size).toBe(Buffer.byteLength(text))
  })

  it('labels row names with a column, trimmed to fit, and resolves any label to the row', async () => {
    await t.exec(`UPDATE authors SET name = repeat('Ada ', 80) WHERE id = 1`)
    const v = await mount({ tables: { authors: { label: 'name' } } })
    const names = (await v.readdirAll('/db/authors')).map(e => e.name)
    expect(names[0]).toBe('.schema')
    expect(names.slice(2, 4)).toEqual(['2~Alan Turing.json', '3~Grace Hopper.json'])
    expect(Buffer.byteLength(names[1]!)).toBeLessThanOrEqual(255)
    expect(names[1]).toMatch(/^1~Ada Ada .*Ada\.json$/)
    expect(JSON.parse((await v.readFile('/db/authors/2.json')).toString()).name).toBe('Alan Turing')
    expect(JSON.parse((await v.readFile('/db/authors/2~someone else.json')).toString()).name).toBe('Alan Turing')
    await v.writeFile('/db/authors/2~Alan Turing.json', JSON.stringify({ id: 2, name: 'Alan Turing', born: '1912-06-24' }))
    expect(await t.exec(`SELECT born::text FROM authors WHERE id = 2`)).toEqual([{ born: '1912-06-24' }])
  })

  it('renders rows as YAML when asked', async () => {
    const v = await mount({ format: 'yaml' })
    expect((await v.readFile('/db/authors/1.yaml')).toString()).toBe('id: 1\nname: Ada Lovelace\nborn: 1815-12-10\n')
  })

  it('writes an edit to the database and reads it back', async () => {
    const v = await mount()
    const book = JSON.parse((await v.readFile('/db/books/4.json')).toString())
    await v.writeFile('/db/books/4.json', JSON.stringify({ ...book, price: '15.00', tags: ['navy'] }))
    expect(await t.exec(`SELECT price::text, tags FROM books WHERE id = 4`)).toEqual([{ price: '15.00', tags: ['navy'] }])
    expect(JSON.parse((await v.readFile('/db/books/4.json')).toString())).toMatchObject({ price: '15.00', tags: ['navy'] })
  })

  it('inserts a new file and deletes with rm', async () => {
    const v = await mount()
    await v.writeFile('/db/authors/4.json', JSON.stringify({ id: 4, name: 'Edsger Dijkstra', born: '1930-05-11' }))
    expect(await t.exec(`SELECT name FROM authors WHERE id = 4`)).toEqual([{ name: 'Edsger Dijkstra' }])
    expect((await v.readdirAll('/db/authors')).map(e => e.name)).toContain('4.json')
    await v.unlink('/db/authors/4.json')
    expect(await t.exec(`SELECT name FROM authors WHERE id = 4`)).toEqual([])
    expect(await errnoOf(v.stat('/db/authors/4.json'))).toBe('ENOENT')
  })

  it('refuses each constraint violation with its errno, keeps the row, and says why in .errors', async () => {
    const v = await mount()
    const cases: Array<[string, object, string, RegExp]> = [
      ['/db/authors/2.json', { id: 2, name: 'Ada Lovelace', born: null }, 'EEXIST', /duplicate key value violates unique constraint "authors_name_key"/],
      ['/db/books/2.json', { author_id: 99 }, 'EINVAL', /violates foreign key constraint "books_author_id_fkey"/],
      ['/db/books/2.json', { title: null }, 'EINVAL', /null value in column "title"/],
      ['/db/books/2.json', { price: '-1' }, 'EINVAL', /violates check constraint "books_price_check"/],
      ['/db/books/2.json', { published: 'soon' }, 'EINVAL', /invalid input syntax for type date/],
      ['/db/books/2.json', { stars: 3 }, 'EINVAL', /stars: no such column in books/],
      ['/db/authors/9.json', { id: 9 }, 'EINVAL', /null value in column "name"/],
    ]
    for (const [path, change, code, reason] of cases) {
      const before = (await v.readFile(path).catch(() => Buffer.from('{}'))).toString()
      const next = { ...JSON.parse(before), ...change }
      expect(await errnoOf(v.writeFile(path, JSON.stringify(next))), path + JSON.stringify(change)).toBe(code)
      const folder = path.slice(0, path.lastIndexOf('/'))
      expect((await v.readFile(`${folder}/.errors`)).toString()).toMatch(reason)
      if (before !== '{}') expect((await v.readFile(path)).toString()).toBe(before)
    }
    const err = await v.unlink('/db/authors/1.json').catch((e: unknown) => e)
    expect(isVfsError(err, 'EINVAL')).toBe(true)
    expect((err as Error).message).toMatch(/violates foreign key constraint "books_author_id_fkey" on table "books".*, unlink '\/db\/authors\/1.json'$/)
    expect(await t.exec(`SELECT count(*)::int AS n FROM authors`)).toEqual([{ n: 3 }])
  })

  it('refuses an edit of a row another client changed since it was opened with EAGAIN', async () => {
    const v = await mount({ revalidateMs: 0 })
    const fh = await v.open('/db/books/1.json', fsc.O_RDWR)
    const text = Buffer.from(await v.read(fh, 0, 65536)).toString()
    await t.exec(`UPDATE books SET title = 'Sketch of the Analytical Engine' WHERE id = 1`)
    const edited = Buffer.from(text.replace('"price": "12.50"', '"price": "13.00"'))
    await v.ftruncate(fh, 0)
    await v.write(fh, 0, edited)
    expect(await errnoOf(v.release(fh))).toBe('EAGAIN')
    expect(await t.exec(`SELECT title, price::text FROM books WHERE id = 1`)).toEqual([{ title: 'Sketch of the Analytical Engine', price: '12.50' }])
  })

  it('serves the whole table as csv and ndjson, and refuses one over the cap with EFBIG', async () => {
    const v = await mount()
    expect((await v.readFile('/db/authors.csv')).toString()).toBe('id,name,born\n1,Ada Lovelace,1815-12-10\n2,Alan Turing,1912-06-23\n3,Grace Hopper,1906-12-09\n')
    const nd = (await v.readFile('/db/books.ndjson')).toString()
    expect(nd.split('\n')[3]).toBe('{"id":4,"title":"The Education of a Computer","author_id":3,"published":"1952-05-02","price":null,"tags":[]}')
    expect((await v.stat('/db/books.ndjson')).size).toBe(Buffer.byteLength(nd))
    vfs.close()
    const small = await mount({ maxWholeFileBytes: 100 })
    const err = await small.readFile('/db/books.csv').catch((e: unknown) => e)
    expect(isVfsError(err, 'EFBIG')).toBe(true)
    expect((err as Error).message).toMatch(/books\.csv would be larger than 100 bytes; read the rows one by one in books\//)
  })

  it('describes the table in .schema', async () => {
    const v = await mount()
    const doc = JSON.parse((await v.readFile('/db/reviews/.schema')).toString())
    expect(doc.key).toEqual(['book_id', 'reviewer'])
    expect(doc.columns.find((c: { field: string }) => c.field === 'created_at')).toEqual({ field: 'created_at', type: 'timestamp with time zone', nullable: false, default: 'now()' })
    expect(doc.constraints.map((c: { type: string }) => c.type).sort()).toEqual(['check', 'foreign key', 'primary key'])
  })

  it('refuses JSON that is not an object, or a null key, with EINVAL and the reason in .errors; the row is unchanged', async () => {
    const v = await mount()
    const before = (await v.readFile('/db/books/2.json')).toString()
    const cases: Array<[string, RegExp]> = [
      ['[1,2]', /expected a JSON object of the columns of books, got an array/],
      ['null', /expected a JSON object of the columns of books, got null/],
      ['"two"', /got a string/],
      ['{"id": null, "title": "x"}', /id: a key column cannot be null/],
    ]
    for (const [text, reason] of cases) {
      const err = await v.writeFile('/db/books/2.json', text).catch((e: unknown) => e)
      expect(isVfsError(err, 'EINVAL'), text).toBe(true)
      expect((err as Error).message).toMatch(reason)
      expect((await v.readFile('/db/books/.2.json.error')).toString()).toMatch(reason)
      expect((await v.readFile('/db/books/2.json')).toString()).toBe(before)
    }
  })

  it('takes a key column left out of an edit from the file name, and refuses a key that is not the name with EINVAL', async () => {
    const v = await mount()
    await v.writeFile('/db/books/2.json', JSON.stringify({ title: 'On Computable Numbers, with an Application' }))
    expect(await t.exec(`SELECT title, price::text FROM books WHERE id = 2`)).toEqual([{ title: 'On Computable Numbers, with an Application', price: '9.99' }])
    await v.writeFile('/db/reviews/1,babbage.json', JSON.stringify({ book_id: 1, stars: 4 }))
    expect(await t.exec(`SELECT stars FROM reviews WHERE book_id = 1 AND reviewer = 'babbage'`)).toEqual([{ stars: 4 }])
    const err = await v.writeFile('/db/books/2.json', JSON.stringify({ id: 3, title: 'x' })).catch((e: unknown) => e)
    expect(isVfsError(err, 'EINVAL')).toBe(true)
    expect((err as Error).message).toMatch(/the record's key is '3' but the file is named '2.json'/)
  })

  it('inserts a new file without its key with the table defaults and names the row by the key the database gave', async () => {
    await t.exec(`CREATE TABLE notes (id serial PRIMARY KEY, title text NOT NULL, done boolean NOT NULL DEFAULT false)`)
    const v = await mount({ tables: ['notes'] })
    const events: ChangeEvent[] = []
    v.watch('/db', e => events.push(e))
    await v.writeFile('/db/notes/new.json', JSON.stringify({ title: 'first' }))
    await v.writeFile('/db/notes/new.json', JSON.stringify({ title: 'second' }))
    expect((await v.readdirAll('/db/notes')).map(e => e.name)).toEqual(['.schema', '1.json', '2.json'])
    expect(JSON.parse((await v.readFile('/db/notes/2.json')).toString())).toEqual({ id: 2, title: 'second', done: false })
    expect(await errnoOf(v.stat('/db/notes/new.json'))).toBe('ENOENT')
    expect(events.filter(e => e.type === 'create').map(e => e.path)).toEqual(expect.arrayContaining(['/db/notes/1.json', '/db/notes/2.json']))
    // A name that is a key gives the key.
    await v.writeFile('/db/notes/42.json', JSON.stringify({ title: 'named' }))
    expect(await t.exec(`SELECT id, title FROM notes WHERE id = 42`)).toEqual([{ id: 42, title: 'named' }])
  })

  it('inserts into identity and uuid keys by their defaults, and refuses a key name for a GENERATED ALWAYS key with EINVAL', async () => {
    await t.exec(`CREATE TABLE tickets (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text);
      CREATE TABLE tokens (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), label text)`)
    const v = await mount({ tables: ['tickets', 'tokens'] })
    await v.writeFile('/db/tickets/new.json', JSON.stringify({ title: 'broken' }))
    expect((await v.readdirAll('/db/tickets')).map(e => e.name)).toEqual(['.schema', '1.json'])
    const err = await v.writeFile('/db/tickets/7.json', JSON.stringify({ title: 'x' })).catch((e: unknown) => e)
    expect(isVfsError(err, 'EINVAL')).toBe(true)
    expect((err as Error).message).toMatch(/id is GENERATED ALWAYS: the database gives it; write the new row to a file whose name is not a key \(new\.json\)/)
    await v.writeFile('/db/tokens/new.json', JSON.stringify({ label: 'ci' }))
    const names = (await v.readdirAll('/db/tokens')).map(e => e.name)
    expect(names).toHaveLength(2)
    expect(names[1]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json$/)
    expect(JSON.parse((await v.readFile(`/db/tokens/${names[1]}`)).toString()).label).toBe('ci')
  })

  it('refuses a new file without its key when the key has no default and the name is not a key, with EINVAL naming the column', async () => {
    const v = await mount()
    const err = await v.writeFile('/db/authors/new.json', JSON.stringify({ name: 'Edsger Dijkstra' })).catch((e: unknown) => e)
    expect(isVfsError(err, 'EINVAL')).toBe(true)
    expect((err as Error).message).toMatch(/id: the key is missing and has no default, and 'new\.json' does not name a row of authors/)
    expect((await v.readFile('/db/authors/.errors')).toString()).toMatch(/^new\.json: EINVAL: .*id: the key is missing/)
    expect(await t.exec(`SELECT count(*)::int AS n FROM authors`)).toEqual([{ n: 3 }])
  })

  it('keeps the padding of character(n) values in rows, names, writes and whole-table files', async () => {
    await t.exec(`CREATE TABLE codes (code char(5) PRIMARY KEY, alts char(3)[], note char(4));
      INSERT INTO codes VALUES ('ab', '{x,yz,NULL}', NULL)`)
    const v = await mount({ tables: ['codes'] })
    expect((await v.readdirAll('/db/codes')).map(e => e.name)).toEqual(['.schema', 'ab   .json'])
    expect(JSON.parse((await v.readFile('/db/codes/ab   .json')).toString())).toEqual({ code: 'ab   ', alts: ['x  ', 'yz ', null], note: null })
    await v.writeFile('/db/codes/xyz.json', JSON.stringify({ note: 'q', alts: ['abc'] }))
    expect(await t.exec(`SELECT concat(code, '|') AS code, concat(note, '|') AS note, alts::text FROM codes WHERE code = 'xyz'`)).toEqual([{ code: 'xyz  |', note: 'q   |', alts: '{abc}' }])
    expect((await v.readFile('/db/codes.csv')).toString()).toBe('code,alts,note\nab   ,"[""x  "",""yz "",null]",\nxyz  ,"[""abc""]",q   \n')
  })

  it('refuses an invalid tsvector with EINVAL and the database reason', async () => {
    await t.exec(`CREATE TABLE docs (id integer PRIMARY KEY, words tsvector)`)
    const v = await mount({ tables: ['docs'] })
    const err = await v.writeFile('/db/docs/1.json', JSON.stringify({ words: 'a:1x' })).catch((e: unknown) => e)
    expect(isVfsError(err, 'EINVAL')).toBe(true)
    expect((err as Error).message).toMatch(/syntax error in tsvector: "a:1x"/)
    await v.writeFile('/db/docs/1.json', JSON.stringify({ words: 'a:1 b:2' }))
    expect(JSON.parse((await v.readFile('/db/docs/1.json')).toString())).toEqual({ id: 1, words: "'a':1 'b':2" })
  })

  it('shows a view the database cannot update without write bits, and refuses its writes with EROFS and the database reason', async () => {
    await t.exec(`CREATE VIEW book_counts AS SELECT author_id, count(*)::int AS n FROM books GROUP BY author_id;
      CREATE VIEW cheap_books AS SELECT id, title, price FROM books WHERE price < 10`)
    const v = await mount({ tables: { book_counts: { key: ['author_id'] }, cheap_books: { key: ['id'] } } })
    expect((await v.stat('/db/book_counts')).mode & 0o777).toBe(0o555)
    expect((await v.stat('/db/book_counts/2.json')).mode & 0o777).toBe(0o444)
    const cases: Array<[() => Promise<unknown>, RegExp]> = [
      [() => v.writeFile('/db/book_counts/2.json', JSON.stringify({ n: 5 })), /cannot update view "book_counts": Views containing GROUP BY are not automatically updatable\. \(hint: To enable updating the view, provide an INSTEAD OF UPDATE trigger/],
      [() => v.writeFile('/db/book_counts/9.json', JSON.stringify({ n: 5 })), /cannot insert into view "book_counts"/],
      [() => v.unlink('/db/book_counts/2.json'), /cannot delete from view "book_counts"/],
      [() => v.truncate('/db/book_counts/2.json', 0), /cannot update view "book_counts"/],
    ]
    for (const [run, reason] of cases) {
      const err = await run().catch((e: unknown) => e)
      expect(isVfsError(err, 'EROFS'), String(reason)).toBe(true)
      expect((err as Error).message).toMatch(reason)
    }
    expect(JSON.parse((await v.readFile('/db/book_counts/.schema')).toString()).refuses.update).toMatch(/^cannot update view "book_counts"/)
    // A view the database can update stays writable.
    expect((await v.stat('/db/cheap_books/2.json')).mode & 0o777).toBe(0o644)
    await v.writeFile('/db/cheap_books/2.json', JSON.stringify({ id: 2, price: '8.50' }))
    expect(await t.exec(`SELECT price::text FROM books WHERE id = 2`)).toEqual([{ price: '8.50' }])
  })

  it('says a materialized view is not populated yet with EINVAL, and serves it read-only with EROFS once refreshed', async () => {
    await t.exec(`CREATE MATERIALIZED VIEW author_names AS SELECT id, name FROM authors WITH NO DATA`)
    const v = await mount({ tables: { author_names: { key: ['id'] } }, revalidateMs: 0 })
    const listing = await v.readdirAll('/db/author_names').catch((e: unknown) => e)
    expect(isVfsError(listing, 'EINVAL')).toBe(true)
    expect((listing as Error).message).toMatch(/materialized view "author_names" has not been populated \(hint: Use the REFRESH MATERIALIZED VIEW command\.\)/)
    expect((await v.stat('/db/author_names.csv')).size).toBe(0)
    expect(await errnoOf(v.readFile('/db/author_names.csv'))).toBe('EINVAL')
    await t.exec(`REFRESH MATERIALIZED VIEW author_names`)
    expect((await v.readdirAll('/db/author_names')).map(e => e.name)).toEqual(['.schema', '1.json', '2.json', '3.json'])
    expect((await v.readFile('/db/author_names.csv')).toString()).toBe('id,name\n1,Ada Lovelace\n2,Alan Turing\n3,Grace Hopper\n')
    expect((await v.stat('/db/author_names/1.json')).mode & 0o777).toBe(0o444)
    for (const run of [() => v.writeFile('/db/author_names/1.json', '{"name":"x"}'), () => v.unlink('/db/author_names/1.json'), () => v.writeFile('/db/author_names/new.json', '{"name":"x"}')]) {
      const err = await run().catch((e: unknown) => e)
      expect(isVfsError(err, 'EROFS')).toBe(true)
      expect((err as Error).message).toMatch(/cannot change materialized view "author_names"/)
    }
  })

  it('reports changes made by other clients on the change bus when triggers are installed', async () => {
    const v = await mount({ installTriggers: true })
    await v.readdirAll('/db')
    const events: ChangeEvent[] = []
    v.watch('/db', e => events.push(e))
    await new Promise(r => setTimeout(r, 100))
    await t.exec(`INSERT INTO authors VALUES (7, 'Barbara Liskov', '1939-11-07')`)
    await t.exec(`UPDATE authors SET born = '1939-11-08' WHERE id = 7`)
    await until(() => events.length >= 2)
    expect(events.slice(0, 2).map(e => `${e.type} ${e.path}`)).toEqual(['create /db/authors/7.json', 'update /db/authors/7.json'])
    expect(JSON.parse((await v.readFile('/db/authors/7.json')).toString()).born).toBe('1939-11-08')
  })
})

describe('sql view conformance', () => {
  let t: TestDb | undefined
  runViewConformance(
    'sql (pglite)',
    async () => {
      await t?.drop()
      t = await pgliteTestDb()
      await t.exec(DEMO_SQL)
      return viewOf(t)
    },
    {
      folder: '/books',
      expectNames: ['1.json', '2.json', '3.json', '4.json', '.schema'],
      write: {
        existing: '4.json',
        valid: JSON.stringify({ id: 4, title: 'The Education of a Computer', author_id: 3, published: '1952-05-02', price: '3.50', tags: ['compilers'] }, null, 2) + '\n',
        invalid: ['{ not json', JSON.stringify({ id: 4, title: null }), JSON.stringify({ id: 4, published: 'never' }), JSON.stringify({ id: 5, title: 'x' }), JSON.stringify({ id: 4, price: '-2' })],
        create: { name: '5.json', content: JSON.stringify({ id: 5, title: 'A Mathematical Theory of Communication', author_id: 1, published: null, price: null, tags: [] }, null, 2) + '\n' },
        remove: true,
      },
    },
  )
})
