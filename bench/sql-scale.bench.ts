import { readFileSync } from 'node:fs'
import { fuseAvailability, mountFuse } from '../src/fuse/index.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { createVfs, type Vfs } from '../src/vfs/vfs.ts'
import { createPgSource, sql } from '../plugins/sql/index.ts'
import { countedSource } from '../plugins/sql/test-helpers.ts'
import { timeCommand, type BenchContext } from './lib.ts'
import { createUsersSchema, PG_URL } from './pg-users.ts'

const MiB = 2 ** 20

/**
 * Wraps a Vfs so every method the FUSE adapter calls on it is counted by name: one FUSE
 * request is one Vfs call (lookup and getattr both land in `lstat`).
 */
function countedCalls(vfs: Vfs): { vfs: Vfs; calls: Map<string, number> } {
  const calls = new Map<string, number>()
  const served = new Proxy(vfs, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown
      if (typeof value !== 'function' || typeof prop !== 'string') return value
      return (...args: unknown[]) => {
        calls.set(prop, (calls.get(prop) ?? 0) + 1)
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return { vfs: served, calls }
}

/** This process's resident set size now (`VmRSS`) and its peak so far (`VmHWM`), in bytes. */
function memory(): { rss: number; hwm: number } {
  const status = readFileSync('/proc/self/status', 'utf8')
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
}

/**
 * `ls -l` of a big real PostgreSQL table mounted through FUSE with the sql plugin (served
 * by this process), against `ls` of the same folder and `psql` reading the same keys
 * (and the columns `ls -l` shows nothing of but a row must be rendered from) in the same
 * run. Also the peak RSS of this process while it serves the `ls -l`, sampled every
 * 50 ms. Targets: `ls -l` within 2x of `ls`, peak RSS < 200 MiB.
 * Rows: `BENCH_SQL_SCALE_ROWS`, else 1,000,000 (100,000 with `BENCH_QUICK=1`).
 */
export default async function bench(b: BenchContext): Promise<void> {
  const rows = Number(process.env.BENCH_SQL_SCALE_ROWS ?? (b.quick ? 100_000 : 1_000_000))
  const avail = await fuseAvailability()
  if (!avail.ok) {
    b.log(`skipped: ${avail.reason}`)
    return
  }
  const timeoutMs = 3_600_000

  const { admin, schema } = await createUsersSchema(b, 'facet_bench_scale')
  const t0 = process.hrtime.bigint()
  await admin.query(
    `INSERT INTO ${schema}.users SELECT g, 'user ' || g, 'user' || g || '@example.org', '2024-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, $1) g`,
    [rows],
  )
  await admin.query(`VACUUM ANALYZE ${schema}.users`)
  b.log(`${rows.toLocaleString('en')} rows in ${schema}.users (${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s)`)

  const { source, count: queries } = countedSource(createPgSource({ url: PG_URL }))
  const view = sql({ source, schema })
  const vfs = createVfs({ mounts: { '/db': view }, logger: silentLogger })
  b.defer(() => vfs.close())
  const { vfs: served, calls } = countedCalls(vfs)
  const dir = b.tmpdir('sql-scale')
  const mount = await mountFuse(served, dir)
  b.defer(() => mount.unmount())
  const folder = `${dir}/db/users`
  await timeCommand('ls', [`${dir}/db`])

  const snap = (): { q: number; calls: Map<string, number> } => ({ q: queries(), calls: new Map(calls) })
  const delta = (a: ReturnType<typeof snap>): string => {
    const z = snap()
    const per = (n: number): string => (n / rows).toFixed(2)
    const ops = [...z.calls].map(([op, n]) => [op, n - (a.calls.get(op) ?? 0)] as const).filter(([, n]) => n > 0)
    return [`${per(z.q - a.q)} queries`, ...ops.map(([op, n]) => (op === 'readdir' ? `${n} readdir pages` : `${per(n)} ${op}`))].join(', ')
  }

  // ls: names only (readdir pages)
  let s = snap()
  const lsMs = await timeCommand('ls', [folder], { timeoutMs })
  const lsCost = delta(s)
  b.log(`ls: ${(lsMs / 1000).toFixed(2)} s; per entry ${lsCost}`)

  // ls -l: names plus every entry's attributes; RSS sampled while it runs
  const before = memory()
  let peak = before.rss
  let heap = 0
  let external = 0
  const sampler = setInterval(() => {
    const m = process.memoryUsage()
    peak = Math.max(peak, m.rss)
    heap = Math.max(heap, m.heapUsed)
    external = Math.max(external, m.external)
  }, 50)
  s = snap()
  let lslMs: number
  try {
    lslMs = await timeCommand('ls', ['-l', folder], { timeoutMs })
  } finally {
    clearInterval(sampler)
  }
  const after = memory()
  peak = Math.max(peak, after.rss)
  const lslCost = delta(s)
  b.log(`ls -l: ${(lslMs / 1000).toFixed(2)} s; per entry ${lslCost}; RSS ${(before.rss / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB (VmHWM ${(after.hwm / MiB).toFixed(0)} MiB, JS heap used peak ${(heap / MiB).toFixed(0)} MiB, external peak ${(external / MiB).toFixed(0)} MiB)`)

  // psql reading the same keys with the columns a row file is rendered from, in key order
  const psqlMs = await timeCommand('psql', ['-X', '-q', '-At', '-d', PG_URL, '-c', `SELECT id, name, email, created FROM ${schema}.users ORDER BY id`], { timeoutMs })

  const n = rows.toLocaleString('en')
  const ratio = lslMs / lsMs
  b.row({ figure: `ls -l, ${n}-row PostgreSQL table`, value: lslMs, unit: 'ms', baseline: 'ls, same folder', baselineValue: lsMs, higherIsBetter: false, note: `target ≤ 2x: ${ratio <= 2 ? 'met' : 'missed'}; per entry ${lslCost}` })
  b.row({ figure: `ls -l, ${n}-row PostgreSQL table`, value: lslMs, unit: 'ms', baseline: 'psql, same keys+columns', baselineValue: psqlMs, higherIsBetter: false, note: 'SELECT id, name, email, created ORDER BY id' })
  b.row({ figure: `ls, ${n}-row PostgreSQL table`, value: lsMs, unit: 'ms', baseline: 'psql, same keys+columns', baselineValue: psqlMs, higherIsBetter: false, note: `per entry ${lsCost}` })
  b.row({ figure: `peak RSS of FacetFS during ls -l, ${n} rows`, value: peak / MiB, unit: 'MiB', baseline: 'RSS before ls -l', baselineValue: before.rss / MiB, higherIsBetter: false, note: `target < 200 MiB: ${peak < 200 * MiB ? 'met' : 'missed'}; in-process mount, sampled every 50 ms; growth ${((peak - before.rss) / MiB).toFixed(0)} MiB` })
}
