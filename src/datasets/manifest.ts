import { sha256 } from '../crypto/primitives.ts'
import { sign, verify } from '../crypto/pq.ts'
import { keyIdOf, type Identity } from '../crypto/identity.ts'

/** The format string of a version manifest. */
export const MANIFEST_FORMAT = 'facet-dataset/1'

/** One entry of a version: a file (with its chunks), a folder or a symlink. */
export interface ManifestEntry {
  /** Path relative to the dataset root, `/`-separated, no leading slash. */
  path: string
  kind: 'file' | 'dir' | 'symlink'
  /** Permission bits. */
  mode: number
  /** Bytes of content (of the target, for a symlink). */
  size: number
  mtimeMs: number
  /** Chunk ids (hex) and lengths, in order; files only. */
  chunks?: [id: string, length: number][]
  /** SHA-256 of the content (hex); files only. */
  sha256?: string
  /** Symlink target. */
  target?: string
}

/** What a version holds: the tree, and a digest over it. Immutable once written; its id is its hash. */
export interface Manifest {
  format: typeof MANIFEST_FORMAT
  dataset: string
  /** ISO time of the push. */
  created: string
  /** Entries sorted by path. */
  entries: ManifestEntry[]
  /** SHA-256 over every entry's path, kind, mode, size, content digest and target (hex). */
  digest: string
}

/** A manifest as stored: its exact bytes, signed by the pushing identity (ML-DSA-65). */
export interface SignedManifest {
  /** The manifest JSON, exactly as hashed and signed. */
  manifest: string
  /** Key id (hex) and public key (base64) of the signer. */
  signer: { name: string; keyId: string; signingPublicKey: string }
  /** ML-DSA-65 signature of the version id, base64. */
  signature: string
}

/** Thrown when a stored manifest's signature, id or digest is wrong. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError'
}

/** The digest over the entries a manifest carries in `digest`. */
export function treeDigest(entries: readonly ManifestEntry[]): string {
  const lines = entries.map(e => [e.path, e.kind, e.mode.toString(8), e.size, e.sha256 ?? '', e.target ?? ''].join('\0'))
  return sha256(Buffer.from('facet-dataset-tree/1\n' + lines.join('\n'))).toString('hex')
}

/** The version id of manifest bytes: SHA-256 (hex). */
export function versionIdOf(manifestJson: string): string {
  return sha256(Buffer.from('facet-dataset-version/1\0'), Buffer.from(manifestJson)).toString('hex')
}

/** Serialises and signs a manifest; returns its id and the record to store. */
export function signManifest(m: Manifest, identity: Identity): { id: string; record: SignedManifest } {
  const manifest = JSON.stringify(m)
  const id = versionIdOf(manifest)
  const signature = sign(Buffer.from(id, 'hex'), identity.signingSecretKey)
  return {
    id,
    record: {
      manifest,
      signer: {
        name: identity.name,
        keyId: keyIdOf(identity.signingPublicKey, identity.kemPublicKey).toString('hex'),
        signingPublicKey: Buffer.from(identity.signingPublicKey).toString('base64'),
      },
      signature: Buffer.from(signature).toString('base64'),
    },
  }
}

/**
 * Checks a stored manifest: its bytes hash to `id`, the signature verifies, and the
 * digest matches its entries. `trusted` (signing public keys, base64) limits who may sign;
 * when absent any valid signature is accepted (the chain's own signatures say who wrote it).
 */
export function openManifest(id: string, record: SignedManifest, trusted?: ReadonlySet<string>): Manifest {
  if (versionIdOf(record.manifest) !== id) throw new ManifestError(`version ${id.slice(0, 12)}: manifest does not hash to its id`)
  if (trusted && !trusted.has(record.signer.signingPublicKey)) throw new ManifestError(`version ${id.slice(0, 12)}: signed by an untrusted key (${record.signer.name})`)
  if (!verify(Buffer.from(record.signature, 'base64'), Buffer.from(id, 'hex'), Buffer.from(record.signer.signingPublicKey, 'base64')))
    throw new ManifestError(`version ${id.slice(0, 12)}: bad signature`)
  const m = JSON.parse(record.manifest) as Manifest
  if (m.format !== MANIFEST_FORMAT) throw new ManifestError(`version ${id.slice(0, 12)}: unknown format ${String(m.format)}`)
  if (treeDigest(m.entries) !== m.digest) throw new ManifestError(`version ${id.slice(0, 12)}: digest does not match its entries`)
  return m
}
