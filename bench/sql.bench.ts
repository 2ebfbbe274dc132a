import pg from 'pg'
import { fuseAvailability, mountFuse } from '../src/fuse/index.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import { sql } from '../plugins/sql/index.ts'
import { mountBareFuse, type BareMount, type BareTree } from './baselines/bare-fuse.ts'
import { BARE_FUSE_NATIVE, fuseNativeAvailability, mountBareFuseNative } from './baselines/bare-fuse-native.ts'
import { median, nodeChild, timeCommand, type BenchContext, CAT_LOOP } from './lib.ts'
import { createUsersSchema, PG_URL } from './pg-users.ts'

const BARE = 'bare fuse-napi'

/**
 * SQL view figures on the PostgreSQL server: `cat` of one row through FUSE (every read
 * asks the database: `revalidateMs: 0`) against the same `SELECT` run directly with
 * `pg` plus the bare FUSE floor; and `ls` of a 100,000-row table against the bare
 * handler listing the same names (on fuse-napi, and on fuse-native: the old floor).
 */
export default async function bench(b: BenchContext): Promise<void> {
  const rows = b.quick ? 10_000 : 100_000
  const cats = b.quick ? 300 : 2_000
  const reps = b.quick ? 1 : 3
  const avail = await fuseAvailability()
  if (!avail.ok) {
    b.log(`skipped: ${avail.reason}`)
    return
  }

  const { admin, schema } = await createUsersSchema(b, 'facet_bench')
  await admin.query(
    `INSERT INTO ${schema}.users SELECT g, 'user ' || g, 'user' || g || '@example.org', '2024-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, $1) g`,
    [rows],
  )
  await admin.query(`ANALYZE ${schema}.users`)
  b.log(`${rows} rows in ${schema}.users`)

  const view = sql({ url: PG_URL, schema, revalidateMs: 0 })
  const vfs = createVfs({ mounts: { '/db': view }, logger: silentLogger })
  b.defer(() => vfs.close())
  const oursDir = b.tmpdir('sql-ours')
  const ours = await mountFuse(vfs, oursDir)
  b.defer(() => ours.unmount())

  const id = rows >> 1
  const rowBytes = await vfs.readFile(`/db/users/${id}.json`)
  const names: BareTree = {}
  for (let i = 1; i <= rows; i++) names[`${i}.json`] = i === id ? rowBytes : new Uint8Array(0)
  const bareDir = b.tmpdir('sql-bare')
  const bare = await mountBareFuse(bareDir, { users: names })
  b.defer(() => bare.unmount())
  const oldFloor = fuseNativeAvailability()
  let old: BareMount | undefined
  if (oldFloor.ok) {
    old = await mountBareFuseNative(b.tmpdir('sql-bare-fuse-native'), { users: names })
    b.defer(() => old!.unmount())
  } else b.log(oldFloor.reason)

  // cat of one row
  const oursCat = await nodeChild<{ ms: number }>(CAT_LOOP, [`${oursDir}/db/users/${id}.json`, String(cats)], { timeoutMs: 600_000 })
  const bareCat = await nodeChild<{ ms: number }>(CAT_LOOP, [`${bareDir}/users/${id}.json`, String(cats)])
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  const q = { text: `SELECT id, name, email, created FROM ${schema}.users WHERE id = $1`, values: [id] }
  for (let i = 0; i < 50; i++) await client.query(q)
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < cats; i++) await client.query(q)
  const pgMs = Number(process.hrtime.bigint() - t0) / 1e6
  await client.end()
  const perOurs = (oursCat.ms * 1000) / cats
  const perBare = (bareCat.ms * 1000) / cats
  const perPg = (pgMs * 1000) / cats
  const floor = perPg + perBare
  const target = perOurs <= 2 * floor
  b.row({ figure: 'cat of one row (open+read+close)', value: perOurs, unit: 'µs', baseline: 'direct pg SELECT + bare FUSE cat', baselineValue: floor, higherIsBetter: false, note: `target ≤ 2x: ${target ? 'met' : 'missed'}; revalidateMs 0: each cat asks the database twice (stat, open)` })
  // The same cat with the default revalidation window (1 s): repeated reads are served from the row cache.
  const cachedView = createVfs({ mounts: { '/db': sql({ url: PG_URL, schema }) }, logger: silentLogger })
  b.defer(() => cachedView.close())
  const cachedDir = b.tmpdir('sql-cached')
  const cachedMount = await mountFuse(cachedView, cachedDir)
  b.defer(() => cachedMount.unmount())
  const cachedCat = await nodeChild<{ ms: number }>(CAT_LOOP, [`${cachedDir}/db/users/${id}.json`, String(cats)], { timeoutMs: 600_000 })
  const perCached = (cachedCat.ms * 1000) / cats
  b.row({ figure: 'cat of one row, default 1 s revalidation', value: perCached, unit: 'µs', baseline: 'direct pg SELECT + bare FUSE cat', baselineValue: floor, higherIsBetter: false, note: 'rows re-read from the database at most once a second' })
  b.row({ figure: 'one-row SELECT by key', value: perPg, unit: 'µs', baseline: 'same, for reference', baselineValue: perPg, higherIsBetter: false, note: 'pg.Client in this process' })
  b.row({ figure: 'cat of one file', value: perBare, unit: 'µs', baseline: BARE, baselineValue: perBare, higherIsBetter: false, note: 'the FUSE floor, for reference' })

  // ls of the table
  const ls = async (folder: string): Promise<number[]> => {
    await timeCommand('ls', [folder], { timeoutMs: 600_000 })
    const out: number[] = []
    for (let i = 0; i < reps; i++) out.push(await timeCommand('ls', [folder], { timeoutMs: 600_000 }))
    return out
  }
  const oursLs = await ls(`${oursDir}/db/users`)
  const bareLs = await ls(`${bareDir}/users`)
  b.row({ figure: `ls, ${rows.toLocaleString('en')}-row table`, value: median(oursLs), unit: 'ms', baseline: BARE, baselineValue: median(bareLs), higherIsBetter: false, note: `median of ${reps}, keyset pages from the database` })
  if (old) {
    const oldLs = await ls(`${old.mountpoint}/users`)
    b.row({ figure: `ls, ${rows.toLocaleString('en')}-row table`, value: median(oursLs), unit: 'ms', baseline: BARE_FUSE_NATIVE, baselineValue: median(oldLs), higherIsBetter: false, note: `median of ${reps}; the old floor, same options` })
  }
}
