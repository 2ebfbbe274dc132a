import { decapsulate, encapsulate } from '../crypto/pq.ts'
import { hkdf, open, seal, sha256 } from '../crypto/primitives.ts'
import { u32Bytes, u64Bytes } from './format.ts'

const META = Buffer.from('facet-meta/1')
const CHUNK = Buffer.from('facet-chunk/1')
const GRANT = Buffer.from('facet-grant/1')
const LINK = Buffer.from('facet-link/2')
const XATTR = Buffer.from('facet-xattr/2')
const FILE_META = Buffer.from('facet-file-meta/2')
/** The domain tag a block digest starts with. */
export const BLOCK_DIGEST_TAG = Buffer.from('facet-block/1')

/** The digest a block's signature covers: SHA-256 of a domain tag and the unsigned encoding. */
export function blockDigest(unsigned: Uint8Array): Buffer {
  return sha256(BLOCK_DIGEST_TAG, unsigned)
}

/** A block's hash, which the next block names as `prevHash`: SHA-256 of its digest and signature. */
export function blockHash(digest: Uint8Array, signature: Uint8Array): Buffer {
  return sha256(digest, signature)
}

/** The key that encrypts the metadata of the children of the inode whose key is `inodeKey`. */
export function metaKeyOf(inodeKey: Uint8Array, chainId: Uint8Array): Buffer {
  return hkdf(inodeKey, chainId, META)
}

/** The key that encrypts the content chunks of the inode whose key is `inodeKey`. */
export function chunkKeyOf(inodeKey: Uint8Array, chainId: Uint8Array): Buffer {
  return hkdf(inodeKey, chainId, CHUNK)
}

/** AAD of an inode's metadata: chain id, inode, key parent and metadata version. */
export function metaAad(chainId: Uint8Array, ino: number, keyParent: number, version: number): Buffer {
  return Buffer.concat([META, chainId, u64Bytes(ino), u64Bytes(keyParent), u32Bytes(version)])
}

/** The key that encrypts a granted file's own copy of its metadata (event 14), for readers granted the file alone. */
export function fileMetaKeyOf(inodeKey: Uint8Array, chainId: Uint8Array): Buffer {
  return hkdf(inodeKey, chainId, FILE_META)
}

/** AAD of a granted file's own copy of its metadata: chain id, inode and metadata version. */
export function fileMetaAad(chainId: Uint8Array, ino: number, version: number): Buffer {
  return Buffer.concat([FILE_META, chainId, u64Bytes(ino), u32Bytes(version)])
}

/** AAD of an extra name (hard link): chain id, link id, the directory it lies in, and its version. */
export function linkAad(chainId: Uint8Array, link: number, dir: number, version: number): Buffer {
  return Buffer.concat([LINK, chainId, u64Bytes(link), u64Bytes(dir), u32Bytes(version)])
}

/** The key that encrypts the extended attributes of the inode whose key is `inodeKey`. */
export function xattrKeyOf(inodeKey: Uint8Array, chainId: Uint8Array): Buffer {
  return hkdf(inodeKey, chainId, XATTR)
}

/** AAD of an inode's extended attributes: chain id, inode and version. */
export function xattrAad(chainId: Uint8Array, ino: number, version: number): Buffer {
  return Buffer.concat([XATTR, chainId, u64Bytes(ino), u32Bytes(version)])
}

/** AAD of a content chunk: chain id, inode, chunk index and chunk version. */
export function chunkAad(chainId: Uint8Array, ino: number, index: number, version: number): Buffer {
  const b = Buffer.allocUnsafe(CHUNK.length + chainId.length + 20)
  CHUNK.copy(b, 0)
  b.set(chainId, CHUNK.length)
  let p = CHUNK.length + chainId.length
  b.writeUIntLE(ino, p, 6)
  b.writeUInt16LE(0, p + 6)
  b.writeUIntLE(index, p + 8, 6)
  b.writeUInt16LE(0, p + 14)
  b.writeUInt32LE(version >>> 0, p + 16)
  return b
}

/** Wraps inode key `key` for a reader's ML-KEM-768 public key: returns the KEM ciphertext and the AES-GCM-wrapped key. */
export function wrapForReader(key: Uint8Array, chainId: Uint8Array, ino: number, reader: Uint8Array, readerKemKey: Uint8Array): { kemCipherText: Uint8Array; wrappedKey: Buffer } {
  const { cipherText, sharedSecret } = encapsulate(readerKemKey)
  const kek = hkdf(sharedSecret, chainId, Buffer.concat([GRANT, u64Bytes(ino), reader]))
  return { kemCipherText: cipherText, wrappedKey: seal(kek, key, Buffer.concat([GRANT, chainId, u64Bytes(ino), reader])) }
}

/** Unwraps a key grant with the reader's ML-KEM-768 secret key; throws `DecryptError` when it is not for this key. */
export function unwrapForReader(grant: { kemCipherText: Uint8Array; wrappedKey: Uint8Array; ino: number; reader: Uint8Array }, chainId: Uint8Array, kemSecretKey: Uint8Array): Buffer {
  const ss = decapsulate(grant.kemCipherText, kemSecretKey)
  const kek = hkdf(ss, chainId, Buffer.concat([GRANT, u64Bytes(grant.ino), grant.reader]))
  return open(kek, grant.wrappedKey, Buffer.concat([GRANT, chainId, u64Bytes(grant.ino), grant.reader]))
}
