import pg from 'pg'

/** The test server: PostgreSQL on 127.0.0.1:5432, trust auth, database `test` (`FACET_TEST_PG_URL` overrides it). */
export const TEST_PG_URL = process.env.FACET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/**
 * An admin pool on the server at `url` when it answers, else why not: a suite that needs
 * PostgreSQL skips with that reason instead of failing on every test.
 */
export async function reachPostgres(url: string = TEST_PG_URL): Promise<{ admin: pg.Pool | undefined; reason: string }> {
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  try {
    await pool.query('SELECT 1')
    return { admin: pool, reason: '' }
  } catch (err) {
    await pool.end().catch(() => {})
    return { admin: undefined, reason: (err as Error).message }
  }
}
