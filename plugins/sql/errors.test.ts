import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isVfsError } from '../../src/vfs/errors.ts'
import type { Logger } from '../../src/vfs/log.ts'
import type { SqlDatabase } from './database.ts'
import { toSqlVfsError, type SqlOp } from './errors.ts'
import { BACKENDS, type TestDb } from './test-helpers.ts'

describe('PostgreSQL errors as errnos', () => {
  const rows: Array<{ sqlstate: string; op?: SqlOp; position?: string; errno: string; means: string }> = [
    { sqlstate: '23505', errno: 'EEXIST', means: 'unique violation' },
    { sqlstate: '23P01', errno: 'EEXIST', means: 'exclusion violation' },
    { sqlstate: '23503', errno: 'EINVAL', means: 'foreign key violation' },
    { sqlstate: '23502', errno: 'EINVAL', means: 'not null violation' },
    { sqlstate: '23514', errno: 'EINVAL', means: 'check violation' },
    { sqlstate: '22P02', errno: 'EINVAL', means: 'invalid text representation' },
    { sqlstate: '22001', errno: 'EINVAL', means: 'string too long' },
    { sqlstate: '42601', errno: 'EINVAL', means: 'a value its input calls a syntax error (tsvector)' },
    { sqlstate: '42601', position: '8', errno: 'EIO', means: 'a syntax error in the statement itself' },
    { sqlstate: '428C9', errno: 'EINVAL', means: 'a value for a GENERATED ALWAYS column' },
    { sqlstate: '42501', errno: 'EACCES', means: 'insufficient privilege' },
    { sqlstate: '28000', errno: 'EACCES', means: 'invalid authorization' },
    { sqlstate: '40001', errno: 'EAGAIN', means: 'serialization failure' },
    { sqlstate: '40P01', errno: 'EAGAIN', means: 'deadlock' },
    { sqlstate: '55P03', errno: 'EAGAIN', means: 'lock not available' },
    { sqlstate: '57014', errno: 'ECANCELED', means: 'statement cancelled' },
    { sqlstate: '25006', errno: 'EROFS', means: 'read-only transaction' },
    { sqlstate: '0A000', op: 'write', errno: 'EROFS', means: 'a view column that cannot be updated' },
    { sqlstate: '0A000', op: 'read', errno: 'EINVAL', means: 'feature not supported on a read' },
    { sqlstate: '55000', op: 'write', errno: 'EROFS', means: 'a view that cannot be updated' },
    { sqlstate: '55000', op: 'read', errno: 'EINVAL', means: 'a materialized view not populated' },
    { sqlstate: '42809', op: 'write', errno: 'EROFS', means: 'a write to a materialized view' },
    { sqlstate: '08006', errno: 'EIO', means: 'connection failure' },
    { sqlstate: '57P01', errno: 'EIO', means: 'backend terminated by an administrator' },
    { sqlstate: '42P01', errno: 'EIO', means: 'a relation gone (nothing a user can fix by editing)' },
  ]

  it.each(rows)('maps SQLSTATE $sqlstate ($means) to $errno', ({ sqlstate, op, position, errno }) => {
    const err = toSqlVfsError({ code: sqlstate, message: 'the reason', detail: 'the detail.', hint: 'the hint.', ...(position ? { position } : {}) }, op)
    expect(err.code).toBe(errno)
    expect(err.detail).toContain('the reason: the detail. (hint: the hint.)')
  })

  it('says a lost connection is lost, and that FacetFS reconnects', () => {
    expect(toSqlVfsError({ code: '57P01', message: 'terminating connection due to administrator command' }).detail).toBe(
      'database connection lost: terminating connection due to administrator command; FacetFS reconnects on the next operation',
    )
    expect(toSqlVfsError({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' }).detail).toMatch(/^database unreachable: /)
  })
})

describe.each(BACKENDS)('database errors on $backend', ({ make }) => {
  let t: TestDb
  let db: SqlDatabase
  const logged: Array<{ level: string; obj: unknown; msg?: string }> = []
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (obj, msg) => logged.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => logged.push({ level: 'error', obj, msg }),
  }

  beforeEach(async () => {
    logged.length = 0
    t = await make()
    await t.exec(`CREATE TABLE docs (id integer PRIMARY KEY, words tsvector)`)
    db = await t.open({ logger })
  })
  afterEach(async () => {
    await t.drop()
  })

  it('refuses a value its type calls a syntax error with EINVAL, and logs nothing', async () => {
    const err = await db.tables
      .get('docs')!
      .insert({ id: 1, words: 'a:1x' })
      .catch((e: unknown) => e)
    expect(isVfsError(err, 'EINVAL')).toBe(true)
    expect((err as { detail: string }).detail).toBe('syntax error in tsvector: "a:1x"')
    expect(logged).toEqual([])
  })

  it('turns an error no user can act on into EIO and logs it with its SQLSTATE and statement', async () => {
    const err = await db.source.query('SELEC 1').catch((e: unknown) => e)
    expect(isVfsError(err, 'EIO')).toBe(true)
    expect((err as { detail: string }).detail).toMatch(/^database error 42601: syntax error at or near "SELEC"/)
    expect(logged).toEqual([{ level: 'error', obj: expect.objectContaining({ sqlstate: '42601', statement: 'SELEC 1' }), msg: 'sql: database error' }])
  })
})
