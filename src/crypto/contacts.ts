import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { checkIdentityName, facetHome, keyIdOf, listIdentities, listNamedRecords, type PublicIdentity } from './identity.ts'
import { encapsulate, MLDSA65, MLKEM768 } from './pq.ts'

/** The format tag of an exported public identity (and of a contact file). */
export const PUBLIC_IDENTITY_FORMAT = 'facet-public-identity/1'

/** A public identity as `facet identity export` prints it and `facet identity import` reads it. */
export interface PublicIdentityJson {
  format: typeof PUBLIC_IDENTITY_FORMAT
  name: string
  /** SHA-256 over both public keys, hex: what a person compares to be sure of a key. */
  keyId: string
  /** ML-DSA-65 public key, base64. */
  signingPublicKey: string
  /** ML-KEM-768 public key, base64. */
  kemPublicKey: string
}

/** Thrown when a file is not a public identity FacetFS can use, or importing it would confuse two identities. */
export class ContactError extends Error {
  override readonly name = 'ContactError'
}

/** Encodes the public half of an identity as JSON others can import (no secret is in it). */
export function exportPublicIdentity(id: PublicIdentity): PublicIdentityJson {
  return {
    format: PUBLIC_IDENTITY_FORMAT,
    name: id.name,
    keyId: Buffer.from(id.keyId).toString('hex'),
    signingPublicKey: Buffer.from(id.signingPublicKey).toString('base64'),
    kemPublicKey: Buffer.from(id.kemPublicKey).toString('base64'),
  }
}

/**
 * Reads an exported public identity, checking everything that can be checked without its
 * owner: the format tag, the key lengths, that the ML-KEM key accepts an encapsulation,
 * and that the key id is the hash of both keys. `source` names the input in errors.
 */
export function parsePublicIdentity(text: string, source = 'input'): PublicIdentity {
  let j: Partial<PublicIdentityJson & { secret: unknown }>
  try {
    j = JSON.parse(text) as typeof j
  } catch (err) {
    throw new ContactError(`${source} is not JSON: ${(err as Error).message}`)
  }
  if (typeof j !== 'object' || j === null) throw new ContactError(`${source} is not a public identity`)
  if (j.format !== PUBLIC_IDENTITY_FORMAT) {
    if ((j as { format?: unknown }).format === 'facet-identity/1') throw new ContactError(`${source} is an identity file with its encrypted secret keys; import what 'facet identity export' prints instead`)
    throw new ContactError(`${source} is not a public identity (expected format '${PUBLIC_IDENTITY_FORMAT}')`)
  }
  if (typeof j.name !== 'string') throw new ContactError(`${source} has no name`)
  const b64 = (v: unknown, what: string, bytes: number): Buffer => {
    const b = typeof v === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(v) ? Buffer.from(v, 'base64') : undefined
    if (!b || b.length !== bytes) throw new ContactError(`${source}: the ${what} is not ${bytes} bytes of base64`)
    return b
  }
  const signingPublicKey = b64(j.signingPublicKey, 'ML-DSA-65 public key', MLDSA65.publicKey)
  const kemPublicKey = b64(j.kemPublicKey, 'ML-KEM-768 public key', MLKEM768.publicKey)
  try {
    encapsulate(kemPublicKey)
  } catch {
    throw new ContactError(`${source}: the ML-KEM-768 public key is not a valid key`)
  }
  const keyId = keyIdOf(signingPublicKey, kemPublicKey)
  if (typeof j.keyId !== 'string' || j.keyId.toLowerCase() !== keyId.toString('hex')) throw new ContactError(`${source}: the key id does not match the keys (damaged or altered)`)
  return { name: j.name, keyId, signingPublicKey, kemPublicKey }
}

/** The path of contact `name`'s file under `home`. */
export function contactPath(home: string, name: string): string {
  return join(home, 'contacts', `${checkIdentityName(name)}.json`)
}

/** What {@link importContact} did. */
export interface ImportResult {
  /** `added`: a new contact; `known`: this key was already known under `name` (nothing written). */
  status: 'added' | 'known'
  name: string
  /** Whether the known key is one of this home's own identities. */
  own?: boolean
  path?: string
}

/**
 * Adds a public identity to the contact book `<home>/contacts/<name>.json` (named `as`,
 * else by the name it carries). A key already known (a contact or an own identity) is not
 * added twice; a name already taken by another key is refused.
 */
export async function importContact(id: PublicIdentity, options: { home?: string; as?: string } = {}): Promise<ImportResult> {
  const home = options.home ?? facetHome()
  const name = checkIdentityName(options.as ?? id.name)
  const hex = Buffer.from(id.keyId).toString('hex')
  for (const own of await listIdentities(home)) {
    if (Buffer.from(own.keyId).toString('hex') === hex) return { status: 'known', name: own.name, own: true }
    if (own.name === name) throw new ContactError(`'${name}' is one of your own identities; import this one under another name with --as NAME`)
  }
  for (const c of await listContacts(home)) {
    if (Buffer.from(c.keyId).toString('hex') === hex) return { status: 'known', name: c.name, path: contactPath(home, c.name) }
    if (c.name === name) throw new ContactError(`a contact '${name}' with another key (${Buffer.from(c.keyId).toString('hex').slice(0, 16)}) exists; import this one under another name with --as NAME`)
  }
  const dir = join(home, 'contacts')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const path = contactPath(home, name)
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify({ ...exportPublicIdentity({ ...id, name }), imported: new Date().toISOString() }, null, 2) + '\n', { mode: 0o600 })
  try {
    await writeFile(path, '', { flag: 'wx', mode: 0o600 })
  } catch (err) {
    await rm(tmp, { force: true })
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ContactError(`a contact '${name}' was added meanwhile; try again`)
    throw err
  }
  await rename(tmp, path)
  return { status: 'added', name, path }
}

/** Reads contact `name`; `undefined` when there is none. */
export async function readContact(name: string, home: string = facetHome()): Promise<PublicIdentity | undefined> {
  const path = contactPath(home, name)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  const id = parsePublicIdentity(text, path)
  return { ...id, name }
}

/** Lists the contacts under `home`, by name (files that do not parse are skipped). */
export function listContacts(home: string = facetHome()): Promise<PublicIdentity[]> {
  return listNamedRecords(join(home, 'contacts'), name => readContact(name, home))
}

/** Names the owner of a key id as this home knows it: one of its own identities, a contact, or nobody. */
export async function whoIs(keyId: Uint8Array | string, home: string = facetHome()): Promise<{ name: string; own: boolean } | undefined> {
  const hex = typeof keyId === 'string' ? keyId : Buffer.from(keyId).toString('hex')
  for (const own of await listIdentities(home)) if (Buffer.from(own.keyId).toString('hex') === hex) return { name: own.name, own: true }
  for (const c of await listContacts(home)) if (Buffer.from(c.keyId).toString('hex') === hex) return { name: c.name, own: false }
  return undefined
}
