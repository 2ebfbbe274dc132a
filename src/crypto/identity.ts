import { chmod, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { DecryptError, DEFAULT_SCRYPT, open, randomBytes, scrypt, seal, sha256, type ScryptParams } from './primitives.ts'
import { kemKeygen, MLKEM768, MLDSA65, signingKeygen } from './pq.ts'

/** The format tag written in every identity file. */
export const IDENTITY_FORMAT = 'facet-identity/1'

/** The public half of an identity: what others need to verify its signatures and grant it keys. */
export interface PublicIdentity {
  /** A local, human name such as `'alice'`; not part of the key id. */
  name: string
  /** SHA-256 over both public keys: the identity's stable id (32 bytes). */
  keyId: Uint8Array
  /** ML-DSA-65 public key (1952 bytes). */
  signingPublicKey: Uint8Array
  /** ML-KEM-768 public key (1184 bytes). */
  kemPublicKey: Uint8Array
}

/** An unlocked identity: its public keys plus both secret keys. */
export interface Identity extends PublicIdentity {
  /** ML-DSA-65 secret key. */
  signingSecretKey: Uint8Array
  /** ML-KEM-768 secret key. */
  kemSecretKey: Uint8Array
}

/** Thrown when an identity file cannot be unlocked with the passphrase given. */
export class WrongPassphraseError extends Error {
  override readonly name = 'WrongPassphraseError'
}

/** Thrown when an identity file does not exist or is not an identity. */
export class IdentityNotFoundError extends Error {
  override readonly name = 'IdentityNotFoundError'
}

interface IdentityFile {
  format: typeof IDENTITY_FORMAT
  name: string
  created: string
  keyId: string
  signingPublicKey: string
  kemPublicKey: string
  secret: { kdf: 'scrypt'; N: number; r: number; p: number; salt: string; cipher: 'aes-256-gcm'; data: string }
  /** Set when the identity was stored under an empty passphrase on purpose. */
  unprotected?: true
}

/** The FacetFS home folder: `FACET_HOME`, else `~/.facet`. */
export function facetHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.FACET_HOME || join(homedir(), '.facet')
}

/** Computes the key id of a pair of public keys: SHA-256 of a domain tag and both keys. */
export function keyIdOf(signingPublicKey: Uint8Array, kemPublicKey: Uint8Array): Buffer {
  return sha256(Buffer.from('facet-key-id/1'), signingPublicKey, kemPublicKey)
}

/** Formats a key id for people: its first 16 hex digits. */
export function shortKeyId(keyId: Uint8Array): string {
  return Buffer.from(keyId).toString('hex').slice(0, 16)
}

/** Rebuilds an identity from its 96 bytes of seeds (32 for ML-DSA-65, 64 for ML-KEM-768). */
export function identityFromSeeds(name: string, seeds: Uint8Array): Identity {
  const dsa = signingKeygen(seeds.subarray(0, MLDSA65.seed))
  const kem = kemKeygen(seeds.subarray(MLDSA65.seed, MLDSA65.seed + MLKEM768.seed))
  return {
    name,
    keyId: keyIdOf(dsa.publicKey, kem.publicKey),
    signingPublicKey: dsa.publicKey,
    signingSecretKey: dsa.secretKey,
    kemPublicKey: kem.publicKey,
    kemSecretKey: kem.secretKey,
  }
}

/** Makes a fresh identity in memory (nothing is written): a new ML-DSA-65 pair and ML-KEM-768 pair. */
export function generateIdentity(name: string): Identity & { seeds: Uint8Array } {
  checkIdentityName(name)
  const seeds = randomBytes(MLDSA65.seed + MLKEM768.seed)
  return { ...identityFromSeeds(name, seeds), seeds }
}

/** Throws unless `name` is a plain identity name: letters, digits, `.`, `_`, `-`, 1–64 characters. */
export function checkIdentityName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new Error(`invalid identity name '${name}': use 1-64 letters, digits, '.', '_' or '-'`)
  }
  return name
}

/** The path of identity `name`'s file under `home`. */
export function identityPath(home: string, name: string): string {
  return join(home, 'identities', `${checkIdentityName(name)}.json`)
}

/** Options for {@link createIdentity}. */
export interface CreateIdentityOptions {
  /** The FacetFS home. @default facetHome() */
  home?: string
  /** scrypt cost of the passphrase key. @default DEFAULT_SCRYPT */
  scrypt?: ScryptParams
  /** Store the identity under an empty passphrase, i.e. readable by anyone who can read its file (`--no-passphrase`). @default false */
  allowEmptyPassphrase?: boolean
}

/** Thrown when a new identity would be stored under an empty (or blank) passphrase without {@link CreateIdentityOptions.allowEmptyPassphrase}. */
export class EmptyPassphraseError extends Error {
  override readonly name = 'EmptyPassphraseError'
}

/**
 * Makes a new identity and stores it encrypted under `passphrase` (scrypt → AES-256-GCM)
 * in `<home>/identities/<name>.json`, mode 0600. Refuses to overwrite an existing one, and
 * refuses an empty or blank passphrase ({@link EmptyPassphraseError}) unless
 * `allowEmptyPassphrase` is set, when the file records that it is unprotected.
 */
export async function createIdentity(name: string, passphrase: string, options: CreateIdentityOptions = {}): Promise<Identity> {
  const home = options.home ?? facetHome()
  const unprotected = passphrase.trim() === ''
  if (unprotected && !options.allowEmptyPassphrase) {
    throw new EmptyPassphraseError(`refusing to store identity '${checkIdentityName(name)}' under an empty passphrase: anyone who can read its file could sign and read as it. Choose a passphrase (or pass --no-passphrase to store it unprotected on purpose)`)
  }
  const params = options.scrypt ?? DEFAULT_SCRYPT
  const id = generateIdentity(name)
  const salt = randomBytes(16)
  const key = await scrypt(passphrase, salt, params)
  const keyIdHex = Buffer.from(id.keyId).toString('hex')
  const data = seal(key, id.seeds, Buffer.from(`${IDENTITY_FORMAT}:${name}:${keyIdHex}`))
  const file: IdentityFile = {
    format: IDENTITY_FORMAT,
    name,
    created: new Date().toISOString(),
    keyId: keyIdHex,
    signingPublicKey: Buffer.from(id.signingPublicKey).toString('base64'),
    kemPublicKey: Buffer.from(id.kemPublicKey).toString('base64'),
    secret: { kdf: 'scrypt', ...params, salt: salt.toString('base64'), cipher: 'aes-256-gcm', data: data.toString('base64') },
    ...(unprotected ? { unprotected: true as const } : {}),
  }
  const dir = join(home, 'identities')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const path = identityPath(home, name)
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
  await chmod(tmp, 0o600)
  try {
    await writeFile(path, '', { flag: 'wx', mode: 0o600 })
  } catch (err) {
    await import('node:fs/promises').then(fs => fs.rm(tmp, { force: true }))
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`identity '${name}' already exists in ${dir}`)
    throw err
  }
  await rename(tmp, path)
  const { seeds: _seeds, ...identity } = id
  return identity
}

async function readIdentityFile(home: string, name: string): Promise<IdentityFile> {
  let text: string
  try {
    text = await readFile(identityPath(home, name), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new IdentityNotFoundError(`no identity '${name}' in ${join(home, 'identities')}`)
    throw err
  }
  const file = JSON.parse(text) as IdentityFile
  if (file.format !== IDENTITY_FORMAT) throw new IdentityNotFoundError(`${identityPath(home, name)} is not a FacetFS identity`)
  return file
}

function publicOf(file: IdentityFile): PublicIdentity {
  return {
    name: file.name,
    keyId: Buffer.from(file.keyId, 'hex'),
    signingPublicKey: Buffer.from(file.signingPublicKey, 'base64'),
    kemPublicKey: Buffer.from(file.kemPublicKey, 'base64'),
  }
}

/** Reads the public half of identity `name` (no passphrase needed). */
export async function readPublicIdentity(name: string, home: string = facetHome()): Promise<PublicIdentity> {
  return publicOf(await readIdentityFile(home, name))
}

/** Unlocks identity `name` with `passphrase`; {@link WrongPassphraseError} when it does not fit. */
export async function loadIdentity(name: string, passphrase: string, home: string = facetHome()): Promise<Identity> {
  const file = await readIdentityFile(home, name)
  const s = file.secret
  const key = await scrypt(passphrase, Buffer.from(s.salt, 'base64'), { N: s.N, r: s.r, p: s.p })
  let seeds: Buffer
  try {
    seeds = open(key, Buffer.from(s.data, 'base64'), Buffer.from(`${IDENTITY_FORMAT}:${file.name}:${file.keyId}`))
  } catch (err) {
    if (err instanceof DecryptError) throw new WrongPassphraseError(`wrong passphrase for identity '${name}'`)
    throw err
  }
  const id = identityFromSeeds(file.name, seeds)
  if (Buffer.from(id.keyId).toString('hex') !== file.keyId) throw new Error(`identity '${name}' is damaged: its keys do not match its key id`)
  return id
}

/**
 * Reads every `<name>.json` record in `folder` with `read(name)`, in name order; a
 * missing folder is an empty list and files that do not parse are skipped.
 */
export async function listNamedRecords<T>(folder: string, read: (name: string) => Promise<T | undefined>): Promise<T[]> {
  let names: string[]
  try {
    names = await readdir(folder)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const out: T[] = []
  for (const file of names.sort()) {
    if (!file.endsWith('.json')) continue
    try {
      const record = await read(file.slice(0, -5))
      if (record !== undefined) out.push(record)
    } catch {
      // not such a record: skip it
    }
  }
  return out
}

/** Lists the public identities stored under `home`, by name. */
export function listIdentities(home: string = facetHome()): Promise<PublicIdentity[]> {
  return listNamedRecords(join(home, 'identities'), name => readPublicIdentity(name, home))
}

/** Strips the secret keys from an identity. */
export function toPublic(id: PublicIdentity): PublicIdentity {
  return { name: id.name, keyId: id.keyId, signingPublicKey: id.signingPublicKey, kemPublicKey: id.kemPublicKey }
}
