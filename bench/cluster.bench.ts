import { randomBytes } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import pg from 'pg'
import { chainMount } from '../src/chain/mount.ts'
import { postgresBackend } from '../src/chain/postgres.ts'
import { shareChainPath } from '../src/chain/sharing.ts'
import { Chain } from '../src/chain/store.ts'
import { generateIdentity, type Identity } from '../src/crypto/identity.ts'
import { WHOLE_FILE, type LockRequest } from '../src/vfs/locks/ranges.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { createVfs, type Vfs } from '../src/vfs/vfs.ts'
import type { BenchContext } from './lib.ts'
import { PG_URL } from './pg-users.ts'

/** JuiceFS's own metadata-engine benchmark, PostgreSQL engine, µs per operation: published figures, not measured here. */
const JUICEFS_PG_PUBLISHED = { create: 844, getattr: 350 } as const
const JUICEFS = 'JuiceFS on PostgreSQL, PUBLISHED (not measured)'

const person = (name: string): Identity => (({ seeds: _s, ...id }) => id)(generateIdentity(name))

/** The `q`-quantile (0…1) of `values`, nearest rank. */
function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!
}

const now = (): number => performance.now()

interface Node {
  name: string
  vfs: Vfs
  chain: Chain
}

/**
 * Several writers on one chain in PostgreSQL (issue 13): three in-process nodes, each with
 * its own backend (pool), identity and home, as in `test/chain/shared-writers.test.ts`, on
 * a fresh table of the machine's server. Measures creates per second through each node's
 * Vfs (one node, then three at once in one folder), how long after a close on one node
 * another reads the new content and hears of it (NOTIFY), flock round trips through the
 * lock table, and a lookup on another node; beside each, the bare PostgreSQL operation it
 * stands on, on the same server with the same connection settings (and JuiceFS's published
 * figures, labelled as such).
 */
export default async function clusterBench(b: BenchContext): Promise<void> {
  const perNode = b.quick ? 20 : 200
  const trials = b.quick ? 20 : 200
  const lockTrips = b.quick ? 50 : 500
  const statOps = b.quick ? 2_000 : 20_000
  const table = `facet_bench_cluster_${randomBytes(5).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  b.defer(async () => {
    for (const t of [table, `${table}_locks`, `${table}_base`]) await admin.query(`DROP TABLE IF EXISTS ${t}`)
    await admin.end()
  })
  const settings = (await admin.query<{ s: string }>("SELECT current_setting('synchronous_commit') || ', fsync ' || current_setting('fsync') || ', ' || split_part(version(), ' ', 2) AS s")).rows[0]!.s
  b.log(`table ${table} on ${PG_URL.replace(/:[^:@/]*@/, ':***@')} (PostgreSQL ${settings.split(', ').pop()}, synchronous_commit ${settings.split(', ').slice(0, 2).join(', ')})`)

  const [alice, bob, carol] = [person('alice'), person('bob'), person('carol')]
  const backend = () => postgresBackend({ url: PG_URL, table, sharedWriters: true })
  const node = async (name: string, identity: Identity, create: boolean): Promise<Node> => {
    const home = b.tmpdir(`cluster-${name}`)
    const chain = create ? await Chain.create(backend(), { identity, home }) : await Chain.open(backend(), { identity, home })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain, { history: false, compaction: false }) }, logger: silentLogger })
    b.defer(() => vfs.close())
    return { name, vfs, chain }
  }
  const a = await node('alice', alice, true)
  await shareChainPath(a.chain, '/', bob, { write: true })
  await shareChainPath(a.chain, '/', carol, { write: true })
  const nodes = [a, await node('bob', bob, false), await node('carol', carol, false)]
  const [, bn, cn] = nodes as [Node, Node, Node]

  // baselines: one connection each, the same URL and pg driver the backend uses
  const clients = await Promise.all([0, 1, 2].map(async () => {
    const c = new pg.Client({ connectionString: PG_URL, keepAlive: true })
    await c.connect()
    b.defer(() => c.end())
    return c
  }))
  const [c0, c1, c2] = clients as [pg.Client, pg.Client, pg.Client]
  await c0.query(`CREATE TABLE ${table}_base (id bigserial PRIMARY KEY, body bytea NOT NULL)`)
  const row = randomBytes(1024)
  /** `count` one-row transactions (autocommit INSERT of a 1 KiB row: INSERT and its COMMIT, one round trip) on `c`; their latencies in ms. */
  const inserts = async (c: pg.Client, count: number): Promise<number[]> => {
    const out: number[] = []
    for (let i = 0; i < count; i++) {
      const t = now()
      await c.query(`INSERT INTO ${table}_base (body) VALUES ($1)`, [row])
      out.push(now() - t)
    }
    return out
  }
  await inserts(c0, 50)

  // 1. creates: create, write a small content, close, one file after another on each node
  const small = (n: string, i: number) => `file ${i} of ${n}\n`
  await a.vfs.mkdir('/c/one')
  await a.vfs.mkdir('/c/all')
  for (const n of nodes) await n.chain.catchUp()
  for (let i = 0; i < 10; i++) await a.vfs.writeFile(`/c/one/warm${i}`, small('warm', i))
  const createRun = async (n: Node, dir: string, count: number): Promise<number> => {
    const t = now()
    for (let i = 0; i < count; i++) await n.vfs.writeFile(`${dir}/${n.name}-${i}`, small(n.name, i))
    return now() - t
  }
  const baseOne = await inserts(c0, perNode)
  const oneMs = await createRun(a, '/c/one', perNode)
  const baseOneRate = (perNode * 1000) / baseOne.reduce((s, x) => s + x, 0)
  const oneRate = (perNode * 1000) / oneMs
  b.row({ figure: 'creates/s, 1 node (create+write+close)', value: oneRate, unit: '/s', baseline: 'INSERT 1 KiB+COMMIT, 1 conn', baselineValue: baseOneRate, higherIsBetter: true, note: `${perNode} files` })
  b.row({ figure: 'create+write+close, 1 node, per file', value: (oneMs * 1000) / perNode, unit: 'µs', baseline: JUICEFS, baselineValue: JUICEFS_PG_PUBLISHED.create, higherIsBetter: false, note: 'JuiceFS figure is create alone' })

  const t3 = now()
  const base3 = await Promise.all(clients.map(c => inserts(c, perNode)))
  const base3Ms = now() - t3
  const t = now()
  const each = await Promise.all(nodes.map(n => createRun(n, '/c/all', perNode)))
  const all3Ms = now() - t
  await a.chain.catchUp()
  const listed = (await a.vfs.readdirAll('/c/all')).length
  if (listed !== 3 * perNode) throw new Error(`/c/all holds ${listed} files, expected ${3 * perNode}`)
  b.row({ figure: 'creates/s, 3 nodes at once in one folder, total', value: (3 * perNode * 1000) / all3Ms, unit: '/s', baseline: 'INSERT+COMMIT, 3 conns at once', baselineValue: (3 * perNode * 1000) / base3Ms, higherIsBetter: true, note: `${3 * perNode} files` })
  for (const [i, n] of nodes.entries()) {
    const baseRate = (perNode * 1000) / base3[i]!.reduce((s, x) => s + x, 0)
    b.row({ figure: `creates/s, 3 nodes at once, ${n.name}`, value: (perNode * 1000) / each[i]!, unit: '/s', baseline: `INSERT+COMMIT, conn ${i + 1} of 3`, baselineValue: baseRate, higherIsBetter: true })
  }

  // 2. close on A → content read on B (B opens after A's close returns; an open catches up)
  const insertLat = quantile(baseOne, 0.5)
  await a.vfs.writeFile('/c/seen', 'x'.repeat(32))
  await bn.chain.catchUp()
  const closeMs: number[] = []
  const readMs: number[] = []
  let extraTries = 0
  for (let i = 0; i < trials; i++) {
    const content = `trial ${String(i).padStart(6, '0')} ${randomBytes(8).toString('hex')}`.padEnd(32, '.')
    const fh = await a.vfs.open('/c/seen', fsc.O_WRONLY)
    await a.vfs.write(fh, 0, Buffer.from(content))
    const tc = now()
    await a.vfs.flush(fh)
    await a.vfs.release(fh)
    const closed = now()
    closeMs.push(closed - tc)
    for (let tries = 0; ; tries++) {
      if ((await bn.vfs.readFile('/c/seen')).toString() === content) break
      if (tries > 0) extraTries++
      if (now() - closed > 10_000) throw new Error(`node B did not read trial ${i}'s content within 10 s`)
    }
    readMs.push(now() - closed)
  }
  // baseline: a row committed on one connection, then SELECTed on another
  const baseSeen: number[] = []
  for (let i = 0; i < trials; i++) {
    const { rows } = await c0.query<{ id: string }>(`INSERT INTO ${table}_base (body) VALUES ($1) RETURNING id`, [row])
    const t0 = now()
    const got = await c1.query(`SELECT body FROM ${table}_base WHERE id = $1`, [rows[0]!.id])
    if (got.rowCount !== 1) throw new Error('the baseline row is not visible on the other connection')
    baseSeen.push(now() - t0)
  }
  b.row({ figure: 'close of a written file on A, p50', value: quantile(closeMs, 0.5), unit: 'ms', baseline: 'INSERT 1 KiB+COMMIT p50', baselineValue: insertLat, higherIsBetter: false, note: `${trials} trials` })
  b.row({ figure: 'close of a written file on A, p99', value: quantile(closeMs, 0.99), unit: 'ms', baseline: 'INSERT 1 KiB+COMMIT p99', baselineValue: quantile(baseOne, 0.99), higherIsBetter: false })
  b.row({ figure: 'close on A returned → B reads it (open+read), p50', value: quantile(readMs, 0.5), unit: 'ms', baseline: 'SELECT of the row, 2nd conn', baselineValue: quantile(baseSeen, 0.5), higherIsBetter: false, note: `${extraTries} of ${trials} needed a 2nd open` })
  b.row({ figure: 'close on A returned → B reads it (open+read), p99', value: quantile(readMs, 0.99), unit: 'ms', baseline: 'SELECT of the row, p99', baselineValue: quantile(baseSeen, 0.99), higherIsBetter: false })

  // NOTIFY: close called on A → B's onExternalChange fires (B's follower caught up by itself)
  const notifyMs: number[] = []
  for (let i = 0; i < trials; i++) {
    const content = `notify ${String(i).padStart(6, '0')} ${randomBytes(8).toString('hex')}`.padEnd(32, '.')
    const fh = await a.vfs.open('/c/seen', fsc.O_WRONLY)
    await a.vfs.write(fh, 0, Buffer.from(content))
    let fired!: () => void
    const heard = new Promise<number>(r => (fired = () => r(now())))
    const off = bn.chain.onExternalChange((_, paths) => {
      if (paths.has('/seen')) fired()
    })
    const timer = setTimeout(() => fired(), 10_000)
    const tc = now()
    await a.vfs.flush(fh)
    await a.vfs.release(fh)
    const at = await heard
    clearTimeout(timer)
    off()
    if (at - tc >= 10_000) throw new Error(`node B heard nothing of trial ${i} within 10 s`)
    notifyMs.push(at - tc)
  }
  // baseline: NOTIFY (autocommit) on one connection → the LISTENing connection hears it
  const channel = `${table}_ch`
  await c1.query(`LISTEN ${channel}`)
  const baseNotify: number[] = []
  for (let i = 0; i < trials; i++) {
    const heard = new Promise<number>(r => c1.once('notification', () => r(now())))
    const t0 = now()
    await c0.query('SELECT pg_notify($1, $2)', [channel, String(i)])
    baseNotify.push((await heard) - t0)
  }
  await c1.query(`UNLISTEN ${channel}`)
  b.row({ figure: 'close called on A → B onExternalChange, p50', value: quantile(notifyMs, 0.5), unit: 'ms', baseline: 'pg_notify → LISTENer hears, p50', baselineValue: quantile(baseNotify, 0.5), higherIsBetter: false, note: 'NOTIFY + catch-up (read, verify, apply)' })
  b.row({ figure: 'close called on A → B onExternalChange, p99', value: quantile(notifyMs, 0.99), unit: 'ms', baseline: 'pg_notify → LISTENer hears, p99', baselineValue: quantile(baseNotify, 0.99), higherIsBetter: false })

  // 3. flock-style exclusive lock and unlock through the lock table in PostgreSQL
  const lfh = await a.vfs.open('/c/seen', fsc.O_RDONLY)
  const { table: locks, file } = await a.vfs.lockTarget(lfh)
  if (!locks) throw new Error('the chain mount has no shared lock table')
  const req = (mode: LockRequest['mode']): LockRequest => ({ kind: 'flock', mode, owner: 'bench-owner', ...WHOLE_FILE, pid: process.pid })
  const lockTrip = async () => {
    await locks.lock(file, req('write'), { wait: false })
    await locks.lock(file, req('unlock'), { wait: false })
  }
  for (let i = 0; i < 20; i++) await lockTrip()
  const lockMs: number[] = []
  const tl = now()
  for (let i = 0; i < lockTrips; i++) {
    const t0 = now()
    await lockTrip()
    lockMs.push(now() - t0)
  }
  const lockRate = (lockTrips * 1000) / (now() - tl)
  await a.vfs.release(lfh)
  const advMs: number[] = []
  const ta = now()
  for (let i = 0; i < lockTrips; i++) {
    const t0 = now()
    await c2.query('SELECT pg_advisory_lock(4242, 1)')
    await c2.query('SELECT pg_advisory_unlock(4242, 1)')
    advMs.push(now() - t0)
  }
  const advRate = (lockTrips * 1000) / (now() - ta)
  b.row({ figure: 'flock exclusive lock+unlock, lock table, per s', value: lockRate, unit: '/s', baseline: 'pg_advisory_lock+unlock', baselineValue: advRate, higherIsBetter: true, note: `${lockTrips} round trips` })
  b.row({ figure: 'flock exclusive lock+unlock, p50', value: quantile(lockMs, 0.5), unit: 'ms', baseline: 'pg_advisory_lock+unlock p50', baselineValue: quantile(advMs, 0.5), higherIsBetter: false })
  b.row({ figure: 'flock exclusive lock+unlock, p99', value: quantile(lockMs, 0.99), unit: 'ms', baseline: 'pg_advisory_lock+unlock p99', baselineValue: quantile(advMs, 0.99), higherIsBetter: false })

  // 4. stat on another node: a known file (in its tree), and a name another node made a moment ago
  //    (JuiceFS's getattr asks its metadata engine; a node here answers from its tree, kept current by NOTIFY)
  await cn.chain.catchUp()
  for (let i = 0; i < 500; i++) await cn.vfs.stat('/c/all/alice-0')
  const ts = now()
  for (let i = 0; i < statOps; i++) await cn.vfs.stat('/c/all/alice-0')
  const statUs = ((now() - ts) * 1000) / statOps
  b.row({ figure: 'stat on C of a file A made (known to C)', value: statUs, unit: 'µs', baseline: JUICEFS, baselineValue: JUICEFS_PG_PUBLISHED.getattr, higherIsBetter: false, note: `${statOps} stats, in-memory tree` })
  await a.vfs.mkdir('/c/fresh')
  const firstMs: number[] = []
  for (let i = 0; i < trials; i++) {
    await a.vfs.writeFile(`/c/fresh/f${i}`, small('fresh', i))
    const t0 = now()
    await cn.vfs.stat(`/c/fresh/f${i}`)
    firstMs.push(now() - t0)
  }
  const selectOne: number[] = []
  for (let i = 0; i < trials; i++) {
    const t0 = now()
    await c2.query('SELECT 1')
    selectOne.push(now() - t0)
  }
  b.row({ figure: 'stat on C right after A made the file, p50', value: quantile(firstMs, 0.5) * 1000, unit: 'µs', baseline: JUICEFS, baselineValue: JUICEFS_PG_PUBLISHED.getattr, higherIsBetter: false, note: `C's NOTIFY follower often has it already, else the miss catches up; SELECT 1 p50 ${(quantile(selectOne, 0.5) * 1000).toFixed(0)} µs` })
  b.row({ figure: 'stat on C right after A made the file, p99', value: quantile(firstMs, 0.99) * 1000, unit: 'µs', baseline: 'SELECT 1 round trip p99', baselineValue: quantile(selectOne, 0.99) * 1000, higherIsBetter: false })
}
