import { randomBytes } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import pg from 'pg'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { chainMount, openChainMount } from '../../src/chain/mount.ts'
import { postgresBackend } from '../../src/chain/postgres.ts'
import { postgresLocation, postgresTrustKey } from '../../src/chain/postgres-location.ts'
import { listPins, pinPath, PIN_FORMAT, readPin, readTrust, RollbackError, UntrustedChainError } from '../../src/chain/trust.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { facet } from '../cli/run.ts'
import { forgeChain } from './forge.ts'
import { tempHomeEach, testIdentity } from './helpers.ts'
import { reachPostgres } from '../helpers/pg.ts'

const URL_ = process.env.FACET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

const { admin, reason } = await reachPostgres(URL_)

/** A logger that keeps its warnings. */
function warnings(): { logger: typeof silentLogger; lines: string[] } {
  const lines: string[] = []
  return { lines, logger: { ...silentLogger, warn: (_o: unknown, msg?: string) => void lines.push(msg ?? '') } }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

describe('the trust key of a PostgreSQL store', () => {
  it('names the server, database, user, search_path and table, never the password or a chain found in the table', () => {
    const t = 'facet_chain_blocks'
    expect(postgresTrustKey({ url: 'postgresql://Me:s3cret@DB.Example.org/facet' }, t)).toBe('postgres://Me@db.example.org:5432/facet?table=facet_chain_blocks')
    expect(postgresTrustKey({ url: 'postgres://me@db:6432/facet?options=-c%20search_path%3D%22Team%22,Public&application_name=x' }, t)).toBe(
      'postgres://me@db:6432/facet?options=-c%20search_path%3D%22Team%22%2Cpublic&table=facet_chain_blocks',
    )
    expect(postgresTrustKey({ url: 'postgres://me@db:6432/facet?options=--search-path%3Dteam' }, t)).toBe('postgres://me@db:6432/facet?options=-c%20search_path%3Dteam&table=facet_chain_blocks')
    expect(postgresTrustKey({ url: 'postgres://me@db/facet?options=-c%20search_path%3Dteam' }, 'other.blocks')).toBe('postgres://me@db:5432/facet?table=other.blocks')
    expect(postgresTrustKey({ url: 'postgres://me@db/facet' }, t, 'AB'.repeat(16))).toBe(`postgres://me@db:5432/facet?table=facet_chain_blocks&chain=${'ab'.repeat(16)}`)
    const pool = new pg.Pool({ host: '127.0.0.1', port: 5433, user: 'u', password: 'p', database: 'd' })
    expect(postgresTrustKey({ pool }, 'blocks')).toBe('postgres://u@127.0.0.1:5433/d?table=blocks')
    expect(postgresBackend({ pool, table: 'blocks' }).trustKey).toBe('postgres://u@127.0.0.1:5433/d?table=blocks')
    void pool.end()
  })

  it('reads a location it gives back as the same store, and refuses a chain id that is not 32 hex digits', () => {
    const key = `postgres://me@db:5432/facet?options=-c%20search_path%3Dteam&table=blocks&chain=${'0f'.repeat(16)}`
    const where = postgresLocation(key)
    expect(where).toEqual({ url: 'postgres://me@db:5432/facet?options=-c+search_path%3Dteam', table: 'blocks', chainId: '0f'.repeat(16) })
    expect(postgresBackend(where).trustKey).toBe(key)
    expect(postgresLocation('postgres://me@db/facet')).toEqual({ url: 'postgres://me@db/facet' })
    expect(() => postgresLocation('postgres://me@db/facet?chain=zz')).toThrow("invalid chain id 'zz' (expected 32 hex digits)")
  })
})

describe.skipIf(!admin)(`a PostgreSQL chain pinned to its store (issue 12)${admin ? '' : ` (skipped: PostgreSQL unavailable at ${URL_}: ${reason})`}`, () => {
  const t = tempHomeEach()
  let schema: string
  let url: string
  let key: string
  const store = (u = url) => postgresBackend({ url: u })
  const rows = async () => (await admin!.query<{ seq: string; bytes: Buffer }>(`SELECT seq, bytes FROM ${schema}.facet_chain_blocks ORDER BY chain_id, seq`)).rows
  const chainIds = async () => (await admin!.query<{ id: string }>(`SELECT DISTINCT encode(chain_id, 'hex') AS id FROM ${schema}.facet_chain_blocks`)).rows.map(r => r.id)
  /** Writes `files` into the chain of the store (created when empty) as the test identity, one block each, and closes it. */
  const write = async (files: Record<string, string>) => {
    const chain = await Chain.openOrCreate(store(), { identity: testIdentity(), home: t.home })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    for (const [name, text] of Object.entries(files)) {
      await vfs.writeFile(`/c/${name}`, text)
      await chain.sync()
    }
    await vfs.close()
  }

  beforeEach(async () => {
    schema = `facet_trust_test_${randomBytes(6).toString('hex')}`
    await admin!.query(`CREATE SCHEMA ${schema}`)
    url = `${URL_}${URL_.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`
    const u = new URL(URL_)
    key = `postgres://${u.username}@${u.hostname}:${u.port || 5432}${u.pathname}?options=-c%20search_path%3D${schema}&table=facet_chain_blocks`
  })
  afterEach(async () => {
    await admin!.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  })
  afterAll(async () => {
    await admin?.end()
  })

  it('refuses a forged chain put in your chain table (new id, the attacker as owner, root key also wrapped for you) in verify, open and mount, even with allowRollback, and leaves its rows untouched', async () => {
    const me = testIdentity()
    const mine = await openChainMount({ home: t.home, identity: me, backend: store() })
    await createVfs({ mounts: { '/': mine }, logger: silentLogger }).writeFile('/mine.txt', 'my own file')
    await mine.dispose!()
    const [myId] = await chainIds()
    const pin = (await readPin(t.home, key))!
    expect(pin).toEqual({ path: key, chainId: myId, owner: { name: 'tester', keyId: hex(me.keyId) }, pinned: expect.any(String) })

    await admin!.query(`DELETE FROM ${schema}.facet_chain_blocks`)
    const attacker = await forgeChain(store(), me, { 'mine.txt': 'attacker content' })
    const forged = await rows()
    const [forgedId] = await chainIds()
    expect(forgedId).not.toBe(myId)
    const message =
      `${key} is not the chain pinned for it: pinned chain ${myId}, owner 'tester' (key ${hex(me.keyId).slice(0, 16)}); ` +
      `found chain ${forgedId}, owner 'default' (key ${hex(attacker.keyId).slice(0, 16)}). If you replaced it on purpose, run 'facet trust accept "${key}"'`

    const v = await verifyChain(store(), { home: t.home })
    expect(v).toMatchObject({ ok: false, chainId: forgedId, pin, problem: { kind: 'trust', offset: -1, reason: message } })
    await expect(Chain.open(store(), { identity: me, home: t.home })).rejects.toMatchObject({ name: 'UntrustedChainError', reason: 'mismatch', message, pin })
    await expect(Chain.open(store(), { identity: me, home: t.home, readOnly: true, allowRollback: true })).rejects.toBeInstanceOf(UntrustedChainError)
    await expect(openChainMount({ home: t.home, identity: me, backend: store() })).rejects.toBeInstanceOf(UntrustedChainError)
    expect(await rows()).toEqual(forged)
    expect(await readPin(t.home, key)).toEqual(pin)
    expect(await listPins(t.home)).toEqual([pin])
  })

  it('refuses a chain forged under your chain id with another owner key in the same table', async () => {
    const me = testIdentity()
    await write({ 'a.txt': 'mine' })
    const pin = (await readPin(t.home, key))!
    await admin!.query(`DELETE FROM ${schema}.facet_chain_blocks`)
    const attacker = await forgeChain(store(), me, { 'a.txt': 'theirs' }, 'tester', Buffer.from(pin.chainId, 'hex'))
    expect(await chainIds()).toEqual([pin.chainId])
    const message =
      `${key} is not the chain pinned for it: pinned chain ${pin.chainId}, owner 'tester' (key ${hex(me.keyId).slice(0, 16)}); ` +
      `found chain ${pin.chainId}, owner 'tester' (key ${hex(attacker.keyId).slice(0, 16)}). If you replaced it on purpose, run 'facet trust accept "${key}"'`
    await expect(Chain.open(store(), { identity: me, home: t.home })).rejects.toMatchObject({ name: 'UntrustedChainError', reason: 'mismatch', message })
  })

  it('refuses a rollback of the head (the newest rows deleted) as a RollbackError of kind rollback, in open, mount and verify', async () => {
    const me = testIdentity()
    await write({ 'a.txt': 'one', 'b.txt': 'two', 'c.txt': 'three' })
    const [id] = await chainIds()
    const head = (await readTrust(t.home, Buffer.from(id!, 'hex')))!
    expect(head.seq).toBe((await rows()).length - 1)
    await admin!.query(`DELETE FROM ${schema}.facet_chain_blocks WHERE seq > $1`, [head.seq - 2])
    const left = await rows()
    expect(left.map(r => Number(r.seq))).toEqual([...Array(head.seq - 1).keys()])
    const message = `chain rolled back: the log ends at block ${head.seq - 2} but block ${head.seq} was seen before (hash ${head.hash.slice(0, 16)})`
    const err = await Chain.open(store(), { identity: me, home: t.home }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RollbackError)
    expect(err).toMatchObject({ kind: 'rollback', seq: head.seq - 1, message })
    await expect(openChainMount({ home: t.home, identity: me, backend: store() })).rejects.toMatchObject({ name: 'RollbackError', kind: 'rollback', message })
    expect(await verifyChain(store(), { home: t.home })).toMatchObject({ ok: false, headSeq: head.seq - 2, problem: { kind: 'trust', reason: message } })
    const reader = await Chain.open(store(), { identity: me, home: t.home, readOnly: true, allowRollback: true })
    expect([reader.headSeq, reader.report.rollbackAccepted]).toEqual([head.seq - 2, message])
    await reader.close()
    expect(await rows()).toEqual(left)
    expect(await readTrust(t.home, Buffer.from(id!, 'hex'))).toEqual(head)
  })

  it('opens a deliberately replaced chain only after `facet trust accept URL`, which says what it replaced, and lists the store', async () => {
    const me = testIdentity()
    await write({ 'note.txt': 'mine' })
    const before = (await readPin(t.home, key))!
    await admin!.query(`DELETE FROM ${schema}.facet_chain_blocks`)
    const attacker = await forgeChain(store(), me, { 'note.txt': 'theirs' })
    const [theirId] = await chainIds()
    await expect(Chain.open(store(), { identity: me, home: t.home })).rejects.toBeInstanceOf(UntrustedChainError)

    // a password in the URL is not part of the location
    const withPassword = url.replace(/^postgres:\/\/([^@/:]*)@/, 'postgres://$1:not-needed@')
    expect(withPassword).not.toBe(url)
    const accepted = await facet(['trust', 'accept', withPassword, '--home', t.home])
    const theirHead = (await rows()).length - 1
    expect(accepted).toEqual({
      code: 0,
      stdout:
        `pinned ${key}: chain ${theirId}, owner 'default' (key ${hex(attacker.keyId).slice(0, 16)}) — a key this home does not know\n` +
        `  was chain ${before.chainId}, owner 'tester' (key ${hex(me.keyId).slice(0, 16)}) — a key this home does not know\n` +
        `  recorded head ${theirHead} as the last one seen\n`,
      stderr: '',
    })
    const pin = (await readPin(t.home, key))!
    expect(pin).toEqual({ path: key, chainId: theirId, owner: { name: 'default', keyId: hex(attacker.keyId) }, pinned: expect.any(String), accepted: pin.pinned })

    const w = warnings()
    const chain = await Chain.open(store(), { identity: me, home: t.home, logger: w.logger })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    expect((await vfs.readFile('/c/note.txt')).toString()).toBe('theirs')
    await vfs.close()
    expect(w.lines).toEqual([])
    expect(await facet(['trust', 'list', '--home', t.home])).toEqual({ code: 0, stdout: `${key}\t${theirId}\tdefault\t${hex(attacker.keyId).slice(0, 16)}\taccepted ${pin.accepted}\n`, stderr: '' })
    // the location as listed reads back to the same store
    expect(await facet(['trust', 'accept', key, '--home', t.home])).toEqual({ code: 0, stdout: `pinned ${key}: chain ${theirId}, owner 'default' (key ${hex(attacker.keyId).slice(0, 16)}) — a key this home does not know (unchanged)\n`, stderr: '' })
  })

  it('remounts the same chain without a warning, however its URL is spelled, and refuses another chain created later in the same table', async () => {
    const me = testIdentity()
    const w = warnings()
    const first = await openChainMount({ home: t.home, identity: me, backend: store(), logger: w.logger })
    await createVfs({ mounts: { '/': first }, logger: silentLogger }).writeFile('/kept.txt', 'kept')
    await first.dispose!()
    const spelled = url.replace(/^postgres:\/\/([^@/:]*)@/, 'postgresql://$1:any-password@') + '&application_name=facet-test'
    const again = await openChainMount({ home: t.home, identity: me, backend: store(spelled), logger: w.logger })
    const vfs = createVfs({ mounts: { '/': again }, logger: silentLogger })
    expect((await vfs.readFile('/kept.txt')).toString()).toBe('kept')
    await vfs.close()
    expect(w.lines).toEqual([])
    const [id] = await chainIds()
    expect((await listPins(t.home)).map(p => 'path' in p && [p.path, p.chainId])).toEqual([[key, id]])

    await admin!.query(`DELETE FROM ${schema}.facet_chain_blocks`)
    const second = await Chain.create(store(), { identity: me, home: t.home }).catch((e: unknown) => e)
    expect(second).toBeInstanceOf(UntrustedChainError)
    expect(second).toMatchObject({ reason: 'mismatch', pin: { path: key, chainId: id } })
  })

  it('still reads a pin kept under the key of an older FacetFS (table and chain id), and moves it to the store location silently', async () => {
    const me = testIdentity()
    await write({ 'a.txt': 'one' })
    const pin = (await readPin(t.home, key))!
    const legacy = `postgres:postgres facet_chain_blocks chain ${pin.chainId}`
    await rm(pinPath(t.home, key))
    await writeFile(pinPath(t.home, legacy), JSON.stringify({ format: PIN_FORMAT, ...pin, path: legacy }))
    expect(await listPins(t.home)).toEqual([{ ...pin, path: legacy }])
    const w = warnings()
    await (await Chain.open(store(), { identity: me, home: t.home, logger: w.logger })).close()
    expect(w.lines).toEqual([])
    expect(await listPins(t.home)).toEqual([pin])
  })
})
