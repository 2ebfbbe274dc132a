import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js'
import { mlDsaSign, mlDsaVerify, mlKemDecapsulate, mlKemEncapsulate } from './post-quantum.mjs'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'

/** Byte lengths of ML-DSA-65 keys and signatures. */
export const MLDSA65 = { publicKey: 1952, secretKey: 4032, signature: 3309, seed: 32 } as const
/** Byte lengths of ML-KEM-768 keys and ciphertexts. */
export const MLKEM768 = { publicKey: 1184, secretKey: 2400, cipherText: 1088, seed: 64, sharedSecret: 32 } as const

/** A key pair as raw bytes. */
export interface KeyPair {
  publicKey: Uint8Array
  secretKey: Uint8Array
}

/** Makes an ML-DSA-65 signing key pair, deterministically from a 32-byte `seed` when given. */
export function signingKeygen(seed?: Uint8Array): KeyPair {
  return ml_dsa65.keygen(seed)
}

/** Signs `message` with an ML-DSA-65 secret key (about a millisecond with OpenSSL, a few with noble: sign digests, not data). */
export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return mlDsaSign(message, secretKey)
}

/** Checks an ML-DSA-65 signature; false for any malformed input. */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  return mlDsaVerify(signature, message, publicKey)
}

/** Makes an ML-KEM-768 key pair, deterministically from a 64-byte `seed` when given. */
export function kemKeygen(seed?: Uint8Array): KeyPair {
  return ml_kem768.keygen(seed)
}

/** Encapsulates a fresh 32-byte shared secret to an ML-KEM-768 public key. */
export function encapsulate(publicKey: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array } {
  return mlKemEncapsulate(publicKey)
}

/**
 * Recovers the shared secret of `cipherText` with an ML-KEM-768 secret key. A wrong key or
 * a damaged ciphertext yields a different (implicitly rejected) secret, never an error.
 */
export function decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return mlKemDecapsulate(cipherText, secretKey)
}
