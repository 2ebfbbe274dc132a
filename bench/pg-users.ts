import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { BenchContext } from './lib.ts'

/** The PostgreSQL the SQL benches use: `FACET_BENCH_PG_URL`, else the machine's `test` database. */
export const PG_URL = process.env.FACET_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/**
 * Makes a throwaway schema `<prefix>_<random>` holding an empty `users` table
 * (id, name, email, created), dropped with the admin connection when the bench ends.
 */
export async function createUsersSchema(b: BenchContext, prefix: string): Promise<{ admin: pg.Client; schema: string }> {
  const schema = `${prefix}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  b.defer(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  })
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.query(`CREATE TABLE ${schema}.users (id integer PRIMARY KEY, name text NOT NULL, email text NOT NULL, created timestamptz NOT NULL)`)
  return { admin, schema }
}
