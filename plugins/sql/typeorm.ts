import type { DataSource, EntityTarget, ObjectLiteral } from 'typeorm'
import type { PgSourceOptions } from './source.ts'
import type { TableSpec } from './table.ts'

/**
 * Describes each entity as a {@link TableSpec} from its TypeORM metadata: its table and
 * schema, its columns with their property paths as record field names, and its primary
 * key (composite keys too). The DataSource must be initialized (metadata is built then).
 */
export function entityTables(dataSource: DataSource, entities: ReadonlyArray<EntityTarget<ObjectLiteral>>): TableSpec[] {
  if (!dataSource.isInitialized) throw new Error('sql: initialize the TypeORM DataSource first (await dataSource.initialize())')
  const defaultSchema = (dataSource.options as { schema?: string }).schema ?? 'public'
  return entities.map(entity => {
    const meta = dataSource.getMetadata(entity)
    return {
      schema: meta.schema ?? defaultSchema,
      name: meta.tableName,
      fields: meta.columns.map(c => ({ column: c.databaseName, field: c.propertyPath })),
      key: meta.primaryColumns.map(c => c.databaseName),
    }
  })
}

/**
 * The `pg` connection settings of a TypeORM postgres DataSource, so FacetFS opens its
 * own pool (with its own type parsers) to the same database and leaves TypeORM's alone.
 */
export function dataSourceConnection(dataSource: DataSource): PgSourceOptions {
  const o = dataSource.options as {
    type: string
    url?: string
    host?: string
    port?: number
    username?: string
    password?: unknown
    database?: string
    ssl?: unknown
  }
  if (o.type !== 'postgres') throw new Error(`sql: a TypeORM DataSource of type postgres is needed, not ${o.type}`)
  if (o.url) return { url: o.url }
  return {
    pool: {
      host: o.host,
      port: o.port,
      user: o.username,
      password: o.password as string | undefined,
      database: o.database,
      ...(o.ssl ? { ssl: o.ssl as boolean } : {}),
    },
  }
}
