import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { CallerContext } from '../vfs/vfs.ts'

/** One issued token as `tokens.json` keeps it: never the token itself, only its SHA-256. */
export interface TokenRecord {
  /** A label to tell tokens apart, e.g. `'ci'`. */
  name: string
  /** Hex SHA-256 of the token. */
  sha256: string
  /** ISO 8601 time of issue. */
  createdAt: string
  /** The user id the router checks this token's calls as; absent in tokens issued before uids were kept (they act as the server's own user). */
  uid?: number
  /** The group id the router checks this token's calls as. */
  gid?: number
  /** Supplementary groups of the caller. */
  groups?: number[]
  /** The FacetFS identity the token speaks for, e.g. `'alice'`. */
  identity?: string
}

/** Who a valid token speaks for: what the router sees as the caller of its requests. */
export interface TokenIdentity {
  /** The token's label. */
  name: string
  /** The caller's uid; `undefined` means the server process's own. */
  uid?: number | undefined
  /** The caller's gid; `undefined` means the server process's own. */
  gid?: number | undefined
  /** Supplementary groups. */
  groups?: readonly number[] | undefined
  /** A FacetFS identity name. */
  identity?: string | undefined
}

/** Checks bearer tokens for the GraphQL server. */
export interface TokenVerifier {
  /** Resolves true when `token` is a valid bearer token. */
  verify(token: string): Promise<boolean>
  /** Resolves who a valid `token` speaks for; `undefined` when it is not (or no longer) valid. */
  identify(token: string): Promise<TokenIdentity | undefined>
  /** How many tokens are accepted; the server refuses to listen beyond loopback with none. */
  count(): Promise<number>
}

/** The FacetFS home folder: `FACET_HOME`, else `~/.facet`. */
export function facetHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.FACET_HOME || join(homedir(), '.facet')
}

/** The token file in `home`: `tokens.json`. */
export function tokenFile(home: string = facetHome()): string {
  return join(home, 'tokens.json')
}

/** Hex SHA-256 of a token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Reads the issued tokens of `home`; none when the file does not exist. */
export async function readTokens(home: string = facetHome()): Promise<TokenRecord[]> {
  let text: string
  try {
    text = await readFile(tokenFile(home), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const data = JSON.parse(text) as { tokens?: unknown }
  if (!Array.isArray(data.tokens)) throw new Error(`${tokenFile(home)}: expected { "tokens": [...] }`)
  return data.tokens.filter(isTokenRecord)
}

const isId = (v: unknown): boolean => v === undefined || (Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff_ffff)

/** A record is taken only whole: a token whose uid, gid or groups are malformed is not accepted, rather than acting as another user. */
function isTokenRecord(t: unknown): t is TokenRecord {
  const r = t as Partial<TokenRecord> | null
  return (
    typeof r === 'object' && r !== null && typeof r.name === 'string' && typeof r.sha256 === 'string' &&
    isId(r.uid) && isId(r.gid) && (r.identity === undefined || typeof r.identity === 'string') &&
    (r.groups === undefined || (Array.isArray(r.groups) && r.groups.every(g => isId(g) && g !== undefined)))
  )
}

/** The caller a token identity maps to, for the VFS; `undefined` when it names no user (the server process's own uid and gid apply). */
export function callerOf(who: TokenIdentity | undefined): CallerContext | undefined {
  if (!who || (who.uid === undefined && who.gid === undefined && who.identity === undefined)) return undefined
  const caller: { -readonly [K in keyof CallerContext]: CallerContext[K] } = {}
  if (who.uid !== undefined) caller.uid = who.uid
  if (who.gid !== undefined) caller.gid = who.gid
  if (who.groups !== undefined) caller.groups = who.groups
  if (who.identity !== undefined) caller.identity = who.identity
  return caller
}

async function writeTokens(home: string, tokens: TokenRecord[]): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 })
  const file = tokenFile(home)
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify({ tokens }, null, 2) + '\n', { mode: 0o600 })
  await chmod(tmp, 0o600)
  await rename(tmp, file)
}

/** Options for {@link createToken}. */
export interface CreateTokenOptions {
  /** A label for the token; must be unused. @default `token-<n>` */
  name?: string
  /** The FacetFS home folder. @default {@link facetHome} */
  home?: string
  /** The user id the token's calls are checked as. @default the creating process's uid */
  uid?: number
  /** The group id the token's calls are checked as. @default the creating process's gid */
  gid?: number
  /** Supplementary groups of the caller. @default none */
  groups?: readonly number[]
  /** The FacetFS identity the token speaks for. @default none */
  identity?: string
}

/**
 * Issues a bearer token: a random 256-bit secret whose SHA-256 is added to
 * `tokens.json` (mode 0600) in the FacetFS home, with the uid, gid and identity its
 * calls are checked as. Returns the token, which is stored nowhere and must be shown
 * to the user once.
 */
export async function createToken(options: CreateTokenOptions = {}): Promise<{ token: string; record: TokenRecord }> {
  const home = options.home ?? facetHome()
  const tokens = await readTokens(home)
  let name = options.name
  if (name === undefined) {
    let n = tokens.length + 1
    while (tokens.some(t => t.name === `token-${n}`)) n++
    name = `token-${n}`
  }
  if (!/^[\w.@-]{1,64}$/.test(name)) throw new Error(`bad token name '${name}': use 1-64 letters, digits, '.', '_', '@' or '-'`)
  if (tokens.some(t => t.name === name)) throw new Error(`a token named '${name}' exists already`)
  const uid = options.uid ?? process.getuid?.() ?? 0
  const gid = options.gid ?? process.getgid?.() ?? 0
  for (const [what, id] of [['uid', uid], ['gid', gid], ...(options.groups ?? []).map(g => ['group', g] as const)] as const) {
    if (!isId(id)) throw new Error(`bad ${what} ${id}: use a whole number from 0 to 4294967295`)
  }
  if (options.identity !== undefined && !/^[\w.@-]{1,64}$/.test(options.identity)) {
    throw new Error(`bad identity name '${options.identity}': use 1-64 letters, digits, '.', '_', '@' or '-'`)
  }
  const token = 'facet_' + randomBytes(32).toString('base64url')
  const record: TokenRecord = { name, sha256: hashToken(token), createdAt: new Date().toISOString(), uid, gid }
  if (options.groups?.length) record.groups = [...options.groups]
  if (options.identity !== undefined) record.identity = options.identity
  await writeTokens(home, [...tokens, record])
  return { token, record }
}

/** Revokes the token called `name`; resolves false when there is none. */
export async function revokeToken(name: string, home: string = facetHome()): Promise<boolean> {
  const tokens = await readTokens(home)
  const rest = tokens.filter(t => t.name !== name)
  if (rest.length === tokens.length) return false
  await writeTokens(home, rest)
  return true
}

/** The entry whose hash is the token's, comparing every hash in constant time. */
function findByHash<T extends { sha256: string }>(token: string, entries: readonly T[]): T | undefined {
  const h = Buffer.from(hashToken(token), 'hex')
  let found: T | undefined
  for (const e of entries) {
    const other = Buffer.from(e.sha256, 'hex')
    if (other.length === h.length && timingSafeEqual(h, other)) found ??= e
  }
  return found
}

function identityOf(r: TokenRecord): TokenIdentity {
  return { name: r.name, uid: r.uid, gid: r.gid, groups: r.groups, identity: r.identity }
}

/** A token given in clear to {@link staticTokens}, with the caller it speaks for. */
export interface StaticToken {
  token: string
  /** @default the server process's uid */
  uid?: number
  /** @default the server process's gid */
  gid?: number
  /** @default none */
  groups?: readonly number[]
  /** @default none */
  identity?: string
}

/** Accepts exactly the given tokens (kept only as hashes in memory); a bare string acts as the server process's own user. */
export function staticTokens(tokens: readonly (string | StaticToken)[]): TokenVerifier {
  const entries = tokens.map((t, i) => {
    const s = typeof t === 'string' ? { token: t } : t
    return { sha256: hashToken(s.token), who: { name: `static-${i + 1}`, uid: s.uid, gid: s.gid, groups: s.groups, identity: s.identity } }
  })
  return {
    verify: async token => findByHash(token, entries) !== undefined,
    identify: async token => findByHash(token, entries)?.who,
    count: async () => entries.length,
  }
}

/**
 * Accepts the tokens issued into `home` by `facet token create`, re-reading
 * `tokens.json` when it changes, so a token created or revoked while the server
 * runs takes effect at once. Each token speaks for the uid, gid and identity stored
 * with it; one stored without a uid acts as the server process's own user.
 */
export function fileTokens(home: string = facetHome()): TokenVerifier {
  let cached: { key: string; records: TokenRecord[] } | undefined
  const load = async (): Promise<TokenRecord[]> => {
    let key = 'none'
    try {
      const s = await stat(tokenFile(home))
      key = `${s.mtimeMs}:${s.size}:${s.ino}`
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    if (cached?.key !== key) cached = { key, records: await readTokens(home) }
    return cached.records
  }
  return {
    verify: async token => findByHash(token, await load()) !== undefined,
    identify: async token => {
      const r = findByHash(token, await load())
      return r && identityOf(r)
    },
    count: async () => (await load()).length,
  }
}
