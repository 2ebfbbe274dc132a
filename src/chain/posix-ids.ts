import { hkdf, sha256 } from '../crypto/primitives.ts'
import { kemKeygen, MLKEM768 } from '../crypto/pq.ts'

const EVERYONE_ID = Buffer.from('facet-everyone/1')
const EVERYONE_SEED = 'facet-everyone-seed/1'

/** The first uid and gid FacetFS gives chain identities and groups; they run up to 2^31 − 1. */
export const CHAIN_ID_BASE = 0x4000_0000

/**
 * The POSIX number of a chain key id (a group's id for its gid, an identity's key id for its
 * uid): 2^30 plus the key id's first four bytes, big-endian, taken modulo 2^30, so it lies in
 * [2^30, 2^31) and stays the same on every machine and across the group's key rotations.
 */
export function posixIdOf(keyId: Uint8Array): number {
  return (CHAIN_ID_BASE | (Buffer.from(keyId.buffer, keyId.byteOffset, 4).readUInt32BE(0) & 0x3fff_ffff)) >>> 0
}

/** The key id of "everyone holding the chain" (what `chmod o+r` of a folder grants to): SHA-256 of a domain tag and the chain id. */
export function everyoneKeyId(chainId: Uint8Array): Buffer {
  return sha256(EVERYONE_ID, chainId)
}

/**
 * The ML-KEM-768 key pair of "everyone holding the chain": made from a seed derived from the
 * chain id alone, `HKDF-SHA256(chainId, salt = "facet-everyone-seed/1", info = "facet-everyone/1", 64 bytes)`.
 * The chain id is in clear in every block, so whoever holds the log has this secret key: a
 * grant to it is readable by anyone holding the log, with no identity at all.
 */
export function everyoneKeyPair(chainId: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  // made once per chain: every chmod that lets others read (tar x restores 0644 on each file) needs it,
  // and making it costs 0.4 ms
  const id = Buffer.from(chainId.buffer, chainId.byteOffset, chainId.byteLength).toString('hex')
  let pair = everyonePairs.get(id)
  if (!pair) {
    if (everyonePairs.size >= 64) everyonePairs.clear()
    pair = Object.freeze(kemKeygen(hkdf(chainId, EVERYONE_SEED, EVERYONE_ID, MLKEM768.seed)))
    everyonePairs.set(id, pair)
  }
  return pair
}

/** The key pairs {@link everyoneKeyPair} made, by chain id (shared: callers only read them). */
const everyonePairs = new Map<string, Readonly<{ publicKey: Uint8Array; secretKey: Uint8Array }>>()
