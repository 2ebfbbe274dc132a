import type { PGlite } from '@electric-sql/pglite'
import type { DataSource, EntityTarget, ObjectLiteral } from 'typeorm'
import type { Logger } from '../../src/vfs/log.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { introspectTable, listTables } from './introspect.ts'
import { DEFAULT_CHANNEL, installTriggers, watchChanges, type ChangeListener } from './live.ts'
import { createPgliteSource, createPgSource, type PgSourceOptions, type SqlSource } from './source.ts'
import { SqlTable, type TableSpec } from './table.ts'
import { dataSourceConnection, entityTables } from './typeorm.ts'

/** How to expose one table, beyond its name. */
export interface TableOptions {
  /** The folder name. @default the table name */
  folder?: string
  /** A column whose text labels row file names (`42~Ada.json`). */
  label?: string
  /** Key columns, for a view or a table without a primary key. @default the primary key */
  key?: string[]
  /** Columns to expose. @default all */
  columns?: string[]
}

/** Where the rows come from and which tables to expose: one of `url`, `pool`, `pglite`, `source`, or a TypeORM `dataSource`. */
export interface SqlDatabaseOptions {
  /** A `postgres://` URL of a server. */
  url?: string
  /** `pg.Pool` settings of a server (host, user, database…), instead of `url`. */
  pool?: PgSourceOptions['pool']
  /** An embedded PGlite database. FacetFS does not close it. */
  pglite?: PGlite
  /** A ready {@link SqlSource}; FacetFS closes it on close. */
  source?: SqlSource
  /** A TypeORM DataSource (postgres); FacetFS opens its own pool to the same database unless `url`/`pglite`/`source` is given. */
  dataSource?: DataSource
  /** With `dataSource`: the entities to expose, each as a folder. @default every entity of the DataSource */
  entities?: ReadonlyArray<EntityTarget<ObjectLiteral>>
  /** The schema tables are looked up in. @default 'public' */
  schema?: string
  /**
   * Tables to expose: names (`'users'`, `'audit.events'`), or names with options.
   * @default every table in `schema` (without `dataSource`)
   */
  tables?: ReadonlyArray<string> | Readonly<Record<string, TableOptions>>
  /** Install change triggers on the exposed tables (DDL on your database, so never done unless asked). @default false */
  installTriggers?: boolean
  /** The NOTIFY channel of the change triggers. @default 'facet_changes' */
  channel?: string
  /** Most pooled connections to a server. @default 4 */
  maxConnections?: number
  /** Rows per cursor round trip when reading a whole table. @default 1000 */
  fetchSize?: number
  /** @default silentLogger */
  logger?: Logger
}

/** An open database: its tables by folder name, and change notifications when triggers are installed. */
export interface SqlDatabase {
  /** The connection every table queries through. */
  readonly source: SqlSource
  /** Tables by folder name, in the order given (alphabetical when introspected). */
  readonly tables: ReadonlyMap<string, SqlTable>
  /** Whether change triggers are installed, so {@link watch} reports changes. */
  readonly live: boolean
  /** Reports changes other clients make (needs `installTriggers`); returns a stop function. */
  watch(listener: ChangeListener): Promise<() => Promise<void>>
  /** Closes connections FacetFS opened. */
  close(): Promise<void>
}

function tableSpecs(options: SqlDatabaseOptions, schema: string): Array<TableSpec> | undefined {
  const tables = options.tables
  if (!tables) return undefined
  const entries: Array<[string, TableOptions]> = Array.isArray(tables)
    ? (tables as string[]).map(n => [n, {}])
    : Object.entries(tables as Record<string, TableOptions>)
  return entries.map(([qualified, o]) => {
    const dot = qualified.indexOf('.')
    const [s, name] = dot >= 0 ? [qualified.slice(0, dot), qualified.slice(dot + 1)] : [schema, qualified]
    return {
      schema: s,
      name,
      ...(o.folder ? { folder: o.folder } : {}),
      ...(o.label ? { label: o.label } : {}),
      ...(o.key ? { key: o.key } : {}),
      ...(o.columns ? { fields: o.columns.map(c => ({ column: c, field: c })) } : {}),
    }
  })
}

/**
 * Opens a database for the SQL plugin: connects (a `pg` pool, a PGlite, or the
 * database of a TypeORM DataSource), reads each table's shape from the catalog, and
 * installs change triggers when asked.
 */
export async function openSqlDatabase(options: SqlDatabaseOptions): Promise<SqlDatabase> {
  const logger = options.logger ?? silentLogger
  const schema = options.schema ?? 'public'
  const channel = options.channel ?? DEFAULT_CHANNEL
  let source: SqlSource
  if (options.source) source = options.source
  else if (options.pglite) source = await createPgliteSource(options.pglite, { logger })
  else if (options.url || options.pool) source = createPgSource({ url: options.url, pool: options.pool, max: options.maxConnections, logger })
  else if (options.dataSource) source = createPgSource({ ...dataSourceConnection(options.dataSource), max: options.maxConnections, logger })
  else throw new Error('sql: give one of url, pool, pglite, source or dataSource')
  try {
    let specs: TableSpec[]
    if (options.dataSource) {
      const entities = options.entities ?? options.dataSource.entityMetadatas.map(m => m.target as EntityTarget<ObjectLiteral>)
      specs = entityTables(options.dataSource, entities)
    } else {
      specs = tableSpecs(options, schema) ?? (await listTables(source, schema)).map(name => ({ schema, name }))
    }
    const tables = new Map<string, SqlTable>()
    for (const spec of specs) {
      const info = await introspectTable(source, spec.schema, spec.name)
      const table = new SqlTable(source, info, spec, { fetchSize: options.fetchSize })
      if (tables.has(table.folder)) throw new Error(`sql: two tables would both be the folder ${table.folder}; give one a \`folder\``)
      tables.set(table.folder, table)
    }
    const live = options.installTriggers === true
    if (live) {
      logger.info({ tables: [...tables.values()].map(t => `${t.info.schema}.${t.info.name}`), channel }, 'sql: installing change triggers (installTriggers: true)')
      await installTriggers(source, [...tables.values()], channel)
    }
    return {
      source,
      tables,
      live,
      watch: listener => watchChanges(source, [...tables.values()], listener, channel),
      close: () => source.close(),
    }
  } catch (err) {
    await source.close().catch(() => {})
    throw err
  }
}
