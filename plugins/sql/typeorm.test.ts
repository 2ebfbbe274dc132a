import 'reflect-metadata'
import { Column, DataSource, Entity, EntitySchema, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isVfsError } from '../../src/vfs/errors.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { PG_URL, pgTestDb, type TestDb } from './test-helpers.ts'
import { sql } from './view.ts'

// A DAO as an application declares it. The decorators are applied as plain calls
// because this repository compiles without `experimentalDecorators`.
class Account {
  id!: number
  displayName!: string
  balance!: string
  openedAt!: Date
}
Entity('accounts')(Account)
PrimaryGeneratedColumn()(Account.prototype, 'id')
Column({ type: 'text', name: 'display_name', unique: true })(Account.prototype, 'displayName')
Column({ type: 'numeric', precision: 12, scale: 2, default: 0 })(Account.prototype, 'balance')
Column({ type: 'timestamptz', name: 'opened_at', default: () => 'now()' })(Account.prototype, 'openedAt')

class Grant {
  accountId!: number
  scope!: string
  level!: number
}
Entity('grants')(Grant)
PrimaryColumn({ type: 'integer', name: 'account_id' })(Grant.prototype, 'accountId')
PrimaryColumn({ type: 'text' })(Grant.prototype, 'scope')
Column({ type: 'smallint' })(Grant.prototype, 'level')

const Tag = new EntitySchema<{ name: string; uses: string }>({
  name: 'Tag',
  tableName: 'tags',
  columns: { name: { type: 'text', primary: true }, uses: { type: 'bigint', default: 0 } },
})

describe('TypeORM entities as folders', () => {
  let t: TestDb
  let ds: DataSource
  let vfs: Vfs

  beforeEach(async () => {
    t = await pgTestDb()
    ds = new DataSource({ type: 'postgres', url: PG_URL, schema: t.schema, entities: [Account, Grant, Tag], synchronize: true, logging: false })
    await ds.initialize()
    const repo = ds.getRepository(Account)
    await repo.save(repo.create({ displayName: 'ada', balance: '10.50', openedAt: new Date('2024-01-02T03:04:05.678Z') }))
    await ds.getRepository(Grant).save({ accountId: 1, scope: 'billing/read', level: 2 })
    vfs = createVfs({ mounts: { '/app': sql({ dataSource: ds, entities: [Account, Grant] }) }, logger: silentLogger })
  })
  afterEach(async () => {
    await vfs.close()
    await ds.destroy()
    await t.drop()
  })

  it('shows each entity as a folder named after its table, rows keyed by primary key', async () => {
    expect((await vfs.readdirAll('/app')).map(e => e.name)).toEqual(['accounts', 'accounts.csv', 'accounts.ndjson', 'grants', 'grants.csv', 'grants.ndjson'])
    expect((await vfs.readdirAll('/app/grants')).map(e => e.name)).toEqual(['.schema', '1,billing%2Fread.json'])
  })

  it('names record fields after entity properties and keeps exact values', async () => {
    expect(JSON.parse((await vfs.readFile('/app/accounts/1.json')).toString())).toEqual({
      id: 1,
      displayName: 'ada',
      balance: '10.50',
      openedAt: '2024-01-02T03:04:05.678+00:00',
    })
    const schema = JSON.parse((await vfs.readFile('/app/accounts/.schema')).toString())
    expect(schema.columns.find((c: { field: string }) => c.field === 'displayName')).toEqual({ field: 'displayName', column: 'display_name', type: 'text', nullable: false })
  })

  it('writes edits by property name and TypeORM reads them back', async () => {
    await vfs.writeFile('/app/accounts/1.json', JSON.stringify({ id: 1, displayName: 'ada l.', balance: '11.25', openedAt: '2024-01-02T03:04:05.678+00:00' }))
    const a = await ds.getRepository(Account).findOneByOrFail({ id: 1 })
    expect({ name: a.displayName, balance: a.balance }).toEqual({ name: 'ada l.', balance: '11.25' })
    await vfs.writeFile('/app/grants/1,billing%2Fread.json', JSON.stringify({ accountId: 1, scope: 'billing/read', level: 3 }))
    expect((await ds.getRepository(Grant).findOneByOrFail({ accountId: 1, scope: 'billing/read' })).level).toBe(3)
  })

  it('refuses a duplicate of a unique property with EEXIST', async () => {
    await vfs.writeFile('/app/accounts/2.json', JSON.stringify({ id: 2, displayName: 'bob' }))
    const err = await vfs.writeFile('/app/accounts/2.json', JSON.stringify({ id: 2, displayName: 'ada', balance: '0.00' })).catch((e: unknown) => e)
    expect(isVfsError(err, 'EEXIST')).toBe(true)
  })

  it('exposes every entity of the DataSource when none are named, EntitySchema ones too', async () => {
    const all = createVfs({ mounts: { '/all': sql({ dataSource: ds }) }, logger: silentLogger })
    try {
      expect((await all.readdirAll('/all')).filter(e => e.kind === 'dir').map(e => e.name)).toEqual(['accounts', 'grants', 'tags'])
    } finally {
      await all.close()
    }
  })
})
