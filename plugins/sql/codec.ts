import { vfsError } from '../../src/vfs/errors.ts'
import type { Cell } from './source.ts'

/**
 * How a column's values look in a record. Chosen from the column's base type (through
 * domains); arrays carry the kind of their elements.
 *
 * | kind | PostgreSQL types | record value |
 * | --- | --- | --- |
 * | `int` | smallint, integer, oid | JSON number |
 * | `bigint` | bigint | decimal string, always (`"9007199254740993"`), as TypeORM does |
 * | `float` | real, double precision | JSON number; `"NaN"`, `"Infinity"`, `"-Infinity"` as strings |
 * | `numeric` | numeric | decimal string, exact |
 * | `bool` | boolean | `true` / `false` |
 * | `json` | json, jsonb | the JSON value itself (SQL NULL and JSON `null` both read as `null`; `null` writes SQL NULL) |
 * | `bytea` | bytea | base64 string |
 * | `timestamptz` | timestamp with time zone | ISO 8601 in UTC with offset and exact microseconds: `"2024-05-01T10:00:00.123456+00:00"` |
 * | `timestamp` | timestamp without time zone | ISO 8601 without offset: `"2024-05-01T10:00:00.123456"` |
 * | `date` | date | `"2024-05-01"` |
 * | `bpchar` | character(n) | the text with its padding (`"ab   "` for `char(5)`) |
 * | `text` | everything else (text, varchar, uuid, enums, time, interval, inet…) | PostgreSQL's text form |
 */
export type TypeKind = 'int' | 'bigint' | 'float' | 'numeric' | 'bool' | 'json' | 'bytea' | 'timestamptz' | 'timestamp' | 'date' | 'bpchar' | 'text'

/** What the codec needs to know about a column. */
export interface ColumnType {
  /** The column's name in the database. */
  readonly name: string
  /** Kind of the value, or of each element for arrays. */
  readonly kind: TypeKind
  /** True for an array column (`integer[]`); `kind` is then its elements'. */
  readonly array: boolean
  /** The type to cast parameters to, without modifiers (`character varying`, `integer[]`, `public.mood`; `bpchar`, not `character`, which would mean `character(1)`). */
  readonly castType: string
}

const KIND_BY_TYPE: Record<string, TypeKind> = {
  smallint: 'int',
  integer: 'int',
  oid: 'int',
  bigint: 'bigint',
  real: 'float',
  'double precision': 'float',
  numeric: 'numeric',
  boolean: 'bool',
  json: 'json',
  jsonb: 'json',
  bytea: 'bytea',
  'timestamp with time zone': 'timestamptz',
  'timestamp without time zone': 'timestamp',
  date: 'date',
  character: 'bpchar',
}

/** The {@link TypeKind} of a base type named as `regtype` prints it (`'bigint'`, `'timestamp with time zone'`). */
export function kindOf(baseType: string): TypeKind {
  return KIND_BY_TYPE[baseType] ?? 'text'
}

/** Quotes an SQL identifier. */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"'
}

/**
 * The SQL expression that renders column `ref` (an already-quoted reference such as
 * `t."id"` or `NEW."id"`) as text the codec decodes. Scalars avoid session-dependent
 * output (time zone, date style, bytea output); array elements use the session's text
 * form, which FacetFS's own connections fix (see `SESSION_SETTINGS`). `character(n)`
 * goes through `to_json`, because its cast to text drops the padding.
 */
export function renderSql(col: ColumnType, ref: string): string {
  if (col.array) return col.kind === 'bpchar' ? `array_to_json(${ref})::text` : `array_to_json(${ref}::text[])::text`
  switch (col.kind) {
    case 'timestamptz':
      return `(to_json(${ref} AT TIME ZONE 'UTC')#>>'{}')`
    case 'bpchar':
    case 'timestamp':
    case 'date':
      return `(to_json(${ref})#>>'{}')`
    case 'bytea':
      return `encode(${ref}, 'hex')`
    default:
      return `${ref}::text`
  }
}

/** The SQL for parameter `$n` given as text for `col`: a cast to the column's type (base64 decoding for bytea). */
export function paramSql(col: ColumnType, n: number): string {
  if (!col.array && col.kind === 'bytea') return `decode($${n}::text, 'base64')`
  return `$${n}::${col.castType}`
}

/** Turns a rendered cell (see {@link renderSql}) into the record value. */
export function decodeCell(col: ColumnType, cell: Cell): unknown {
  if (cell === null) return null
  if (col.array) return decodeArray(col.kind, JSON.parse(cell) as unknown)
  switch (col.kind) {
    case 'timestamptz':
      return cell === 'infinity' || cell === '-infinity' ? cell : cell + '+00:00'
    case 'bytea':
      return Buffer.from(cell, 'hex').toString('base64')
    default:
      return decodeText(col.kind, cell)
  }
}

function decodeArray(kind: TypeKind, value: unknown): unknown {
  if (Array.isArray(value)) return value.map(v => decodeArray(kind, v))
  if (value === null) return null
  const text = String(value)
  switch (kind) {
    case 'timestamptz':
      return isoOffset(text)
    case 'timestamp':
      return text.replace(' ', 'T')
    case 'bytea':
      return Buffer.from(text.startsWith('\\x') ? text.slice(2) : text, 'hex').toString('base64')
    default:
      return decodeText(kind, text)
  }
}

/** `2024-05-01 10:00:00.5+02` (ISO date style) → `2024-05-01T10:00:00.5+02:00`. */
function isoOffset(text: string): string {
  const t = text.replace(' ', 'T')
  return /[+-]\d\d$/.test(t) ? t + ':00' : t
}

/** Decodes a value from PostgreSQL's own text output for types whose text form the codec keeps. */
function decodeText(kind: TypeKind, text: string): unknown {
  switch (kind) {
    case 'int':
      return Number(text)
    case 'float':
      return text === 'NaN' || text === 'Infinity' || text === '-Infinity' ? text : Number(text)
    case 'bool':
      return text === 'true' || text === 't'
    case 'json':
      return JSON.parse(text) as unknown
    default:
      return text
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const INTEGER = /^-?\d+$/

function wrongType(col: ColumnType, expected: string, value: unknown): never {
  throw vfsError('EINVAL', `${col.name}: expected ${expected}, got ${JSON.stringify(value) ?? typeof value}`)
}

/**
 * Turns a record value into the text parameter for `col` (see {@link paramSql}), or
 * NULL; throws `EINVAL` naming the column when the value has the wrong shape. Ranges,
 * lengths and formats are left to the database, whose message is passed on.
 */
export function encodeValue(col: ColumnType, value: unknown): Cell {
  if (value === null || value === undefined) return null
  if (col.array) {
    if (!Array.isArray(value)) wrongType(col, 'an array', value)
    return arrayLiteral(col, value)
  }
  return encodeScalar(col, value, false)
}

function encodeScalar(col: ColumnType, value: unknown, inArray: boolean): string {
  switch (col.kind) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) wrongType(col, 'an integer', value)
      return String(value)
    case 'bigint':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
      if (typeof value !== 'string' || !INTEGER.test(value)) wrongType(col, 'an integer as a decimal string', value)
      return value
    case 'float':
      if (typeof value === 'number') return String(value)
      if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return value
      return wrongType(col, 'a number', value)
    case 'numeric':
      if (typeof value === 'number' && Number.isFinite(value)) return String(value)
      if (typeof value !== 'string') wrongType(col, 'a decimal string', value)
      return value
    case 'bool':
      if (typeof value !== 'boolean') wrongType(col, 'true or false', value)
      return String(value)
    case 'json':
      return JSON.stringify(value)
    case 'bytea':
      if (typeof value !== 'string' || !BASE64.test(value)) wrongType(col, 'base64 text', value)
      return inArray ? '\\x' + Buffer.from(value, 'base64').toString('hex') : value
    default:
      if (typeof value !== 'string') wrongType(col, 'a string', value)
      return value
  }
}

function arrayLiteral(col: ColumnType, value: unknown[]): string {
  const items = value.map(v => {
    if (v === null || v === undefined) return 'NULL'
    if (Array.isArray(v)) return arrayLiteral(col, v)
    return '"' + encodeScalar(col, v, true).replace(/[\\"]/g, '\\$&') + '"'
  })
  return '{' + items.join(',') + '}'
}

/** True when two record values are the same (deep, for arrays and JSON). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    return a.length === bb.length && a.every((v, i) => sameValue(v, bb[i]))
  }
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  return ka.every(k => Object.prototype.hasOwnProperty.call(b, k) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}
