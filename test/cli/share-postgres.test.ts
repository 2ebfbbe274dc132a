import { randomBytes } from 'node:crypto'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadIdentity } from '../../src/crypto/identity.ts'
import { Chain, NoAccessError } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { postgresBackend } from '../../src/chain/postgres.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { reachPostgres, TEST_PG_URL } from '../helpers/pg.ts'
import { PASS, shareSetupEach } from './share-setup.ts'

const { admin, reason } = await reachPostgres(TEST_PG_URL)

describe.skipIf(!admin)(`facet share --files-store postgres://…${admin ? '' : ` (skipped: PostgreSQL unavailable at ${TEST_PG_URL}: ${reason})`}`, () => {
  const t = shareSetupEach()
  let schema: string
  let url: string

  beforeEach(async () => {
    schema = `facet_share_${randomBytes(6).toString('hex')}`
    await admin!.query(`CREATE SCHEMA ${schema}`)
    url = `${TEST_PG_URL}${TEST_PG_URL.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`
  })
  afterEach(async () => {
    await admin!.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  })
  afterAll(async () => {
    await admin?.end()
  })

  it('shares a folder of a chain kept in PostgreSQL, lists the grant, and withdraws it', async () => {
    const aliceId = await loadIdentity('default', PASS, t.alice.FACET_HOME!)
    const made = await Chain.create(postgresBackend({ url }), { identity: aliceId, home: t.alice.FACET_HOME! })
    const vfs = createVfs({ mounts: { '/c': chainMount(made) }, logger: silentLogger })
    await vfs.mkdir('/c/a')
    await vfs.writeFile('/c/a/x.txt', 'kept in PostgreSQL, shared\n')
    await vfs.writeFile('/c/top.txt', 'alice only\n')
    await vfs.close()

    const shared = await t.run(['share', '/a', '--with', 'bob', '--files-store', url], t.alice)
    expect([shared.code, shared.stdout]).toEqual([0, expect.stringMatching(/^shared \/a with 'bob' \(key [0-9a-f]{16}\): read\n$/)])
    expect((await t.run(['share', '--list', '--files-store', url], t.alice)).stdout).toMatch(/^\/a\tbob\tread\t[0-9a-f]{16}\n$/)

    const bobId = await loadIdentity('default', PASS, t.bob.FACET_HOME!)
    const chain = await Chain.open(postgresBackend({ url }), { identity: bobId, home: t.bob.FACET_HOME!, readOnly: true })
    const bobVfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    expect((await bobVfs.readdirAll('/c')).map(e => e.name)).toEqual(['a'])
    expect((await bobVfs.readFile('/c/a/x.txt')).toString()).toBe('kept in PostgreSQL, shared\n')
    await bobVfs.close()

    const unshared = await t.run(['unshare', '/a', '--with', 'bob', '--files-store', url], t.alice)
    expect([unshared.code, unshared.stdout]).toEqual([0, expect.stringMatching(/^withdrew the grant of \/a to bob\nrotated the keys of \d+ inodes? in \/a: what is written there from now on is out of bob's reach; 0 grants made again for the readers that stay\n$/)])
    expect(unshared.stderr).toMatch(/^NOTE: bob can still read what \/a holds now with the keys it kept, until facet rekey \/a/)
    await expect(Chain.open(postgresBackend({ url }), { identity: bobId, home: t.bob.FACET_HOME!, readOnly: true })).rejects.toBeInstanceOf(NoAccessError)

    // rekey rewrites old chunks: refused on PostgreSQL, naming why, before anything is written
    const head = (await t.run(['verify', url], t.alice)).stdout
    const rekeyed = await t.run(['rekey', '/a', '--files-store', url], t.alice)
    expect(rekeyed.code).not.toBe(0)
    expect(rekeyed.stderr).toMatch(/rekey works on log files only: on .*, a postgres store, its rewrite of old chunks would race other nodes' writes/)
    expect((await t.run(['verify', url], t.alice)).stdout).toBe(head)
  })
})
