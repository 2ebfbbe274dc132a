import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'

/** One issued token as `tokens.json` keeps it: never the token itself, only its SHA-256. */
export interface TokenRecord {
  /** A label to tell tokens apart, e.g. `'ci'`. */
  name: string
  /** Hex SHA-256 of the token. */
  sha256: string
  /** ISO 8601 time of issue. */
  createdAt: string
}

/** Checks bearer tokens for the GraphQL server. */
export interface TokenVerifier {
  /** Resolves true when `token` is a valid bearer token. */
  verify(token: string): Promise<boolean>
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
  return data.tokens.filter(
    (t): t is TokenRecord => typeof t === 'object' && t !== null && typeof t.name === 'string' && typeof t.sha256 === 'string',
  )
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
}

/**
 * Issues a bearer token: a random 256-bit secret whose SHA-256 is added to
 * `tokens.json` (mode 0600) in the FacetFS home. Returns the token, which is
 * stored nowhere and must be shown to the user once.
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
  const token = 'facet_' + randomBytes(32).toString('base64url')
  const record: TokenRecord = { name, sha256: hashToken(token), createdAt: new Date().toISOString() }
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

function matchesAny(token: string, hashes: Iterable<string>): boolean {
  const h = Buffer.from(hashToken(token), 'hex')
  let ok = false
  for (const hex of hashes) {
    const other = Buffer.from(hex, 'hex')
    if (other.length === h.length && timingSafeEqual(h, other)) ok = true
  }
  return ok
}

/** Accepts exactly the given tokens (kept only as hashes in memory). */
export function staticTokens(tokens: readonly string[]): TokenVerifier {
  const hashes = tokens.map(hashToken)
  return {
    verify: async token => matchesAny(token, hashes),
    count: async () => hashes.length,
  }
}

/**
 * Accepts the tokens issued into `home` by `facet token create`, re-reading
 * `tokens.json` when it changes, so a token created or revoked while the server
 * runs takes effect at once.
 */
export function fileTokens(home: string = facetHome()): TokenVerifier {
  let cached: { key: string; hashes: string[] } | undefined
  const load = async (): Promise<string[]> => {
    let key = 'none'
    try {
      const s = await stat(tokenFile(home))
      key = `${s.mtimeMs}:${s.size}:${s.ino}`
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    if (cached?.key !== key) cached = { key, hashes: (await readTokens(home)).map(t => t.sha256) }
    return cached.hashes
  }
  return {
    verify: async token => matchesAny(token, await load()),
    count: async () => (await load()).length,
  }
}
