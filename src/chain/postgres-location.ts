import pg from 'pg'
import type { PostgresBackendOptions } from './postgres.ts'

const POSTGRES_URL = /^postgres(?:ql)?:\/\//i

/** True when `location` is a PostgreSQL URL (`postgres://…` or `postgresql://…`) rather than a path. */
export function isPostgresLocation(location: string): boolean {
  return POSTGRES_URL.test(location)
}

/**
 * Reads a PostgreSQL chain location as `facet trust accept` and `facet verify` take it: a
 * connection URL, with the blocks table in a `table` parameter (the backend's default when
 * absent) and, for a table holding several chains, the chain id in `chain`. Both are taken
 * off the URL before it connects. The location {@link postgresTrustKey} gives reads back to
 * the same store. Throws when the URL does not parse or `chain` is not 32 hex digits.
 */
export function postgresLocation(location: string): PostgresBackendOptions {
  let url: URL
  try {
    url = new URL(location)
  } catch {
    throw new Error('invalid PostgreSQL URL (expected postgres://[USER[:PASSWORD]@]HOST[:PORT]/DB[?table=TABLE])')
  }
  const table = url.searchParams.get('table') ?? undefined
  const chainId = url.searchParams.get('chain') ?? undefined
  if (chainId !== undefined && !/^[0-9a-f]{32}$/i.test(chainId)) throw new Error(`invalid chain id '${chainId}' (expected 32 hex digits)`)
  url.searchParams.delete('table')
  url.searchParams.delete('chain')
  return { url: url.href, ...(table !== undefined ? { table } : {}), ...(chainId !== undefined ? { chainId: chainId.toLowerCase() } : {}) }
}

/**
 * The location the trust store pins a PostgreSQL chain under: the server, database and
 * user it connects to (as node-postgres resolves them, defaults and `PG*` variables
 * included; never the password), the `search_path` of its connection options when the
 * table is not schema-qualified, and the table; the chain id only when the backend was told
 * one (a table holding several chains). A chain learnt from the table is not part of it, so
 * another chain put in the same table is held against the pin. The result is a connection
 * URL {@link postgresLocation} reads, e.g.
 * `postgres://me@db.example:5432/facet?options=-c%20search_path%3Dteam&table=facet_chain_blocks`.
 */
export function postgresTrustKey(connection: Pick<PostgresBackendOptions, 'url' | 'pool'>, table: string, chainId?: string): string {
  const client = new pg.Client(connection.url !== undefined ? { connectionString: connection.url } : connection.pool!.options)
  const options = (client as unknown as { connectionParameters: { options?: string } }).connectionParameters.options
  const host = client.host || 'localhost'
  const at = host.startsWith('/') ? encodeURIComponent(host) : host.includes(':') ? `[${host.toLowerCase()}]` : host.toLowerCase()
  const user = client.user ? `${encodeURIComponent(client.user)}@` : ''
  const query: string[] = []
  const path = table.includes('.') ? undefined : searchPath(options)
  if (path !== undefined) query.push(`options=${encodeURIComponent(`-c search_path=${path}`)}`)
  query.push(`table=${encodeURIComponent(table)}`)
  if (chainId !== undefined) query.push(`chain=${chainId.toLowerCase()}`)
  return `postgres://${user}${at}:${client.port}/${encodeURIComponent(client.database ?? '')}?${query.join('&')}`
}

/** The last `search_path` a libpq options string sets (`-c search_path=a,b`, `-csearch_path=…`, `--search-path=…`), unquoted names folded to lower case as PostgreSQL does; undefined when none. */
function searchPath(options: string | undefined): string | undefined {
  if (!options) return undefined
  // libpq splits options at unescaped white space; a backslash escapes the next character
  const words = (options.match(/(?:\\.|[^\s\\])+/g) ?? []).map(w => w.replace(/\\(.)/g, '$1'))
  let found: string | undefined
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!
    const setting = w === '-c' ? words[++i] : w.startsWith('--') ? w.slice(2) : w.startsWith('-c') ? w.slice(2) : undefined
    const eq = setting?.indexOf('=') ?? -1
    if (setting === undefined || eq < 0) continue
    if (setting.slice(0, eq).trim().toLowerCase().replace(/-/g, '_') !== 'search_path') continue
    found = setting
      .slice(eq + 1)
      .split(',')
      .map(s => s.trim())
      .map(s => (s.startsWith('"') ? s : s.toLowerCase()))
      .join(',')
  }
  return found
}
