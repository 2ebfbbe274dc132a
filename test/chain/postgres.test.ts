import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { chainMount, openChainMount } from '../../src/chain/mount.ts'
import { postgresBackend } from '../../src/chain/postgres.ts'
import { ChainIntegrityError, ChainLockedError } from '../../src/chain/log.ts'
import { RollbackError } from '../../src/chain/trust.ts'
import { FRAME_HEADER_BYTES } from '../../src/chain/format.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { facet } from '../cli/run.ts'
import { tempHome, testIdentity } from './helpers.ts'
import { reachPostgres } from '../helpers/pg.ts'

const URL = process.env.FACET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

const { admin, reason } = await reachPostgres(URL)

describe.skipIf(!admin)(`chain in PostgreSQL${admin ? '' : ` (skipped: PostgreSQL unavailable at ${URL}: ${reason})`}`, () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let table: string
  const open = (options: { readOnly?: boolean } = {}) => Chain.openOrCreate(postgresBackend({ url: URL, table }), { identity: testIdentity(), home: t.home, ...options })
  const mounted = (chain: Chain, follow = false) => createVfs({ mounts: { '/c': chainMount(chain, { follow }) }, logger: silentLogger })

  beforeEach(async () => {
    t = await tempHome()
    table = `facet_chain_test_${randomBytes(6).toString('hex')}`
  })
  afterEach(async () => {
    await admin!.query(`DROP TABLE IF EXISTS ${table}`)
    await t.cleanup()
  })
  afterAll(async () => {
    await admin?.end()
  })

  it('keeps files written through the Vfs across close and reopen, one row per block', async () => {
    let chain = await open()
    let vfs = mounted(chain)
    await vfs.mkdir('/c/docs')
    await vfs.writeFile('/c/docs/a.txt', 'hello postgres\n')
    const big = Buffer.alloc(300_000)
    for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff
    await vfs.writeFile('/c/big.bin', big)
    await chain.sync()
    const head = chain.headSeq
    await vfs.close()
    const { rows } = await admin!.query<{ seq: string }>(`SELECT seq FROM ${table} ORDER BY seq`)
    expect(rows.map(r => Number(r.seq))).toEqual([...Array(head + 1).keys()])
    chain = await open()
    vfs = mounted(chain)
    expect(chain.headSeq).toBe(head)
    expect((await vfs.readFile('/c/docs/a.txt')).toString()).toBe('hello postgres\n')
    expect((await vfs.readFile('/c/big.bin')).equals(big)).toBe(true)
    expect((await vfs.readdirAll('/c')).map(e => e.name).sort()).toEqual(['big.bin', 'docs'])
    await vfs.close()
  })

  it('shows past states under /.history/<seq> on the PostgreSQL backend too, after a reopen, read-only', async () => {
    let chain = await open()
    let vfs = mounted(chain)
    await vfs.writeFile('/c/f.txt', 'first')
    await chain.sync()
    const s1 = chain.headSeq
    await vfs.writeFile('/c/f.txt', 'second version, longer')
    await chain.sync()
    const s2 = chain.headSeq
    await vfs.unlink('/c/f.txt')
    await vfs.close()
    // a new process reads the history from the rows alone
    chain = await open()
    vfs = mounted(chain)
    try {
      expect((await vfs.readFile(`/c/.history/${s1}/f.txt`)).toString()).toBe('first')
      expect((await vfs.readFile(`/c/.history/${s2}/f.txt`)).toString()).toBe('second version, longer')
      expect((await vfs.readdirAll(`/c/.history/${chain.headSeq}`)).map(e => e.name)).toEqual([])
      await expect(vfs.writeFile(`/c/.history/${s1}/f.txt`, 'x')).rejects.toMatchObject({ code: 'EROFS' })
      expect((await vfs.readdirAll('/c')).map(e => e.name)).toEqual([])
    } finally {
      await vfs.close()
    }
  })

  it('verifies a PostgreSQL chain from its rows without a key, through the API and `facet verify URL`, and names a tampered block', async () => {
    const schema = `facet_verify_${randomBytes(6).toString('hex')}`
    await admin!.query(`CREATE SCHEMA ${schema}`)
    const url = `${URL}${URL.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`
    try {
      const chain = await Chain.openOrCreate(postgresBackend({ url }), { identity: testIdentity(), home: t.home })
      const vfs = mounted(chain)
      await vfs.writeFile('/c/a.txt', 'verified from the rows')
      await vfs.close()
      const good = await verifyChain(postgresBackend({ url }), { home: t.home })
      expect(good).toMatchObject({ ok: true, blocks: 2, headSeq: 1 })
      const cli = await facet(['verify', url, '--home', t.home])
      expect(cli.stderr).toBe('')
      expect(cli.stdout).toMatch(new RegExp(`^postgres://postgres@127\\.0\\.0\\.1:5432/test\\?options=.*: ok, 2 blocks, \\d+ events, head 1, chain ${good.chainId}, owner 'tester' \\(key [0-9a-f]{16}\\), pinned here\\n$`))
      expect(cli.code).toBe(0)
      // one byte of the last block's body changed in the database
      await admin!.query(`UPDATE ${schema}.facet_chain_blocks SET bytes = set_byte(bytes, length(bytes) - 40, get_byte(bytes, length(bytes) - 40) # 1) WHERE seq = 1`)
      const bad = await verifyChain(postgresBackend({ url }), { home: t.home })
      expect(bad).toMatchObject({ ok: false, problem: { seq: 1, kind: 'block' } })
      const refused = await facet(['verify', url, '--home', t.home])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/: bad block 1 at byte \d+: .* \(1 good blocks before it\)\n$/)
    } finally {
      await admin!.query(`DROP SCHEMA ${schema} CASCADE`)
    }
  })

  it('opens a mount on the PostgreSQL backend through openChainMount, as a config would', async () => {
    const first = createVfs({ mounts: { '/c': await openChainMount({ backend: postgresBackend({ url: URL, table }), identity: testIdentity(), home: t.home }) }, logger: silentLogger })
    await first.writeFile('/c/config.txt', 'from a config\n')
    await first.close()
    const again = createVfs({ mounts: { '/c': await openChainMount({ backend: postgresBackend({ url: URL, table }), identity: testIdentity(), home: t.home }) }, logger: silentLogger })
    expect((await again.readFile('/c/config.txt')).toString()).toBe('from a config\n')
    await again.close()
  })

  it('lets a second, read-only opener follow new blocks live through NOTIFY and refuses its writes with EROFS', async () => {
    const chain = await open()
    const vfs = mounted(chain)
    await vfs.writeFile('/c/a.txt', 'one')
    await chain.sync()
    const reader = await open({ readOnly: true })
    const rvfs = mounted(reader, true)
    expect((await rvfs.readFile('/c/a.txt')).toString()).toBe('one')
    await expect(rvfs.writeFile('/c/b.txt', 'x')).rejects.toMatchObject({ code: 'EROFS' })
    const changed = new Promise<void>(resolve => rvfs.watch('/c', () => resolve()))
    await new Promise(r => setTimeout(r, 100)) // the follower's LISTEN is in place
    await vfs.writeFile('/c/b.txt', 'two')
    await vfs.writeFile('/c/a.txt', 'one, edited')
    await chain.sync()
    await changed
    for (let i = 0; i < 50 && reader.headSeq < chain.headSeq; i++) await new Promise(r => setTimeout(r, 50))
    expect(reader.headSeq).toBe(chain.headSeq)
    expect((await rvfs.readFile('/c/b.txt')).toString()).toBe('two')
    expect((await rvfs.readFile('/c/a.txt')).toString()).toBe('one, edited')
    await rvfs.close()
    await vfs.close()
  })

  it("keeps a follower following when its LISTEN connection is killed: it listens again and catches up on what it missed", async () => {
    const chain = await open()
    const vfs = mounted(chain)
    await vfs.writeFile('/c/a.txt', 'one')
    await chain.sync()
    const reader = await open({ readOnly: true })
    const rvfs = mounted(reader, true)
    const listenerPid = async (): Promise<number | undefined> => {
      const { rows } = await admin!.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query LIKE $1 OR query LIKE $2`, [`LISTEN "facet_chain:${table}"`, `%heartbeat of LISTEN facet_chain:${table} %`])
      return rows[0]?.pid
    }
    try {
      expect((await rvfs.readFile('/c/a.txt')).toString()).toBe('one')
      let pid: number | undefined
      for (let i = 0; i < 100 && !(pid = await listenerPid()); i++) await new Promise(r => setTimeout(r, 20))
      expect(pid).toBeDefined()
      await admin!.query('SELECT pg_terminate_backend($1)', [pid])
      // written while the follower cannot hear: no NOTIFY reaches it, only its catching up
      const seen = new Promise<void>(resolve => rvfs.watch('/c', () => resolve()))
      await vfs.writeFile('/c/b.txt', 'written while it was deaf')
      await chain.sync()
      await seen
      for (let i = 0; i < 50 && reader.headSeq < chain.headSeq; i++) await new Promise(r => setTimeout(r, 20))
      expect((await rvfs.readFile('/c/b.txt')).toString()).toBe('written while it was deaf')
      const again = await listenerPid()
      expect(again).toBeDefined()
      expect(again).not.toBe(pid)
    } finally {
      await rvfs.close()
      await vfs.close()
    }
  })

  it('refuses a second writer with ChainLockedError while the first holds the advisory lock, and admits one after it closes', async () => {
    const chain = await open()
    await expect(open()).rejects.toBeInstanceOf(ChainLockedError)
    await expect(open()).rejects.toThrow(/open for writing by another session/)
    await chain.close()
    const again = await open()
    expect(again.readOnly).toBe(false)
    await again.close()
  })

  it('fails a commit whose seq another writer took with EIO naming the conflict, and turns the chain read-only', async () => {
    const chain = await open()
    const vfs = mounted(chain)
    await vfs.writeFile('/c/a.txt', 'mine')
    await chain.sync()
    // a writer that bypassed the lock appended the next block first
    const next = chain.headSeq + 1
    await admin!.query(`INSERT INTO ${table} (chain_id, seq, bytes) SELECT chain_id, $1, bytes FROM ${table} WHERE seq = $2`, [next, chain.headSeq])
    const conflict = { code: 'EIO', message: expect.stringMatching(`block ${next} of chain [0-9a-f]+ was already appended by another writer`) }
    // close commits the file's block: it is the loser
    await expect(vfs.writeFile('/c/b.txt', 'lost race')).rejects.toMatchObject(conflict)
    await expect(chain.sync()).rejects.toMatchObject(conflict)
    await expect(vfs.writeFile('/c/c.txt', 'x')).rejects.toMatchObject({ code: 'EIO' })
    await vfs.close().catch(() => {})
  })

  it('detects a tampered row (one byte changed) and names the block: ChainIntegrityError', async () => {
    const chain = await open()
    const vfs = mounted(chain)
    await vfs.writeFile('/c/a.txt', 'first')
    await chain.sync()
    await vfs.writeFile('/c/b.txt', 'second')
    await chain.sync()
    const target = chain.headSeq
    await vfs.writeFile('/c/c.txt', 'third')
    await vfs.close()
    const at = FRAME_HEADER_BYTES + 40
    await admin!.query(`UPDATE ${table} SET bytes = set_byte(bytes, $2, get_byte(bytes, $2) # 1) WHERE seq = $1`, [target, at])
    const err = (await open().catch((e: unknown) => e)) as Error
    expect(err).toBeInstanceOf(ChainIntegrityError)
    expect((err as ChainIntegrityError).seq).toBe(target)
    expect(err.message).toMatch(new RegExp(`^block ${target} `))
    // the last row altered is an integrity error too, never a torn tail to cut
    await admin!.query(`UPDATE ${table} SET bytes = set_byte(bytes, $2, get_byte(bytes, $2) # 1) WHERE seq = $1`, [target, at])
    const last = Number((await admin!.query<{ m: string }>(`SELECT max(seq) AS m FROM ${table}`)).rows[0]!.m)
    await admin!.query(`UPDATE ${table} SET bytes = set_byte(bytes, $2, get_byte(bytes, $2) # 1) WHERE seq = $1`, [last, at])
    const err2 = (await open().catch((e: unknown) => e)) as Error
    expect(err2).toBeInstanceOf(ChainIntegrityError)
    expect((err2 as ChainIntegrityError).seq).toBe(last)
    expect(Number((await admin!.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n)).toBe(last + 1)
  })

  it('refuses a log whose last row was deleted (a rollback) with RollbackError, unless allowRollback', async () => {
    const chain = await open()
    const vfs = mounted(chain)
    await vfs.writeFile('/c/a.txt', 'kept')
    await chain.sync()
    await vfs.writeFile('/c/b.txt', 'rolled back')
    await vfs.close()
    const last = Number((await admin!.query<{ m: string }>(`SELECT max(seq) AS m FROM ${table}`)).rows[0]!.m)
    await admin!.query(`DELETE FROM ${table} WHERE seq = $1`, [last])
    await expect(open()).rejects.toBeInstanceOf(RollbackError)
    const accepted = await Chain.open(postgresBackend({ url: URL, table }), { identity: testIdentity(), home: t.home, allowRollback: true })
    expect(accepted.headSeq).toBe(last - 1)
    expect(accepted.report.rollbackAccepted).toMatch(/./)
    await accepted.close()
  })
})
