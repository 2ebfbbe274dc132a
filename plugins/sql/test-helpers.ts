import { randomBytes } from 'node:crypto'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { openSqlDatabase, type SqlDatabase, type SqlDatabaseOptions } from './database.ts'
import type { SqlSource } from './source.ts'

/** The test server: PostgreSQL on 127.0.0.1:5432, trust auth, database `test`. */
export const PG_URL = process.env.FACET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** A fresh place to make tables in: a schema of its own on the test server, or a schema of its own in an in-memory PGlite. */
export interface TestDb {
  readonly backend: 'pg' | 'pglite'
  /** The schema to create tables in. */
  readonly schema: string
  /** How FacetFS reaches this database: `{ url }` or `{ pglite }`. */
  readonly connection: { url: string } | { pglite: PGlite }
  /** Runs SQL outside FacetFS (as another client would). Rows come back as objects, parsed by node-postgres / PGlite defaults. */
  exec(sql: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>
  /** Opens FacetFS's view of this database. */
  open(options?: Omit<SqlDatabaseOptions, 'url' | 'pglite' | 'schema'>): Promise<SqlDatabase>
  /** Drops the schema (or closes the PGlite) and every database FacetFS opened on it. */
  drop(): Promise<void>
}

/** Makes a {@link TestDb} on the real server, in a schema named `facet_test_<random>`. */
export async function pgTestDb(): Promise<TestDb> {
  const schema = `facet_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.query(`SET search_path = ${schema}`)
  const opened: SqlDatabase[] = []
  return {
    backend: 'pg',
    schema,
    connection: { url: PG_URL },
    exec: async (sql, params) => (await admin.query(sql, params)).rows as Array<Record<string, unknown>>,
    async open(options = {}) {
      const db = await openSqlDatabase({ url: PG_URL, schema, ...options })
      opened.push(db)
      return db
    },
    async drop() {
      for (const db of opened) await db.close().catch(() => {})
      await admin.query(`DROP SCHEMA ${schema} CASCADE`)
      await admin.end()
    },
  }
}

let shared: Promise<PGlite> | undefined

/** One in-memory PGlite per test file: starting one costs seconds, a schema in it milliseconds. */
export function sharedPglite(): Promise<PGlite> {
  shared ??= (async () => {
    const lite = new PGlite()
    await lite.waitReady
    return lite
  })()
  return shared
}

/** Makes a {@link TestDb} in a schema of its own in the file's shared in-memory PGlite. */
export async function pgliteTestDb(): Promise<TestDb> {
  const lite = await sharedPglite()
  const schema = `facet_test_${randomBytes(6).toString('hex')}`
  await lite.exec(`CREATE SCHEMA ${schema}; SET search_path = ${schema};`)
  const opened: SqlDatabase[] = []
  return {
    backend: 'pglite',
    schema,
    connection: { pglite: lite },
    exec: async (sql, params) => {
      if (params) return (await lite.query<Record<string, unknown>>(sql, params)).rows
      const results = await lite.exec(sql)
      return (results[results.length - 1]?.rows ?? []) as Array<Record<string, unknown>>
    },
    async open(options = {}) {
      const db = await openSqlDatabase({ pglite: lite, schema, ...options })
      opened.push(db)
      return db
    },
    async drop() {
      for (const db of opened) await db.close().catch(() => {})
      await lite.exec(`DROP SCHEMA ${schema} CASCADE; SET search_path = public;`)
    },
  }
}

/** Both backends, for `describe.each`. */
export const BACKENDS = [
  { backend: 'pg', make: pgTestDb },
  { backend: 'pglite', make: pgliteTestDb },
] as const

/** Waits until `check` returns true, polling every 20 ms, for at most `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise(r => setTimeout(r, 20))
  }
}

/** Wraps a source so every statement it runs (also inside transactions) is counted. */
export function countedSource(source: SqlSource): { source: SqlSource; count: () => number } {
  let n = 0
  const wrapped: SqlSource = Object.create(source) as SqlSource
  wrapped.query = (text, params, options) => {
    n++
    return source.query(text, params, options)
  }
  wrapped.transaction = (fn, options) =>
    source.transaction(
      tx =>
        fn({
          query: (text, params, opts) => {
            n++
            return tx.query(text, params, opts)
          },
        }),
      options,
    )
  return { source: wrapped, count: () => n }
}
