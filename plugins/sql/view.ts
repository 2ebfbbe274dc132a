import { LRUCache } from 'lru-cache'
import { isVfsError, vfsError } from '../../src/vfs/errors.ts'
import type { ViewStats } from '../../src/vfs/mounts.ts'
import type { NodeContext, NodeCreate, NodeGetattr, NodeMkdir, NodeOpen, NodeRename, NodeUnlink, VNode } from '../../src/vfs/node.ts'
import { collection, encodeKey, type CollectionNode, type RecordChange } from '../../src/views/collection.ts'
import { formatOf } from '../../src/views/formats.ts'
import type { StandardSchemaV1 } from '../../src/views/schema.ts'
import type { View } from '../../src/views/view.ts'
import { dirFrom, fileFrom, type DirCapabilities } from '../../src/views/writable.ts'
import { openSqlDatabase, type SqlDatabase, type SqlDatabaseOptions } from './database.ts'
import { parseRowKey, rowKey } from './keys.ts'
import type { RowChange } from './live.ts'
import type { Field, SqlRecord, SqlTable, StoredRow, WholeFormat } from './table.ts'

/** Options of the {@link sql} view: where the data is (see {@link SqlDatabaseOptions}) and how it is shown. */
export interface SqlOptions extends SqlDatabaseOptions {
  /** The view's name in the mount list. @default 'sql' */
  name?: string
  /** How row files are rendered and parsed. @default 'json' */
  format?: 'json' | 'yaml'
  /** The largest `<table>.csv` / `<table>.ndjson`; bigger ones refuse to open with `EFBIG`. @default 16 MiB */
  maxWholeFileBytes?: number
  /**
   * How long a row read from the database is served again without asking it, in ms,
   * when change triggers are not installed. With triggers rows stay cached until a
   * change is reported (or for 60 s at most).
   * @default 1000
   */
  revalidateMs?: number
  /** Rows cached per table. @default 10000 */
  cacheSize?: number
}

const PARTS = Symbol('sql.keyParts')
const LABEL = Symbol('sql.label')


/** How a written record's key was settled against its file name (see {@link TableRecords.check}). */
interface Written {
  /** The file's key: what the collection must hear back from `key`. */
  fileKey: string
  /** The name is not a key of the table: the database gives the key (sequence, identity, DEFAULT). */
  defaults?: boolean
  /** Key fields the record left out and the file name supplied. */
  fromName?: readonly Field[]
}

/** A short description of a parsed value that is not a record, for error messages. */
function shapeOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'string' ? 'a string' : `a ${typeof value}`
}

interface CachedRow {
  row: StoredRow
}

/** The keys of one listed page, in order, and how far its rows have been fetched (see {@link TableRecords.get}). */
interface ListedPage {
  keys: string[][]
  /** Rows before this index are fetched, or being fetched by `fetching`. */
  fetchedTo: number
  fetching?: Promise<void>
}

/** Rows fetched in one query when a listed row is looked up: those that follow it on its page. */
const PREFETCH_ROWS = 256

/**
 * The records of one table as a collection: keys are row names (see `keys.ts`), `get`
 * is one indexed `SELECT`, listing pages through the primary key, and edits go through
 * {@link SqlTable.update} (changed columns only, compared against the row's version).
 */
class TableRecords {
  /** Rows served again without asking the database, for `ttl` ms (none when 0). */
  readonly rows: LRUCache<string, CachedRow>
  /** The row each key was last read as: the base an edit is compared with and written over. */
  private readonly bases: LRUCache<string, StoredRow>
  private readonly ttl: number
  private readonly byRecord = new WeakMap<object, StoredRow>()
  /** The last seen label of each row, by bare key, so a written record keeps the name it was listed by. */
  private readonly labels: LRUCache<string, string>
  /** Where each recently listed key sits on its page, so looking it up fetches its neighbours too. */
  private readonly listed: LRUCache<string, { page: ListedPage; at: number }>
  /** Written records whose key is their file's key (see {@link check}). */
  private readonly written = new WeakMap<object, Written>()
  /** The collection's change emitter, to announce a row under the key the database gave it. */
  private emitChange: ((change: RecordChange) => void) | undefined
  readonly ext: string
  readonly node: CollectionNode

  constructor(
    readonly table: SqlTable,
    private readonly db: SqlDatabase,
    options: SqlOptions,
    private readonly onTableChange: () => void,
  ) {
    const live = db.live
    this.labels = new LRUCache({ max: options.cacheSize ?? 10_000 })
    this.ttl = live ? 60_000 : Math.max(0, options.revalidateMs ?? 1000)
    this.rows = new LRUCache({ max: options.cacheSize ?? 10_000, ...(this.ttl > 0 ? { ttl: this.ttl } : {}) })
    this.bases = new LRUCache({ max: options.cacheSize ?? 10_000 })
    this.listed = new LRUCache({ max: 4 * (options.cacheSize ?? 10_000), ttl: 30_000 })
    const format = formatOf(options.format ?? 'json')
    this.ext = format.ext
    const refuses = table.info.refuses
    const schema: StandardSchemaV1<unknown, SqlRecord> = { '~standard': { version: 1, vendor: 'facetfs-sql', validate: (value, opts) => this.check(value, opts?.libraryOptions?.fileKey) } }
    this.node = collection<SqlRecord>({
      format,
      schema,
      list: async ({ limit, cursor }) => {
        const page = await table.listKeys(limit, cursor === undefined ? undefined : (JSON.parse(cursor) as string[]))
        this.noteListed(page.rows.map(r => r.key))
        const items = page.rows.map(r => ({ [PARTS]: r.key, [LABEL]: r.label }) as unknown as SqlRecord)
        return page.next ? { items, cursor: JSON.stringify(page.next) } : { items }
      },
      key: record => {
        const stub = record as { [PARTS]?: string[]; [LABEL]?: string | null }
        if (stub[PARTS]) return this.keyString(stub[PARTS], stub[LABEL])
        const written = this.written.get(record)
        if (written) return written.fileKey
        const missing = table.keyFields.find(k => record[k.field] === undefined)
        if (missing) throw vfsError('EINVAL', `${missing.field}: the record has no key column ${missing.column.name}`)
        return this.keyString(table.keyOf(record))
      },
      get: key => this.get(key),
      version: record => this.byRecord.get(record)?.version ?? '',
      // A relation the database cannot update has no put, so its files show no write bits;
      // the writes it refuses are EROFS with the database's reason (TableFolder, SqlTable).
      // an insert-only relation takes new files and refuses changes with the database's reason
      put:
        refuses.update && refuses.insert
          ? undefined
          : (key, record, { created }) => {
              if (created) return this.insert(record)
              if (refuses.update) throw vfsError('EROFS', refuses.update)
              return this.put(key, record)
            },
      remove: refuses.delete ? undefined : key => this.remove(key),
      watch: emit => {
        this.emitChange = emit
        return live ? this.watch(emit) : undefined
      },
      cacheSize: options.cacheSize,
    })
  }

  /** The collection key (file name stem) of a row: see `keys.ts`; with a label column, the row's last seen label follows a `~`. */
  keyString(parts: readonly string[], label?: string | null): string {
    const bare = rowKey(parts, this.ext.length + 1)
    if (!this.table.labelColumn) return bare
    if (label !== undefined) this.labels.set(bare, label ?? '')
    return rowKey(parts, this.ext.length + 1, label !== undefined ? label : this.labels.get(bare))
  }

  private async parts(key: string): Promise<string[] | undefined> {
    const parsed = parseRowKey(key, this.table.keyFields.length)
    if (!parsed) return undefined
    return parsed.hash !== undefined ? this.table.findByHash(parsed.hash) : parsed.parts
  }

  /** The cache key of a row: its key without label. */
  private bare(parts: readonly string[]): string {
    return rowKey(parts, this.ext.length + 1)
  }

  private remember(row: StoredRow): SqlRecord {
    const bare = this.bare(row.key)
    this.byRecord.set(row.record, row)
    this.bases.set(bare, row)
    if (this.ttl > 0) this.rows.set(bare, { row })
    const labelField = this.table.fields.find(f => f.column === this.table.labelColumn)
    if (labelField && !this.labels.has(bare)) {
      const value = row.record[labelField.field]
      this.labels.set(bare, value == null ? '' : typeof value === 'string' ? value : JSON.stringify(value))
    }
    return row.record
  }

  async get(key: string): Promise<SqlRecord | undefined> {
    const parts = await this.parts(key)
    if (!parts) return undefined
    const bare = this.bare(parts)
    const hit = this.ttl > 0 ? this.rows.get(bare) : undefined
    if (hit) return hit.row.record
    if (this.ttl > 0 && (await this.fetchListed(bare))) {
      const fetched = this.rows.get(bare)
      if (fetched) return fetched.row.record
    }
    const row = await this.table.get(parts)
    return row ? this.remember(row) : undefined
  }

  /** Remembers where each key of a listed page sits, for {@link fetchListed}. */
  private noteListed(keys: string[][]): void {
    if (this.ttl === 0 || keys.length < 2) return
    const page: ListedPage = { keys, fetchedTo: 0 }
    keys.forEach((key, at) => this.listed.set(this.bare(key), { page, at }))
  }

  /**
   * A listing is usually followed by a lookup of each of its names in order (`ls -l`,
   * `find`, a file manager): when `bare` was listed recently and its row is not cached,
   * the rows that follow it on its page are read with it in one range query
   * ({@link SqlTable.getRange}) and cached for the revalidation window, so the lookups
   * after it cost no query. Returns false when `bare` was not listed (or its page's fetch
   * already passed it and the row was gone): the caller reads the one row.
   */
  private async fetchListed(bare: string): Promise<boolean> {
    const spot = this.listed.get(bare)
    if (!spot) return false
    const { page, at } = spot
    if (at < page.fetchedTo) {
      if (!page.fetching) return false
      await page.fetching.catch(() => {})
      return true
    }
    const end = Math.min(page.keys.length, at + PREFETCH_ROWS)
    page.fetchedTo = end
    const fetching = this.table.getRange(page.keys[at]!, page.keys[end - 1]!, end - at).then(rows => {
      for (const row of rows) this.remember(row)
    })
    page.fetching = fetching
    try {
      await fetching
      return true
    } catch {
      return false // the caller's own read of the row reports what went wrong
    } finally {
      if (page.fetching === fetching) page.fetching = undefined
    }
  }

  /**
   * Writes a record over the row the collection read last (its version check just
   * passed against that row); the database refuses with `EAGAIN` if the row changed after.
   */
  private async put(key: string, record: SqlRecord): Promise<void> {
    const parts = await this.parts(key)
    const original = parts && (this.bases.get(this.bare(parts)) ?? (await this.table.get(parts)))
    if (!parts || !original) throw vfsError('ENOENT', 'the row was deleted meanwhile')
    try {
      this.remember(await this.table.update(original, record))
    } catch (err) {
      if (isVfsError(err, 'EAGAIN') || isVfsError(err, 'ENOENT')) {
        this.rows.delete(this.bare(parts))
        this.bases.delete(this.bare(parts))
      }
      throw err
    } finally {
      this.onTableChange()
    }
  }

  /**
   * The schema of written records: a JSON object (anything else is `EINVAL`) whose key
   * is settled against its file name (`fileKey`, which the collection passes its schema),
   * so that `key` can answer without a query:
   *
   * - key columns in the record are its key, and must match the name's (else `EINVAL`);
   * - key columns left out come from the name when the name is a key of the table
   *   (`42.json`; asked of the database for types such as uuid);
   * - when the name is not a key (`new.json`), they take the table's defaults (sequence,
   *   identity, DEFAULT), and the row then appears under the key the database gave;
   *   a left-out key column without a default is `EINVAL`.
   */
  private async check(value: unknown, fileKey: unknown): Promise<StandardSchemaV1.Result<SqlRecord>> {
    const refuse = (message: string, field?: string): StandardSchemaV1.FailureResult => ({ issues: [{ message, ...(field ? { path: [field] } : {}) }] })
    const table = this.table
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return refuse(`expected a JSON object of the columns of ${table.info.name}, got ${shapeOf(value)}`)
    }
    const record = { ...(value as SqlRecord) }
    if (typeof fileKey !== 'string') return { value: record }
    const nullKey = table.keyFields.find(k => record[k.field] === null)
    if (nullKey) return refuse(`a key column cannot be null; leave it out to take the database's default`, nullKey.field)
    const missing = table.keyFields.filter(k => record[k.field] === undefined)
    const named = await this.parts(fileKey)
    const fromName = missing.length > 0 && named ? await table.keyValues(named) : undefined
    if (missing.length && !fromName) {
      const noDefault = missing.filter(k => k.column.default === null && k.column.generated === null)
      if (noDefault.length) {
        const fields = noDefault.map(k => k.field).join(', ')
        return refuse(`${fields}: the key is missing and has no default, and '${encodeKey(fileKey)}.${this.ext}' does not name a row of ${table.info.name}; give ${fields} in the file, or name the file by its key`)
      }
      this.written.set(record, { fileKey, defaults: true })
      return { value: record }
    }
    for (const k of missing) record[k.field] = fromName![k.field]
    const key = table.keyOf(record)
    if (named && key.length === named.length && key.every((part, i) => part === named[i])) {
      this.written.set(record, missing.length ? { fileKey, fromName: missing } : { fileKey })
    }
    return { value: record }
  }

  private async insert(record: SqlRecord): Promise<void> {
    const written = this.written.get(record)
    const generated = written?.fromName?.find(k => k.column.generated === 'always')
    if (generated) {
      throw vfsError(
        'EINVAL',
        `${generated.field} is GENERATED ALWAYS: the database gives it; write the new row to a file whose name is not a key (new.${this.ext}) and it appears under its key`,
      )
    }
    const row = await this.table.insert(record)
    this.remember(row)
    this.onTableChange()
    if (written?.defaults) this.emitChange?.({ type: 'create', key: this.keyString(row.key) })
  }

  private async remove(key: string): Promise<void> {
    const parts = await this.parts(key)
    if (!parts) throw vfsError('ENOENT')
    this.rows.delete(this.bare(parts))
    this.bases.delete(this.bare(parts))
    await this.table.delete(parts)
    this.onTableChange()
  }

  /** Feeds changes reported by the database triggers to the collection (and so to the change bus). */
  private watch(emit: (change: RecordChange) => void): () => void {
    let stop: (() => Promise<void>) | undefined
    let stopped = false
    this.db
      .watch(change => this.onDbChange(change, emit))
      .then(
        s => {
          // Stopping after the database closed can only fail; there is nothing left to stop.
          if (stopped) s().catch(() => {})
          else stop = s
        },
        () => {},
      )
    return () => {
      stopped = true
      stop?.().catch(() => {})
    }
  }

  private onDbChange(change: RowChange | undefined, emit: (change: RecordChange) => void): void {
    if (change && change.table !== this.table.folder) return
    this.onTableChange()
    if (!change || change.op === 'truncate' || (!change.key && !change.oldKey)) {
      this.rows.clear()
      emit({ type: 'reset' })
      return
    }
    const key = change.key && this.keyString(change.key)
    const oldKey = change.oldKey && this.keyString(change.oldKey)
    if (change.key) this.rows.delete(this.bare(change.key))
    if (change.oldKey) this.rows.delete(this.bare(change.oldKey))
    if (change.op === 'insert') emit({ type: 'create', key: key! })
    else if (change.op === 'delete') emit({ type: 'delete', key: oldKey! })
    else if (key && oldKey && key !== oldKey) emit({ type: 'rename', key, oldKey })
    else emit({ type: 'update', key: key! })
  }
}

/** A row of a relation the database cannot update: no write bits, and opening it to write is `EROFS` with the database's reason. */
function readOnlyRow(inner: VNode & NodeGetattr & NodeOpen, why: string): VNode {
  return fileFrom({
    attributes: async ctx => {
      const a = await inner.getattr(ctx)
      return { ...a, mode: a.mode & ~0o222 }
    },
    open: (flags, ctx) => {
      if (flags.write) throw vfsError('EROFS', why)
      return inner.open(flags, ctx)
    },
    truncate: () => {
      throw vfsError('EROFS', why)
    },
  })
}

/** A table's folder: its records collection plus a read-only `.schema` file. */
function tableFolder(records: TableRecords, schema: VNode): VNode {
  const inner = records.node as CollectionNode & NodeCreate & NodeUnlink & NodeRename & NodeMkdir
  const ext = records.ext
  const refuses = records.table.info.refuses
  /** Whether `name` is a row file's name (not `.schema`, `.errors` or a temporary file's). */
  const isRow = (name: string) => !name.startsWith('.') && name.endsWith('.' + ext) && name.length > ext.length + 1
  const caps: DirCapabilities = {
    attributes: ctx => inner.getattr(ctx),
    async lookup(name, ctx) {
      if (name === '.schema') return schema
      const node = await inner.lookup(name, ctx)
      if (node && refuses.update && isRow(name)) return readOnlyRow(node as VNode & NodeGetattr & NodeOpen, refuses.update)
      return node
    },
    async readdirPage(page, ctx) {
      const p = await inner.readdir(page, ctx)
      return page.cursor === undefined ? { ...p, entries: [{ name: '.schema', kind: 'file' }, ...p.entries] } : p
    },
    create(name, mode, ctx) {
      if (name === '.schema') throw vfsError('EEXIST')
      if (refuses.insert && isRow(name)) throw vfsError('EROFS', refuses.insert)
      return inner.create(name, mode, ctx)
    },
    unlink(name, ctx) {
      if (name === '.schema') throw vfsError('EPERM', 'the schema file describes the table; it cannot be removed')
      if (refuses.delete && isRow(name)) throw vfsError('EROFS', refuses.delete)
      return inner.unlink(name, ctx)
    },
    rename(name, to, newName, ctx) {
      if (name === '.schema' || newName === '.schema') throw vfsError('EPERM', 'the schema file cannot be moved or replaced')
      if (refuses.update && isRow(newName)) throw vfsError('EROFS', refuses.update)
      if (to !== caps) throw vfsError('EXDEV', 'this view does not move records between these folders')
      return inner.rename(name, inner, newName, ctx)
    },
    mkdir: (name, mode, ctx) => inner.mkdir(name, mode, ctx),
    setattr: () => {},
  }
  return dirFrom(caps)
}

/** A read-only file rendered from the database on demand, cached for the revalidation window or until the table changes. */
function renderedFile(render: () => Promise<Buffer>, ttlMs: number): { node: VNode; changed(): void } {
  let cached: { bytes: Buffer | undefined; refusal: unknown; at: number; gen: number; mtimeMs: number } | undefined
  let generation = 0
  const current = async (): Promise<{ bytes: Buffer | undefined; refusal: unknown; mtimeMs: number }> => {
    const c = cached
    if (c && c.gen === generation && Date.now() - c.at < ttlMs) return c
    const gen = generation
    let bytes: Buffer | undefined
    let refusal: unknown
    try {
      bytes = await render()
    } catch (err) {
      // Too big, or a relation the database will not read yet (a materialized view not populated): refused on open, with the reason.
      if (!isVfsError(err, 'EFBIG') && !isVfsError(err, 'EINVAL')) throw err
      refusal = err
    }
    const same = c && bytes && c.bytes && c.bytes.equals(bytes)
    cached = { bytes, refusal, at: Date.now(), gen, mtimeMs: same ? c.mtimeMs : Date.now() }
    return cached
  }
  const node = fileFrom({
    // the size of the rendering; 0 for a file that refuses to open (`EFBIG` past its cap, `EINVAL` for a relation not readable yet)
    attributes: async () => {
      const c = await current()
      return { size: c.bytes?.length ?? 0, mtimeMs: c.mtimeMs }
    },
    read: async () => {
      const c = await current()
      if (!c.bytes) throw c.refusal
      return c.bytes
    },
    readOnlyReason: 'this file is rendered from the database; edit the row files instead',
  })
  return { node, changed: () => void generation++ }
}

/** The `.schema` document of a table: columns with types, nullability and defaults, the key, constraints and indexes. */
export function schemaDocument(table: SqlTable): Record<string, unknown> {
  const info = table.info
  return {
    table: `${info.schema}.${info.name}`,
    kind: info.relkind,
    ...(info.comment ? { comment: info.comment } : {}),
    key: table.keyFields.map(k => k.field),
    columns: table.fields.map(f => ({
      field: f.field,
      ...(f.field !== f.column.name ? { column: f.column.name } : {}),
      type: f.column.type,
      nullable: f.column.nullable,
      ...(f.column.default !== null ? { default: f.column.default } : {}),
      ...(f.column.generated ? { generated: f.column.generated } : {}),
      ...(f.column.comment ? { comment: f.column.comment } : {}),
    })),
    constraints: info.constraints.map(c => ({
      name: c.name,
      type: c.type,
      columns: c.columns,
      ...(c.references ? { references: c.references } : {}),
      definition: c.definition,
    })),
    indexes: info.indexes,
    ...(Object.keys(info.refuses).length ? { refuses: info.refuses } : {}),
  }
}

interface Tree {
  db: SqlDatabase
  children: Map<string, VNode>
  records: TableRecords[]
}

/** The view's root: one folder per table and its whole-table files, built when the database is first reached. */
function sqlRoot(options: SqlOptions): VNode {
  let tree: Promise<Tree> | undefined
  let ctx: NodeContext | undefined
  let closed = false
  let built: Tree | undefined
  const startedMs = Date.now()

  /** Opens the database once; a failed open is retried on the next access. */
  const open = (): Promise<Tree> => {
    if (closed) return Promise.reject(vfsError('EIO', 'the sql view is closed'))
    tree ??= build().catch(err => {
      tree = undefined
      throw isVfsError(err) ? err : vfsError('EIO', `cannot open the database: ${(err as Error).message}`)
    })
    return tree
  }

  const build = async (): Promise<Tree> => {
    const o = options
    const db = await openSqlDatabase(o)
    const maxBytes = o.maxWholeFileBytes ?? 16 * 1024 * 1024
    const ttl = db.live ? 60_000 : (o.revalidateMs ?? 1000)
    const children = new Map<string, VNode>()
    const records: TableRecords[] = []
    for (const table of db.tables.values()) {
      const whole = (format: WholeFormat) => renderedFile(() => table.renderWhole(format, maxBytes), ttl)
      const csv = whole('csv')
      const ndjson = whole('ndjson')
      const folder = table.folder
      const emitWhole = () => {
        csv.changed()
        ndjson.changed()
      }
      const rec = new TableRecords(table, db, o, emitWhole)
      const schemaText = Buffer.from(JSON.stringify(schemaDocument(table), null, 2) + '\n')
      const schema = renderedFile(async () => schemaText, Infinity).node
      children.set(folder, tableFolder(rec, schema))
      children.set(`${folder}.csv`, csv.node)
      children.set(`${folder}.ndjson`, ndjson.node)
      records.push(rec)
    }
    if (closed) {
      await db.close()
      throw vfsError('EIO', 'the sql view is closed')
    }
    if (ctx) for (const r of records) r.node.setup({ ...ctx, path: `${ctx.path === '/' ? '' : ctx.path}/${r.table.folder}` })
    built = { db, children, records }
    return built
  }

  return dirFrom({
    attributes: { mode: 0o755, mtimeMs: startedMs },
    /** Opens the database at once, so the tables' collections start watching it. */
    setup(c) {
      ctx = c
      void open().catch(err => c.logger.warn({ err: (err as Error).message }, 'sql: database not reachable yet'))
    },
    /** Stops the collections and closes the database. */
    async dispose() {
      closed = true
      const t = await tree?.catch(() => undefined)
      if (!t) return
      for (const r of t.records) await r.node.dispose()
      await t.db.close()
    },
    stats() {
      const out: Record<string, ViewStats> = {}
      for (const r of built?.records ?? []) Object.assign(out, r.node.stats?.())
      return out
    },
    lookup: async name => (await open()).children.get(name),
    readdir: async () => [...(await open()).children].map(([name, node]) => ({ name, kind: node.kind })),
  })
}

/**
 * A view of a PostgreSQL database (a server, an embedded PGlite, or the database of a
 * TypeORM DataSource) as files:
 *
 * - `/<table>/` — one record file per row, named by its primary key (`42.json`,
 *   `7,42.json` for a composite key); `cat` reads the row, an edit updates the changed
 *   columns, a new file inserts (`new.json`, without the key, inserts with the table's
 *   defaults and is then named by the key the database gave), `rm` deletes. Refusals
 *   carry the database's reason, in `/<table>/.errors` too, with an errno by SQLSTATE
 *   (`SQLSTATE_ERRNOS`): `EEXIST` (unique), `EINVAL` (foreign key, not null, check, bad
 *   value), `EACCES`, `EAGAIN` (a row changed by someone else since it was opened, a
 *   conflict); the rows of a view the database cannot update show no write bits and
 *   refuse writes with `EROFS`.
 * - `/<table>/.schema` — columns, key, constraints and indexes as JSON.
 * - `/<table>.csv`, `/<table>.ndjson` — the whole table, one snapshot read through a
 *   cursor; past `maxWholeFileBytes` they refuse to open with `EFBIG`.
 *
 * The database is opened when the view is mounted (and again on use while it cannot be
 * reached); unmounting releases it.
 */
export function sql(options: SqlOptions): View {
  const root = sqlRoot(options)
  return {
    name: options.name ?? 'sql',
    root,
  }
}
