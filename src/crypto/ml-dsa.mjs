// ML-DSA-65 (FIPS 204) signing and verification for src/crypto/pq.ts and the worker threads of
// src/crypto/pq-worker.mjs. Plain JavaScript for the same reason as the worker: it loads the
// same way under node, tsx and vitest.
//
// Where the running Node has ML-DSA in node:crypto (Node 24.7 and later, on OpenSSL 3.5) it
// signs and verifies there, about 8 times faster than @noble/post-quantum (0.8 ms against 6 ms
// a signature, 0.2 ms against 1.2 ms a verification, on these machines). Elsewhere (Node 22) it
// uses noble. Both read the same FIPS 204 key encodings and make and accept the same
// signatures (pure ML-DSA, empty context), so a chain signed under one verifies under the
// other. FACETFS_ML_DSA=noble picks noble where both exist (to test the fallback).
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as osslSign, verify as osslVerify } from 'node:crypto'
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js'

const SIGNATURE_BYTES = 3309
const PUBLIC_KEY_BYTES = 1952
const SECRET_KEY_BYTES = 4032
/** How many keys of each kind stay imported (a process signs with one or two identities and checks a few writers). */
const KEYS_KEPT = 32

/** The implementation in use: `'openssl'` (node:crypto) or `'noble'`. */
export const mlDsaImplementation = process.env.FACETFS_ML_DSA !== 'noble' && hasOpenSslMlDsa() ? 'openssl' : 'noble'

function hasOpenSslMlDsa() {
  try {
    generateKeyPairSync('ml-dsa-65')
    return true
  } catch {
    return false
  }
}

// DER: the algorithm identifier id-ml-dsa-65 (2.16.840.1.101.3.4.3.18), and the wrappers that
// make a SubjectPublicKeyInfo of a public key and a PKCS #8 `expandedKey` of a secret key
// (draft-ietf-lamps-dilithium-certificates), the two forms OpenSSL imports raw keys from
const ALGORITHM = Buffer.from('300b0609608648016503040312', 'hex')

function der(tag, body) {
  const n = body.length
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
  return Buffer.concat([Buffer.from([tag, ...length]), body])
}

/** A map of at most KEYS_KEPT entries that forgets the oldest. */
function keptKeys(make) {
  const kept = new Map()
  return bytes => {
    const id = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
    let key = kept.get(id)
    if (key === undefined) {
      key = make(Buffer.from(bytes))
      if (kept.size >= KEYS_KEPT) kept.delete(kept.keys().next().value)
      kept.set(id, key)
    }
    return key
  }
}

const privateKeyOf = keptKeys(sk =>
  createPrivateKey({ key: der(0x30, Buffer.concat([Buffer.from('020100', 'hex'), ALGORITHM, der(0x04, der(0x04, sk))])), format: 'der', type: 'pkcs8' }),
)
const publicKeyOf = keptKeys(pk =>
  createPublicKey({ key: der(0x30, Buffer.concat([ALGORITHM, der(0x03, Buffer.concat([Buffer.from([0]), pk]))])), format: 'der', type: 'spki' }),
)

/** Signs `message` with an ML-DSA-65 secret key (its 4,032-byte FIPS 204 encoding). */
export function mlDsaSign(message, secretKey) {
  if (mlDsaImplementation === 'noble') return ml_dsa65.sign(message, secretKey)
  if (secretKey.length !== SECRET_KEY_BYTES) throw new RangeError(`an ML-DSA-65 secret key has ${SECRET_KEY_BYTES} bytes, not ${secretKey.length}`)
  const signature = osslSign(null, message, privateKeyOf(secretKey))
  return new Uint8Array(signature.buffer, signature.byteOffset, signature.byteLength)
}

/** Checks an ML-DSA-65 signature; false for any malformed input. */
export function mlDsaVerify(signature, message, publicKey) {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false
  try {
    if (mlDsaImplementation === 'noble') return ml_dsa65.verify(signature, message, publicKey)
    return osslVerify(null, message, publicKeyOf(publicKey), signature)
  } catch {
    return false
  }
}
