import { constants as fsc } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { generateIdentity, type Identity } from '../../src/crypto/identity.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { postgresBackend } from '../../src/chain/postgres.ts'
import { ChainLockedError } from '../../src/chain/log.ts'
import { shareChainPath, unshareChainPath } from '../../src/chain/sharing.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { reachPostgres, TEST_PG_URL } from '../helpers/pg.ts'
import { tempHome } from './helpers.ts'
import { pgChainTableEach, trees } from './pg-tables.ts'

const person = (name: string): Identity => (({ seeds: _s, ...id }) => id)(generateIdentity(name))
const alice = person('alice')
const bob = person('bob')
const carol = person('carol')

const { admin, reason } = await reachPostgres(TEST_PG_URL)

/** Three nodes writing one chain in PostgreSQL at once, each with its own identity, home and backend (its own pool): machines in all but the network. */
describe.skipIf(!admin)(`several writers on one chain in PostgreSQL${admin ? '' : ` (skipped: ${reason})`}`, () => {
  const t = pgChainTableEach('facet_shared_test_', admin)
  const { homes, open } = t
  const backend = (shared = true) => t.backend(shared)
  async function node(identity: Identity, create = false): Promise<{ vfs: Vfs; chain: Chain }> {
    const h = await tempHome()
    homes.push(h)
    const chain = create ? await Chain.create(backend(), { identity, home: h.home }) : await Chain.open(backend(), { identity, home: h.home })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    open.push(vfs)
    return { vfs, chain }
  }
  /** Alice's chain with Bob and Carol authorised as writers, and a node for each of them. */
  async function threeNodes() {
    const a = await node(alice, true)
    await shareChainPath(a.chain, '/', bob, { write: true })
    await shareChainPath(a.chain, '/', carol, { write: true })
    const b = await node(bob)
    const c = await node(carol)
    return [a, b, c]
  }

  it('lets three nodes create files in one folder at once: every entry once, the same tree on each, a clean verify', async () => {
    const nodes = await threeNodes()
    await nodes[0]!.vfs.mkdir('/c/d')
    await Promise.all(nodes.map((n, i) => Promise.all(Array.from({ length: 15 }, (_, k) => n.vfs.writeFile(`/c/d/n${i}-${k}.txt`, `node ${i} file ${k}\n`)))))
    const [ta, tb, tc] = await trees(nodes)
    expect(ta!.length).toBe(1 + 45)
    expect(ta!.filter(l => l.startsWith('/c/d/n1-')).length).toBe(15)
    expect(tb).toEqual(ta)
    expect(tc).toEqual(ta)
    expect(ta).toContain(`/c/d/n2-7.txt file ${Buffer.from('node 2 file 7\n').toString('hex')}`)
    for (const n of open.splice(0)) await n.close()
    const report = await verifyChain(backend(false), { home: homes[0]!.home })
    expect(report.ok).toBe(true)
  })

  it('lets exactly one of two racing renames of a file win, and one of two exclusive creates of a name', async () => {
    const [a, b] = await threeNodes()
    await a!.vfs.writeFile('/c/x', 'the file\n')
    await b!.chain.catchUp()
    const renames = await Promise.allSettled([a!.vfs.rename('/c/x', '/c/by-a'), b!.vfs.rename('/c/x', '/c/by-b')])
    expect(renames.map(r => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    const lost = renames.find(r => r.status === 'rejected') as PromiseRejectedResult
    expect((lost.reason as { code?: string }).code).toBe('ENOENT')
    const creates = await Promise.allSettled([a!.vfs.open('/c/same', fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL), b!.vfs.open('/c/same', fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL)])
    expect(creates.map(r => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    expect(((creates.find(r => r.status === 'rejected') as PromiseRejectedResult).reason as { code?: string }).code).toBe('EEXIST')
    for (const [i, r] of creates.entries()) if (r.status === 'fulfilled') await [a, b][i]!.vfs.release(r.value)
    // a folder another node filled a moment ago is not empty here
    await a!.vfs.mkdir('/c/e')
    await b!.vfs.writeFile('/c/e/inside', 'from b\n')
    await expect(a!.vfs.rmdir('/c/e')).rejects.toMatchObject({ code: 'ENOTEMPTY' })
    const [ta, tb] = await trees([a!, b!])
    expect(tb).toEqual(ta)
    expect(ta!.filter(l => /^\/c\/by-[ab] /.test(l))).toHaveLength(1)
    expect(ta!.some(l => l.startsWith('/c/x '))).toBe(false)
    expect(ta).toContain(`/c/e/inside file ${Buffer.from('from b\n').toString('hex')}`)
  })

  it('reads on another node, right after close, what was closed whole; the last close of one file wins, never mixed', async () => {
    const [a, b] = await threeNodes()
    const big = Buffer.alloc(700_000, 0x61)
    await a!.vfs.writeFile('/c/f.bin', big)
    expect((await b!.vfs.readFile('/c/f.bin')).equals(big)).toBe(true)
    // two nodes write one file without locks: B's shorter content closes last and stands alone
    const shortB = Buffer.alloc(200_000, 0x62)
    await Promise.all([a!.vfs.writeFile('/c/f.bin', Buffer.alloc(500_000, 0x63)), b!.vfs.writeFile('/c/f.bin', shortB)])
    const [ta, tb] = await trees([a!, b!])
    expect(tb).toEqual(ta)
    const now = await a!.vfs.readFile('/c/f.bin')
    expect([0x62, 0x63]).toContain(now[0])
    expect(now.equals(now[0] === 0x62 ? shortB : Buffer.alloc(500_000, 0x63))).toBe(true)
  })

  it("lists, from a listing's start, what another node made before it: a new listing looks for new blocks first, not waiting for the NOTIFY", async () => {
    const [a, b] = await threeNodes()
    await a!.vfs.mkdir('/c/d')
    await b!.chain.catchUp()
    const listed: string[][] = []
    for (let i = 0; i < 5; i++) {
      await a!.vfs.writeFile(`/c/d/f${i}`, `file ${i}\n`)
      // at once, while the NOTIFY of that block is on its way: B reads and verifies it before listing
      listed.push((await b!.vfs.readdir('/c/d')).entries.map(e => e.name).sort())
    }
    expect(listed).toEqual([0, 1, 2, 3, 4].map(n => Array.from({ length: n + 1 }, (_, i) => `f${i}`)))
  })

  it('unshares / while another node has written: the rotation is made on the newest state, and both nodes write and read on under the new keys', async () => {
    const [a, b] = (await threeNodes()) as [{ vfs: Vfs; chain: Chain }, { vfs: Vfs; chain: Chain }]
    // bob writes; alice has not looked since
    await b.vfs.writeFile('/c/f', 'x')
    await unshareChainPath(a.chain, '/', carol, { readers: [bob] })
    const data = Buffer.alloc(300_000, 7)
    await b.vfs.writeFile('/c/f', data)
    await a.vfs.writeFile('/c/g', 'alice after\n')
    const [ta, tb] = await trees([a, b])
    expect(ta).toEqual([`/c/f file ${data.toString('hex')}`, `/c/g file ${Buffer.from('alice after\n').toString('hex')}`])
    expect(tb).toEqual(ta)
  })

  it('keeps a single writer out while shared writers are in, and shared writers out of a chain a single writer holds', async () => {
    const a = await node(alice, true)
    const h = await tempHome()
    homes.push(h)
    await expect(Chain.open(postgresBackend({ url: TEST_PG_URL, table: t.table }), { identity: alice, home: h.home })).rejects.toBeInstanceOf(ChainLockedError)
    await open.splice(0)[0]!.close()
    const single = await Chain.open(postgresBackend({ url: TEST_PG_URL, table: t.table }), { identity: alice, home: h.home })
    try {
      await expect(Chain.open(backend(), { identity: alice, home: h.home })).rejects.toBeInstanceOf(ChainLockedError)
    } finally {
      await single.close()
    }
    expect(a.chain.sharedWriters).toBe(true)
  })
})
