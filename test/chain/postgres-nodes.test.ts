import { constants as fsc } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { createIdentity, generateIdentity, type Identity } from '../../src/crypto/identity.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { compactChain } from '../../src/chain/compact.ts'
import { shareChainPath } from '../../src/chain/sharing.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import type { ChainBackend, ChainLog } from '../../src/chain/backend.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { facet } from '../cli/run.ts'
import { reachPostgres, TEST_PG_URL } from '../helpers/pg.ts'
import { tempHome } from './helpers.ts'
import { pgChainTableEach, trees } from './pg-tables.ts'

const person = (name: string): Identity => (({ seeds: _s, ...id }) => id)(generateIdentity(name))
const alice = person('alice')
const bob = person('bob')
const carol = person('carol')

const { admin, reason } = await reachPostgres(TEST_PG_URL)

/**
 * Nodes of a chain kept in PostgreSQL that each have it mounted and write to it (each its
 * own identity, home and pool): compaction online, and a commit that loses its place.
 */
describe.skipIf(!admin)(`several nodes of a chain in PostgreSQL: online compaction, a block that lost its place${admin ? '' : ` (skipped: ${reason})`}`, () => {
  const t = pgChainTableEach('facet_compact_test_', admin)
  const { homes, open } = t
  const backend = (shared = true) => t.backend(shared)
  type Node = { vfs: Vfs; chain: Chain; home: string }
  async function node(identity: Identity, o: { create?: boolean; home?: string; shared?: boolean; readOnly?: boolean; wrap?: (b: ChainBackend) => ChainBackend } = {}): Promise<Node> {
    let home = o.home
    if (!home) {
      const h = await tempHome()
      homes.push(h)
      home = h.home
    }
    const options = { identity, home, ...(o.readOnly ? { readOnly: true } : {}) }
    const b = (o.wrap ?? (x => x))(backend(o.shared ?? true))
    const chain = o.create ? await Chain.create(b, options) : await Chain.open(b, options)
    // automatic compaction off: each test compacts when it means to
    const vfs = createVfs({ mounts: { '/c': chainMount(chain, { compaction: false, ...(o.readOnly ? { follow: true } : {}) }) }, logger: silentLogger })
    open.push(vfs)
    return { vfs, chain, home }
  }
  async function threeNodes(owner: Identity = alice, home?: string): Promise<Node[]> {
    const a = await node(owner, { create: true, ...(home ? { home } : {}) })
    await shareChainPath(a.chain, '/', bob, { write: true })
    await shareChainPath(a.chain, '/', carol, { write: true })
    return [a, await node(bob), await node(carol)]
  }
  const rows = async () => {
    const { rows: r } = await admin!.query<{ n: string; lo: string; hi: string; bytes: string; digest: string }>(
      `SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi, sum(octet_length(bytes)) AS bytes, md5(string_agg(bytes, ''::bytea ORDER BY seq)) AS digest FROM ${t.table}`,
    )
    return { n: Number(r[0]!.n), lo: Number(r[0]!.lo), hi: Number(r[0]!.hi), bytes: Number(r[0]!.bytes), digest: r[0]!.digest }
  }
  /** Files rewritten a few times on every node: garbage for a compaction to drop. */
  async function fill(nodes: Node[], files = 8, rounds = 3): Promise<void> {
    await nodes[0]!.vfs.mkdir('/c/d')
    for (let r = 0; r < rounds; r++) await Promise.all(nodes.map((n, i) => Promise.all(Array.from({ length: files }, (_, k) => n.vfs.writeFile(`/c/d/n${i}-${k}`, Buffer.alloc(20_000 + k, `${i}.${k}.${r};`))))))
  }

  it('compacts while two other nodes write: the rows below are gone, every node lists the same tree byte for byte, verify is clean, a fresh open works', async () => {
    const nodes = await threeNodes()
    const [a, b, c] = nodes as [Node, Node, Node]
    await fill(nodes)
    await Promise.all(nodes.map(n => n.chain.catchUp()))
    const before = await rows()
    // bob and carol keep writing (creates and rewrites) while alice compacts
    let writing = true
    const writes: Promise<void>[] = [b, c].map(async (n, i) => {
      for (let k = 0; writing || k < 3; k++) await n.vfs.writeFile(`/c/d/during-${i}-${k % 5}`, `written by ${i} during, ${k}\n`)
    })
    const report = await compactChain(a.chain)
    writing = false
    await Promise.all(writes)
    const after = await rows()
    expect(report.baseSeq).toBeGreaterThan(before.hi)
    // the compacted genesis names the head it replaced, and no row from before it is left
    expect(after.lo).toBe(report.baseSeq)
    expect(after.n).toBeLessThan(before.n)
    expect(after.bytes).toBeLessThan(before.bytes / 2)
    expect(report.afterBytes).toBeLessThan(report.beforeBytes / 2)
    const [ta, tb, tc] = await trees(nodes)
    expect(ta!.filter(l => l.startsWith('/c/d/n')).length).toBe(24)
    expect(ta).toContain(`/c/d/n2-5 file ${Buffer.alloc(20_005, '2.5.2;').toString('hex')}`)
    expect(ta!.some(l => l.startsWith('/c/d/during-1-'))).toBe(true)
    expect(tb).toEqual(ta)
    expect(tc).toEqual(ta)
    // every node still writes, and the others read it
    await b.vfs.writeFile('/c/after-b', 'bob after\n')
    await c.vfs.writeFile('/c/after-c', 'carol after\n')
    await a.vfs.writeFile('/c/after-a', 'alice after\n')
    const [ta2, tb2, tc2] = await trees(nodes)
    expect(ta2).toContain(`/c/after-b file ${Buffer.from('bob after\n').toString('hex')}`)
    expect(tb2).toEqual(ta2)
    expect(tc2).toEqual(ta2)
    const heads = nodes.map(n => n.chain.headSeq)
    expect(new Set(heads).size).toBe(1)
    for (const v of open.splice(0)) await v.close()
    expect(await verifyChain(backend(false), { home: a.home })).toMatchObject({ ok: true, headSeq: heads[0] })
    // each node opens again from its own home: its trust store took the compaction as the head moving on, not a rollback
    const again = [await node(alice, { home: a.home }), await node(bob, { home: b.home }), await node(carol, { home: c.home })]
    expect(await trees(again)).toEqual([ta2, ta2, ta2])
    expect(again[0]!.chain.baseSeq).toBe(report.baseSeq)
  })

  it('brings a node that fell behind the compaction up to date without a remount: its open handle, its reads and its writes keep working', async () => {
    const nodes = await threeNodes()
    const [a, b, c] = nodes as [Node, Node, Node]
    await fill(nodes, 4, 2)
    await b.vfs.writeFile('/c/kept', 'open across it\n')
    // a second node of carol's, with no mount watching for her: it learns nothing until it looks
    const h = { home: c.home }
    const lagging = await Chain.open(backend(), { identity: carol, home: h.home })
    const vfs = createVfs({ mounts: { '/c': chainMount(lagging, { compaction: false, follow: false }) }, logger: silentLogger })
    open.push(vfs)
    const fd = await vfs.open('/c/kept', fsc.O_RDONLY)
    const behindAt = lagging.headSeq
    await b.vfs.writeFile('/c/d/later', 'written while carol looked away\n')
    await a.vfs.rename('/c/d/n0-0', '/c/renamed')
    const report = await compactChain(a.chain)
    expect(behindAt).toBeLessThan(report.baseSeq - 1)
    // her chunks' rows are gone: the read finds the store compacted, rebuilds from the new rows and reads
    expect(Buffer.from(await vfs.read(fd, 0, 100)).toString()).toBe('open across it\n')
    await vfs.release(fd)
    expect(lagging.baseSeq).toBe(report.baseSeq)
    expect((await vfs.readFile('/c/d/later')).toString()).toBe('written while carol looked away\n')
    await expect(vfs.stat('/c/d/n0-0')).rejects.toMatchObject({ code: 'ENOENT' })
    await vfs.writeFile('/c/from-carol', 'after the compaction\n')
    const me = { vfs, chain: lagging, home: h.home }
    const [ta, tc] = await trees([a, me])
    expect(tc).toEqual(ta)
    expect(ta).toContain(`/c/from-carol file ${Buffer.from('after the compaction\n').toString('hex')}`)
  })

  it('has a read-only follower of a single writer follow the compaction, and /.history start at it', async () => {
    const w = await node(alice, { create: true, shared: false })
    await w.vfs.writeFile('/c/f', 'one')
    await w.vfs.writeFile('/c/f', 'two, longer')
    await w.vfs.writeFile('/c/g', 'gee')
    const f = await node(alice, { home: w.home, shared: false, readOnly: true })
    expect((await f.vfs.readFile('/c/f')).toString()).toBe('two, longer')
    const before = await rows()
    const report = await compactChain(w.chain)
    expect((await rows()).lo).toBe(before.hi + 1)
    await w.vfs.writeFile('/c/h', 'after')
    await w.chain.sync()
    await f.chain.catchUp()
    expect((await f.vfs.readFile('/c/h')).toString()).toBe('after')
    expect((await f.vfs.readFile('/c/f')).toString()).toBe('two, longer')
    expect(f.chain.baseSeq).toBe(report.baseSeq)
    // history reaches back to the compaction, not further
    const seqs = (await w.vfs.readdirAll('/c/.history')).map(e => Number(e.name))
    expect(seqs[0]).toBe(report.baseSeq)
    expect(seqs.at(-1)).toBe(w.chain.headSeq)
    expect((await w.vfs.readFile(`/c/.history/${report.baseSeq + report.blocks - 1}/f`)).toString()).toBe('two, longer')
    await expect(w.vfs.stat(`/c/.history/${report.baseSeq + report.blocks - 1}/h`)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('leaves the old rows whole when the compacting transaction is killed half way, and compacts on the next try', async () => {
    const nodes = await threeNodes()
    const [a, b] = nodes as [Node, Node, Node]
    await fill(nodes, 3, 2)
    await Promise.all(nodes.map(n => n.chain.catchUp()))
    const before = await rows()
    const [ta] = await trees([a])
    // a row lock on the genesis row: the compaction's DELETE waits there, after its INSERTs went in
    const blocker = await admin!.connect()
    try {
      await blocker.query('BEGIN')
      await blocker.query(`SELECT seq FROM ${t.table} WHERE seq = 0 FOR UPDATE`)
      const compacting = compactChain(a.chain)
      compacting.catch(() => {})
      let pid: number | undefined
      for (let i = 0; i < 200 && pid === undefined; i++) {
        const { rows: r } = await admin!.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM "${t.table}"%'`)
        pid = r[0]?.pid
        if (pid === undefined) await new Promise(r => setTimeout(r, 25))
      }
      expect(pid).toBeDefined()
      await admin!.query('SELECT pg_terminate_backend($1)', [pid])
      await expect(compacting).rejects.toThrow()
    } finally {
      await blocker.query('ROLLBACK')
      blocker.release()
    }
    expect(await rows()).toEqual(before)
    // every node keeps working on the old rows
    await b.vfs.writeFile('/c/after-kill', 'still here\n')
    const [ta2, tb2] = await trees([a, b])
    expect(ta2).toEqual([...ta!, `/c/after-kill file ${Buffer.from('still here\n').toString('hex')}`].sort((x, y) => (x.split(' ')[0]! < y.split(' ')[0]! ? -1 : 1)))
    expect(tb2).toEqual(ta2)
    const report = await compactChain(a.chain)
    expect((await rows()).lo).toBe(report.baseSeq)
    const [ta3, tb3, tc3] = await trees(nodes)
    expect(ta3).toEqual(ta2)
    expect(tb3).toEqual(ta2)
    expect(tc3).toEqual(ta2)
    expect(await verifyChain(backend(false), { home: a.home })).toMatchObject({ ok: true })
  })

  it('compacts through `facet compact URL` while the nodes stay mounted', async () => {
    const h = await tempHome()
    homes.push(h)
    const owner = await createIdentity('alice', 'pass phrase', { home: h.home })
    const nodes = await threeNodes(owner, h.home)
    const [a, b] = nodes as [Node, Node, Node]
    await fill(nodes, 3, 2)
    await Promise.all(nodes.map(n => n.chain.catchUp()))
    const before = await rows()
    const url = `${TEST_PG_URL}${TEST_PG_URL.includes('?') ? '&' : '?'}table=${t.table}`
    const cli = await facet(['compact', url, '--home', a.home, '--identity', 'alice'], { env: { FACET_PASSPHRASE: 'pass phrase' } })
    expect(cli.stderr).toBe('')
    expect(cli.stdout).toMatch(new RegExp(`: compacted ${before.bytes + 16} -> \\d+ bytes, \\d+ inodes, \\d+ chunks in \\d+ blocks from seq ${before.hi + 1}\\n$`))
    expect(cli.code).toBe(0)
    await b.vfs.writeFile('/c/after-cli', 'ok\n')
    const [ta, tb, tc] = await trees(nodes)
    expect(tb).toEqual(ta)
    expect(tc).toEqual(ta)
    expect((await rows()).lo).toBe(before.hi + 1)
  })

  /**
   * A backend whose log holds its next append, once armed, until let go: the place where a
   * commit is when its lease dies under it (the append itself is PostgreSQL's, unchanged).
   */
  function heldAppend(): { wrap: (b: ChainBackend) => ChainBackend; arm: () => Promise<void>; letGo: () => void } {
    let armed = false
    let reached = (): void => {}
    let go = (): void => {}
    const gate = new Promise<void>(r => (go = r))
    const holding = (log: ChainLog): ChainLog =>
      new Proxy(log, {
        get(t, p) {
          if (p === 'append')
            return async (...a: Parameters<ChainLog['append']>) => {
              if (armed) {
                armed = false
                reached()
                await gate
              }
              return t.append(...a)
            }
          const v = Reflect.get(t, p, t) as unknown
          return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v
        },
      })
    return {
      wrap: b => ({ ...b, open: async (readOnly: boolean) => holding(await b.open(readOnly)) }) as ChainBackend,
      arm: () =>
        new Promise<void>(r => {
          armed = true
          reached = r
        }),
      letGo: () => go(),
    }
  }

  /** Ends the session holding the write lease (the only exclusive advisory lock held): its node loses the lease mid-change. */
  async function killLeaseHolder(): Promise<void> {
    const { rows: holders } = await admin!.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND granted")
    expect(holders.length).toBe(1)
    await admin!.query('SELECT pg_terminate_backend($1)', [holders[0]!.pid])
  }

  /** After every node closed: the store verifies, and a fresh open of `b`'s lists `tree`. */
  async function agreeAfterAll(a: Node, b: Node, tree: string[]): Promise<void> {
    for (const v of open.splice(0)) await v.close()
    expect(await verifyChain(backend(false), { home: a.home })).toMatchObject({ ok: true })
    expect(await trees([await node(bob, { home: b.home })])).toEqual([tree])
  }

  it("keeps a writer whose block lost its place writing: the commit fails with EIO, the node rebuilds from the rows, an open file's content lands, and every node agrees", async () => {
    const hold = heldAppend()
    const a = await node(alice, { create: true })
    await shareChainPath(a.chain, '/', bob, { write: true })
    const b = await node(bob, { wrap: hold.wrap })
    await a.vfs.writeFile('/c/before', 'before\n')
    await b.chain.catchUp()
    // bob has a file open with content not committed yet, across all that follows
    await b.vfs.writeFile('/c/open', '')
    const fd = await b.vfs.open('/c/open', fsc.O_WRONLY)
    await b.vfs.write(fd, 0, Buffer.from('kept across it\n'))
    // bob's create reaches its append holding the lease; then its lease session dies
    const reached = hold.arm()
    const lost = b.vfs.writeFile('/c/lost', 'never lands\n')
    lost.catch(() => {})
    await reached
    await killLeaseHolder()
    // alice takes the freed lease and appends at the seq bob's block was signed for
    const seqBefore = (await rows()).hi
    await a.vfs.writeFile('/c/won', 'alice took the place\n')
    expect((await rows()).hi).toBeGreaterThan(seqBefore)
    hold.letGo()
    await expect(lost).rejects.toMatchObject({ code: 'EIO' })
    // not read-only: bob's next changes catch up and land on top
    await b.vfs.writeFile('/c/after', 'bob after\n')
    await b.vfs.mkdir('/c/dir-after')
    await b.vfs.release(fd)
    const [ta, tb] = await trees([a, b])
    expect(ta).toEqual([
      `/c/after file ${Buffer.from('bob after\n').toString('hex')}`,
      `/c/before file ${Buffer.from('before\n').toString('hex')}`,
      '/c/dir-after dir',
      `/c/open file ${Buffer.from('kept across it\n').toString('hex')}`,
      `/c/won file ${Buffer.from('alice took the place\n').toString('hex')}`,
    ])
    expect(tb).toEqual(ta)
    await agreeAfterAll(a, b, ta!)
  })

  it('lands the content of a block that lost its place with no further call, and keeps writing after a compaction that came meanwhile', async () => {
    const hold = heldAppend()
    const a = await node(alice, { create: true })
    await shareChainPath(a.chain, '/', bob, { write: true })
    const b = await node(bob, { wrap: hold.wrap })
    await b.vfs.writeFile('/c/f', '')
    const fd = await b.vfs.open('/c/f', fsc.O_WRONLY)
    // the commit that loses its place is the one the 20 ms timer makes for this write alone: no call waits for it
    const reached = hold.arm()
    await b.vfs.write(fd, 0, Buffer.from('written, not closed\n'))
    await reached
    await killLeaseHolder()
    await a.vfs.writeFile('/c/won', 'alice\n')
    // and alice compacts before bob looks again: the rows bob indexed are gone
    await compactChain(a.chain)
    // bob's content reaches the log by itself (the rebuild and a new block come with the next lease): alice hears of it
    const heard = new Promise<void>(resolve => {
      const off = a.chain.onExternalChange((_inos, paths) => {
        if (!paths.has('/f')) return
        off()
        resolve()
      })
    })
    hold.letGo()
    await heard
    expect((await a.vfs.readFile('/c/f')).toString()).toBe('written, not closed\n')
    await b.vfs.release(fd)
    await b.vfs.writeFile('/c/after', 'bob after\n')
    const [ta, tb] = await trees([a, b])
    expect(ta).toEqual([
      `/c/after file ${Buffer.from('bob after\n').toString('hex')}`,
      `/c/f file ${Buffer.from('written, not closed\n').toString('hex')}`,
      `/c/won file ${Buffer.from('alice\n').toString('hex')}`,
    ])
    // no row of bob's landed below the compaction
    expect(tb).toEqual(ta)
    await agreeAfterAll(a, b, ta!)
  })
})
