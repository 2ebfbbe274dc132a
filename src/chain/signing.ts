import type { Identity } from '../crypto/identity.ts'
import { MLDSA65, sign } from '../crypto/pq.ts'
import type { PqPool } from '../crypto/pq-pool.ts'
import { appendSignature, encodeUnsigned, type UnsignedBlock } from './format.ts'
import { BLOCK_DIGEST_TAG, blockDigest, blockHash } from './keys.ts'

/** A signed block body, its hash, and (when the worker computed it) the CRC-32 of its frame. */
export interface SignedBody {
  body: Buffer
  hash: Buffer
  crc?: number
}

/** Encodes, signs and hashes a block with `identity`'s ML-DSA-65 key. */
export function signBlock(block: UnsignedBlock, identity: Identity, sizeHint = 4096): { body: Buffer; hash: Buffer } {
  const unsigned = encodeUnsigned(block, sizeHint)
  const digest = blockDigest(unsigned.buf.subarray(0, unsigned.length))
  const signature = sign(digest, identity.signingSecretKey)
  const body = appendSignature(unsigned, signature)
  return { body, hash: blockHash(digest, signature) }
}

/** Encodes a block (into `into` when it is big enough), signs its digest with `identity`'s ML-DSA-65 key on a `pool` thread, and hashes it. */
export async function signBlockWith(pool: PqPool, block: UnsignedBlock, identity: Identity, sizeHint = 4096, into?: Buffer): Promise<SignedBody> {
  const unsigned = encodeUnsigned(block, sizeHint, into)
  if (unsigned.buf.buffer instanceof SharedArrayBuffer && unsigned.buf.length >= unsigned.length + 2 + MLDSA65.signature) {
    // a big block: hashed, signed and checksummed in place by the worker
    const { digest, signature, crc } = await pool.signSharedBody(unsigned.buf, unsigned.length, BLOCK_DIGEST_TAG, identity.signingSecretKey)
    return { body: unsigned.buf.subarray(0, unsigned.length + 2 + signature.length), hash: blockHash(digest, signature), crc }
  }
  const digest = blockDigest(unsigned.buf.subarray(0, unsigned.length))
  const signature = await pool.sign(digest, identity.signingSecretKey)
  return { body: appendSignature(unsigned, signature), hash: blockHash(digest, signature) }
}
