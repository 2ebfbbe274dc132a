import { stringify } from 'csv-stringify/sync'
import { vfsError, isVfsError } from '../../src/vfs/errors.ts'
import { decodeCell, encodeValue, ident, paramSql, renderSql, sameValue } from './codec.ts'
import { isConnectionError } from './errors.ts'
import type { ColumnInfo, TableInfo, WriteKind } from './introspect.ts'
import { keyHash } from './keys.ts'
import type { Cell, Queryable, SqlSource } from './source.ts'

/** A record: one row as a plain object keyed by field name. */
export type SqlRecord = Record<string, unknown>

/** A row with what is needed to write it back. */
export interface StoredRow {
  /** The primary key as text parts, one per key column (see `keys.ts`). */
  key: string[]
  /** The row's exposed columns as a record, values decoded from their text. */
  record: SqlRecord
  /** The row's version when read: `xmin` for tables, the rendered row for views. Pass it back to {@link SqlTable.update}. */
  version: string
  /** The label column's text, when the table has one. */
  label?: string | null
}

/** One column exposed as a record field. */
export interface Field {
  /** The record's name for it: the column name, or a TypeORM property path. */
  readonly field: string
  /** The column it reads and writes. */
  readonly column: ColumnInfo
}

/** Which table to expose and how. */
export interface TableSpec {
  /** The schema the table is in, e.g. `'public'`. */
  readonly schema: string
  /** The table's name in the database. */
  readonly name: string
  /** The folder name. @default the table name */
  readonly folder?: string
  /** Columns to expose and their field names. @default every column, named as in the database */
  readonly fields?: ReadonlyArray<{
    /** The column's name in the database. */
    column: string
    /** The record's name for it. */
    field: string
  }>
  /** Key columns, for a view or a table without a primary key. @default the primary key */
  readonly key?: readonly string[]
  /** A column whose text labels row file names (`42~Ada.json`). */
  readonly label?: string
}

/** Options for {@link SqlTable}. */
export interface SqlTableOptions {
  /** Rows fetched per cursor round trip when reading a whole table. @default 1000 */
  fetchSize?: number
}

/** A page of keys from {@link SqlTable.listKeys}. */
export interface KeyPage {
  /** The rows of this page, in key order. */
  rows: Array<{
    /** The primary key as text parts, one per key column. */
    key: string[]
    /** The label column's text, when the table has one. */
    label?: string | null
  }>
  /** The key to pass as `after` for the next page; absent on the last page. */
  next?: string[]
}

/** The `.ndjson` and `.csv` renderings of a whole table. */
export type WholeFormat = 'ndjson' | 'csv'

const INTEGER = /^-?\d+$/

/**
 * One table or view of a database, read and written by primary key. Every query is
 * keyed: `get` and writes use `WHERE key = …` and listing uses keyset pagination
 * (`WHERE (k1, k2) > (…) ORDER BY k1, k2 LIMIT n`), so the primary key's index serves
 * them all and nothing scans the table except {@link renderWhole}, which reads through a
 * cursor up to a size cap.
 */
export class SqlTable {
  /** The folder name. */
  readonly folder: string
  /** The exposed columns, in select-list order. */
  readonly fields: readonly Field[]
  /** The fields of the key columns, in key order. */
  readonly keyFields: readonly Field[]
  /** The column whose text labels row file names, if any. */
  readonly labelColumn: ColumnInfo | undefined
  /** The `SELECT` used by {@link get}, exposed so tests can `EXPLAIN` it. */
  readonly getSql: string
  private readonly rel: string
  private readonly selectList: string
  private readonly versionSql: string
  private readonly fetchSize: number
  private readonly byField: Map<string, Field>

  constructor(
    private readonly source: SqlSource,
    /** The table as read from the catalog. */
    readonly info: TableInfo,
    spec: TableSpec,
    options: SqlTableOptions = {},
  ) {
    this.folder = spec.folder ?? info.name
    this.fetchSize = options.fetchSize ?? 1000
    const column = (name: string): ColumnInfo => {
      const c = info.columns.find(col => col.name === name)
      if (!c) throw new Error(`sql: ${info.schema}.${info.name} has no column ${name}`)
      return c
    }
    this.fields = spec.fields ? spec.fields.map(f => ({ field: f.field, column: column(f.column) })) : info.columns.map(c => ({ field: c.name, column: c }))
    this.byField = new Map(this.fields.map(f => [f.field, f]))
    const keyColumns = spec.key ?? info.primaryKey
    if (keyColumns.length === 0) throw new Error(`sql: ${info.schema}.${info.name} has no primary key; name its key columns with \`key\``)
    this.keyFields = keyColumns.map(name => {
      const f = this.fields.find(x => x.column.name === name)
      if (!f) throw new Error(`sql: key column ${name} of ${info.schema}.${info.name} must be exposed`)
      return f
    })
    this.labelColumn = spec.label ? column(spec.label) : undefined
    this.rel = `${ident(info.schema)}.${ident(info.name)}`
    this.selectList = this.fields.map(f => renderSql(f.column, `t.${ident(f.column.name)}`)).join(', ')
    this.versionSql = info.hasXmin ? 't.xmin::text' : 'NULL'
    this.getSql = `SELECT ${this.versionSql}, ${this.selectList} FROM ${this.rel} t WHERE ${this.keyWhere(1)}`
  }

  /** The record field of a column name, if exposed. */
  field(name: string): Field | undefined {
    return this.byField.get(name)
  }

  private keyWhere(first: number): string {
    return this.keyFields.map((k, i) => `t.${ident(k.column.name)} = ${paramSql(k.column, first + i)}`).join(' AND ')
  }

  private get orderBy(): string {
    return this.keyFields.map(k => `t.${ident(k.column.name)}`).join(', ')
  }

  /** The text of a record's key parts, one per key column. */
  keyOf(record: SqlRecord): string[] {
    return this.keyFields.map(k => keyText(record[k.field]))
  }

  /** Turns key parts into query parameters; returns undefined when a part cannot be a value of its column (so no row has it). */
  keyParams(parts: readonly string[]): Cell[] | undefined {
    if (parts.length !== this.keyFields.length) return undefined
    const params: Cell[] = []
    for (let i = 0; i < parts.length; i++) {
      const col = this.keyFields[i]!.column
      const value = keyValue(col, parts[i]!)
      if (value === undefined) return undefined
      try {
        params.push(encodeValue(col, value))
      } catch {
        return undefined
      }
    }
    return params
  }

  private toRow(cells: Cell[], version: Cell): StoredRow {
    const record: SqlRecord = {}
    for (let i = 0; i < this.fields.length; i++) {
      const f = this.fields[i]!
      record[f.field] = decodeCell(f.column, cells[i] ?? null)
    }
    return { key: this.keyOf(record), record, version: version ?? 'row:' + JSON.stringify(cells) }
  }

  /** Runs a read, once more on a fresh connection when the first one was found dropped. */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (!isConnectionError(err)) throw err
      return fn()
    }
  }

  /** Reads one row by key with an index lookup; undefined when there is none. */
  async get(parts: readonly string[]): Promise<StoredRow | undefined> {
    const params = this.keyParams(parts)
    if (!params) return undefined
    try {
      const { rows } = await this.read(() => this.source.query(this.getSql, params, { prepare: true }))
      const row = rows[0]
      return row ? this.toRow(row.slice(1), row[0] ?? null) : undefined
    } catch (err) {
      // A key the column type refuses (a bad uuid, an out-of-range integer) names no row.
      if (isVfsError(err, 'EINVAL')) return undefined
      throw err
    }
  }

  /**
   * Reads the rows whose keys lie from `first` to `last` (inclusive, in key order) with
   * one indexed range scan, at most `limit` of them: how the rows of a listed page are
   * fetched together when the first of them is looked up.
   */
  async getRange(first: readonly string[], last: readonly string[], limit: number): Promise<StoredRow[]> {
    const lo = this.keyParams(first)
    const hi = this.keyParams(last)
    if (!lo || !hi) return []
    const n = this.keyFields.length
    const tuple = (at: number) => `(${this.keyFields.map((k, i) => paramSql(k.column, at + i)).join(', ')})`
    const sql = `SELECT ${this.versionSql}, ${this.selectList} FROM ${this.rel} t WHERE (${this.orderBy}) >= ${tuple(1)} AND (${this.orderBy}) <= ${tuple(n + 1)} ORDER BY ${this.orderBy} LIMIT ${Math.max(1, Math.floor(limit))}`
    const { rows } = await this.read(() => this.source.query(sql, [...lo, ...hi], { prepare: true }))
    return rows.map(r => this.toRow(r.slice(1), r[0] ?? null))
  }

  /**
   * Lists keys (and labels) in key order, `limit` at a time, starting after the key
   * `after`: one indexed range scan per page, so memory and time per page do not grow
   * with the table.
   */
  async listKeys(limit: number, after?: readonly string[]): Promise<KeyPage> {
    const keys = this.keyFields.map(k => renderSql(k.column, `t.${ident(k.column.name)}`))
    if (this.labelColumn) keys.push(`left(t.${ident(this.labelColumn.name)}::text, 255)`)
    let where = ''
    let params: Cell[] = []
    if (after) {
      const p = this.keyParams(after)
      if (!p) throw vfsError('EINVAL', 'bad listing cursor')
      params = p
      where = `WHERE (${this.orderBy}) > (${this.keyFields.map((k, i) => paramSql(k.column, i + 1)).join(', ')})`
    }
    const sql = `SELECT ${keys.join(', ')} FROM ${this.rel} t ${where} ORDER BY ${this.orderBy} LIMIT ${Math.max(1, Math.floor(limit))}`
    const { rows } = await this.read(() => this.source.query(sql, params))
    const n = this.keyFields.length
    const out: KeyPage['rows'] = rows.map(r => {
      const key = this.keyFields.map((k, i) => keyText(decodeCell(k.column, r[i] ?? null)))
      return this.labelColumn ? { key, label: r[n] ?? null } : { key }
    })
    const last = out[out.length - 1]
    return out.length >= limit && last ? { rows: out, next: last.key } : { rows: out }
  }

  /** Finds the key whose {@link keyHash} is `hash` by paging through the keys (the slow path for over-long keys). */
  async findByHash(hash: string): Promise<string[] | undefined> {
    let after: string[] | undefined
    for (;;) {
      const page = await this.listKeys(1000, after)
      for (const r of page.rows) if (keyHash(r.key) === hash) return r.key
      if (!page.next) return undefined
      after = page.next
    }
  }

  private checkFields(record: SqlRecord): void {
    for (const name of Object.keys(record)) {
      if (!this.byField.has(name)) throw vfsError('EINVAL', `${name}: no such column in ${this.info.name}`)
    }
  }

  /** Throws `EROFS` with the database's reason when it refuses `kind` writes on this relation (a view it cannot update, a materialized view). */
  private writable(kind: WriteKind): void {
    const why = this.info.refuses[kind]
    if (why) throw vfsError('EROFS', why)
  }

  /**
   * The key fields of the row that `parts` name, as record values; undefined when a
   * part cannot be a value of its column. The database is asked, so types FacetFS does
   * not check itself (uuid, inet, enums…) are judged by their own input functions.
   */
  async keyValues(parts: readonly string[]): Promise<SqlRecord | undefined> {
    const params = this.keyParams(parts)
    if (!params) return undefined
    try {
      await this.read(() => this.source.query(`SELECT ${this.keyFields.map((k, i) => paramSql(k.column, i + 1)).join(', ')}`, params))
    } catch (err) {
      if (isVfsError(err, 'EINVAL')) return undefined
      throw err
    }
    return Object.fromEntries(this.keyFields.map((k, i) => [k.field, keyValue(k.column, parts[i]!)]))
  }

  /** Inserts a record; fields left out take their defaults. Returns the row as stored. A duplicate key is `EEXIST`. */
  async insert(record: SqlRecord): Promise<StoredRow> {
    this.writable('insert')
    this.checkFields(record)
    const cols: string[] = []
    const exprs: string[] = []
    const params: Cell[] = []
    for (const f of this.fields) {
      if (!Object.prototype.hasOwnProperty.call(record, f.field)) continue
      if (f.column.generated === 'always' || f.column.generated === 'stored') {
        if (record[f.field] === null) continue
        throw vfsError('EINVAL', `${f.field}: generated by the database, leave it out`)
      }
      params.push(encodeValue(f.column, record[f.field]))
      cols.push(ident(f.column.name))
      exprs.push(paramSql(f.column, params.length))
    }
    const values = cols.length ? `(${cols.join(', ')}) VALUES (${exprs.join(', ')})` : 'DEFAULT VALUES'
    const { rows } = await this.source.query(`INSERT INTO ${this.rel} AS t ${values} RETURNING ${this.versionSql}, ${this.selectList}`, params, { write: true })
    const row = rows[0]!
    return this.toRow(row.slice(1), row[0] ?? null)
  }

  /**
   * Writes the fields of `next` that differ from `original.record` in one `UPDATE`, only
   * if the row still has `original.version`. Fields left out of `next` are unchanged.
   * Nothing changed: no statement at all. The row changed meanwhile: `EAGAIN`; gone: `ENOENT`.
   */
  async update(original: StoredRow, next: SqlRecord): Promise<StoredRow> {
    this.writable('update')
    this.checkFields(next)
    const sets: string[] = []
    const params: Cell[] = []
    for (const f of this.fields) {
      if (!Object.prototype.hasOwnProperty.call(next, f.field)) continue
      if (sameValue(next[f.field], original.record[f.field])) continue
      if (f.column.generated === 'always' || f.column.generated === 'stored') throw vfsError('EINVAL', `${f.field}: generated by the database, it cannot be changed`)
      params.push(encodeValue(f.column, next[f.field]))
      sets.push(`${ident(f.column.name)} = ${paramSql(f.column, params.length)}`)
    }
    if (sets.length === 0) return original
    const keyParams = this.keyParams(original.key)
    if (!keyParams) throw vfsError('ENOENT', 'no such row')
    const keyAt = params.length + 1
    params.push(...keyParams)
    let check: string
    if (this.info.hasXmin) {
      params.push(original.version)
      check = `t.xmin = $${params.length}::xid`
    } else {
      const cells = JSON.parse(original.version.slice(4)) as Cell[]
      check = this.fields
        .map((f, i) => {
          params.push(cells[i] ?? null)
          return `${renderSql(f.column, `t.${ident(f.column.name)}`)} IS NOT DISTINCT FROM $${params.length}::text`
        })
        .join(' AND ')
    }
    const sql = `UPDATE ${this.rel} AS t SET ${sets.join(', ')} WHERE ${this.keyWhere(keyAt)} AND ${check} RETURNING ${this.versionSql}, ${this.selectList}`
    const { rows } = await this.source.query(sql, params, { write: true })
    const row = rows[0]
    if (row) return this.toRow(row.slice(1), row[0] ?? null)
    const now = await this.get(original.key)
    if (!now) throw vfsError('ENOENT', `row ${original.key.join(',')} was deleted from ${this.info.name} since it was read`)
    throw vfsError('EAGAIN', `row ${original.key.join(',')} of ${this.info.name} was changed in the database since it was read; read it again and redo the edit`)
  }

  /**
   * Deletes a row by key; `ENOENT` when there is none. A row others still reference is
   * `EINVAL`, and a delete the role may not make `EACCES`, with the database's reason.
   */
  async delete(parts: readonly string[]): Promise<void> {
    this.writable('delete')
    const params = this.keyParams(parts)
    if (!params) throw vfsError('ENOENT', 'no such row')
    const { rowCount } = await this.source.query(`DELETE FROM ${this.rel} AS t WHERE ${this.keyWhere(1)}`, params, { write: true })
    if (rowCount === 0) throw vfsError('ENOENT', 'no such row')
  }

  /**
   * Reads every row in key order through a server-side cursor in one read-only
   * snapshot, `fetchSize` rows per round trip, handing each batch to `onBatch`; stops
   * early when `onBatch` returns false.
   */
  async scan(onBatch: (records: SqlRecord[]) => boolean | void): Promise<void> {
    await this.source.transaction(
      async (tx: Queryable) => {
        await tx.query(`DECLARE facet_scan NO SCROLL CURSOR FOR SELECT NULL, ${this.selectList} FROM ${this.rel} t ORDER BY ${this.orderBy}`)
        for (;;) {
          const { rows } = await tx.query(`FETCH ${this.fetchSize} FROM facet_scan`)
          if (rows.length === 0) break
          if (onBatch(rows.map(r => this.toRow(r.slice(1), null).record)) === false) break
          if (rows.length < this.fetchSize) break
        }
        await tx.query('CLOSE facet_scan')
      },
      { readOnly: true },
    )
  }

  /**
   * Renders the whole table as NDJSON (one record per line) or CSV (a header of field
   * names; NULL as an empty cell, an empty string as `""`, JSON values as JSON text).
   * It is one snapshot: one read-only REPEATABLE READ transaction, and when the
   * connection drops midway the rendering starts over from nothing on a new one.
   * Past `maxBytes` it stops reading and throws `EFBIG` pointing at the folder of rows.
   */
  async renderWhole(format: WholeFormat, maxBytes: number): Promise<Buffer> {
    const tooBig = () => vfsError('EFBIG', `${this.folder}.${format} would be larger than ${maxBytes} bytes; read the rows one by one in ${this.folder}/`)
    // Far more data on disk than the cap allows: refuse without reading it.
    const { rows } = await this.read(() => this.source.query(`SELECT pg_relation_size($1::regclass)::text`, [this.rel]))
    if (Number(rows[0]?.[0] ?? 0) > 8 * maxBytes) throw tooBig()
    let chunks: Buffer[] = []
    let size = 0
    let over = false
    const push = (text: string): boolean => {
      const b = Buffer.from(text)
      size += b.length
      if (size > maxBytes) {
        over = true
        return false
      }
      chunks.push(b)
      return true
    }
    await this.read(() => {
      chunks = []
      size = 0
      over = false
      if (format === 'csv') push(stringify([this.fields.map(f => f.field)]))
      return this.scan(records => {
        if (format === 'ndjson') return push(records.map(r => JSON.stringify(r) + '\n').join(''))
        return push(stringify(records.map(r => this.fields.map(f => csvCell(r[f.field]))), { quoted_match: /^$/ }))
      })
    })
    if (over) throw tooBig()
    return Buffer.concat(chunks, size)
  }
}

function csvCell(value: unknown): string | null {
  if (value === null || value === undefined) return null
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return JSON.stringify(value)
}

/** The text of one key value in a row name: strings as they are, numbers and booleans in their JSON form, anything else as JSON. */
export function keyText(value: unknown): string {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return JSON.stringify(value)
}

/** The record value of key text for `col`; undefined when the text cannot be one. */
function keyValue(col: ColumnInfo, text: string): unknown {
  if (col.array) {
    try {
      return JSON.parse(text) as unknown
    } catch {
      return undefined
    }
  }
  switch (col.kind) {
    case 'int':
      return INTEGER.test(text) ? Number(text) : undefined
    case 'bigint':
      return INTEGER.test(text) ? text : undefined
    case 'float':
      return text === 'NaN' || text === 'Infinity' || text === '-Infinity' ? text : text.trim() !== '' && Number.isFinite(Number(text)) ? Number(text) : undefined
    case 'bool':
      return text === 'true' ? true : text === 'false' ? false : undefined
    case 'json':
      try {
        return JSON.parse(text) as unknown
      } catch {
        return undefined
      }
    default:
      return text
  }
}
