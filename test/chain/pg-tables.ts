import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import { afterAll, afterEach, beforeEach } from 'vitest'
import { postgresBackend } from '../../src/chain/postgres.ts'
import type { ChainBackend } from '../../src/chain/backend.ts'
import type { Chain } from '../../src/chain/store.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { TEST_PG_URL } from '../helpers/pg.ts'
import { tempHome } from './helpers.ts'

/** A chain table of a test's own in the test PostgreSQL, with the homes and mounts the test makes. */
export interface PgChainTable {
  /** The table (and `<table>_locks`), new for each test. */
  readonly table: string
  /** Homes made for the test, removed after it. */
  readonly homes: Awaited<ReturnType<typeof tempHome>>[]
  /** Mounts made for the test, closed after it. */
  readonly open: Vfs[]
  /** A backend on the table: a shared writer's, or (`shared` false) a single writer's. */
  backend(shared?: boolean): ChainBackend
}

/**
 * A {@link PgChainTable} made afresh for each test of the calling suite (tables named
 * `<prefix><12 hex digits>`): its mounts closed, its tables dropped and its homes removed
 * after each test, and `admin` ended after the suite.
 */
export function pgChainTableEach(prefix: string, admin: pg.Pool | undefined): PgChainTable {
  let table = ''
  const homes: PgChainTable['homes'] = []
  const open: Vfs[] = []
  beforeEach(() => {
    table = `${prefix}${randomBytes(6).toString('hex')}`
  })
  afterEach(async () => {
    for (const v of open.splice(0)) await v.close().catch(() => {})
    await admin!.query(`DROP TABLE IF EXISTS ${table}`)
    await admin!.query(`DROP TABLE IF EXISTS ${table}_locks`)
    for (const h of homes.splice(0)) await h.cleanup()
  })
  afterAll(async () => {
    await admin?.end()
  })
  return {
    get table() {
      return table
    },
    homes,
    open,
    backend: (shared = true) => postgresBackend({ url: TEST_PG_URL, table, sharedWriters: shared }),
  }
}

/** Each node's tree under `/c` after catching up: a line per entry with its path, kind and content (hex), `.history` left out. */
export async function trees(nodes: { vfs: Vfs; chain: Chain }[]): Promise<string[][]> {
  const out: string[][] = []
  for (const n of nodes) {
    await n.chain.catchUp()
    const lines: string[] = []
    const walk = async (dir: string) => {
      for (const e of (await n.vfs.readdirAll(dir)).sort((x, y) => (x.name < y.name ? -1 : 1))) {
        const p = `${dir}/${e.name}`
        if (p === '/c/.history') continue
        lines.push(`${p} ${e.kind}${e.kind === 'file' ? ` ${(await n.vfs.readFile(p)).toString('hex')}` : ''}`)
        if (e.kind === 'dir') await walk(p)
      }
    }
    await walk('/c')
    out.push(lines)
  }
  return out
}
