// ML-DSA-65 (FIPS 204) and ML-KEM-768 (FIPS 203) for src/crypto/pq.ts and the worker threads
// of src/crypto/pq-worker.mjs. Plain JavaScript for the same reason as the worker: it loads the
// same way under node, tsx and vitest.
//
// Where the running Node has them in node:crypto (Node 24.7 and later, on OpenSSL 3.5) the
// signatures and encapsulations run there; elsewhere (Node 22) @noble/post-quantum does them.
// On these machines OpenSSL signs in 0.8 ms against noble's 6.3, verifies in 0.18 against
// 1.2, encapsulates in 0.03 against 0.52 and decapsulates in 0.03 against 0.38. Both read the
// same FIPS key encodings and make and accept the same signatures (pure ML-DSA, empty context)
// and ciphertexts (with the same implicit rejection), so a chain written under one reads under
// the other. Keys are still made by noble, from seeds (a key's bytes are what FacetFS stores).
// FACETFS_PQ=noble picks noble where both exist (to test the fallback).
// a namespace import: Node 22's node:crypto has no encapsulate or decapsulate, and a named import of them would not load
import * as nodeCrypto from 'node:crypto'
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'

const SIGNATURE_BYTES = 3309
const PUBLIC_KEY_BYTES = 1952
const SECRET_KEY_BYTES = 4032
/** How many keys of each kind stay imported (a process signs with one or two identities and checks or wraps for a few more). */
const KEYS_KEPT = 32

function hasOpenSsl(type) {
  if (process.env.FACETFS_PQ === 'noble') return false
  try {
    nodeCrypto.generateKeyPairSync(type)
    return true
  } catch {
    return false
  }
}

/** Where ML-DSA-65 runs: `'openssl'` (node:crypto) or `'noble'`. */
export const mlDsaImplementation = hasOpenSsl('ml-dsa-65') ? 'openssl' : 'noble'
/** Where ML-KEM-768 runs: `'openssl'` (node:crypto) or `'noble'`. */
export const mlKemImplementation = typeof nodeCrypto.encapsulate === 'function' && hasOpenSsl('ml-kem-768') ? 'openssl' : 'noble'

// DER: the algorithm identifiers id-ml-dsa-65 (2.16.840.1.101.3.4.3.18) and id-alg-ml-kem-768
// (2.16.840.1.101.3.4.4.2), and the wrappers that make a SubjectPublicKeyInfo of a raw public
// key and a PKCS #8 `expandedKey` of a raw secret key (the LAMPS drafts for both), the two forms
// OpenSSL imports raw keys from
const ML_DSA_65 = Buffer.from('300b0609608648016503040312', 'hex')
const ML_KEM_768 = Buffer.from('300b0609608648016503040402', 'hex')

function der(tag, body) {
  const n = body.length
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
  return Buffer.concat([Buffer.from([tag, ...length]), body])
}

/** Imports raw keys through `make`, keeping the last KEYS_KEPT (by their bytes). */
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

const publicKeyFor = algorithm => keptKeys(pk => nodeCrypto.createPublicKey({ key: der(0x30, Buffer.concat([algorithm, der(0x03, Buffer.concat([Buffer.from([0]), pk]))])), format: 'der', type: 'spki' }))
const privateKeyFor = algorithm => keptKeys(sk => nodeCrypto.createPrivateKey({ key: der(0x30, Buffer.concat([Buffer.from('020100', 'hex'), algorithm, der(0x04, der(0x04, sk))])), format: 'der', type: 'pkcs8' }))
const dsaPrivate = privateKeyFor(ML_DSA_65)
const dsaPublic = publicKeyFor(ML_DSA_65)
const kemPrivate = privateKeyFor(ML_KEM_768)
const kemPublic = publicKeyFor(ML_KEM_768)

const view = b => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/** Signs `message` with an ML-DSA-65 secret key (its 4,032-byte FIPS 204 encoding). */
export function mlDsaSign(message, secretKey) {
  if (mlDsaImplementation === 'noble') return ml_dsa65.sign(message, secretKey)
  if (secretKey.length !== SECRET_KEY_BYTES) throw new RangeError(`an ML-DSA-65 secret key has ${SECRET_KEY_BYTES} bytes, not ${secretKey.length}`)
  return view(nodeCrypto.sign(null, message, dsaPrivate(secretKey)))
}

/** Checks an ML-DSA-65 signature; false for any malformed input. */
export function mlDsaVerify(signature, message, publicKey) {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false
  try {
    if (mlDsaImplementation === 'noble') return ml_dsa65.verify(signature, message, publicKey)
    return nodeCrypto.verify(null, message, dsaPublic(publicKey), signature)
  } catch {
    return false
  }
}

/** Encapsulates a fresh 32-byte shared secret to an ML-KEM-768 public key; a key OpenSSL refuses gets noble's answer (and its error). */
export function mlKemEncapsulate(publicKey) {
  if (mlKemImplementation === 'openssl') {
    let key
    try {
      key = kemPublic(publicKey)
    } catch {
      return ml_kem768.encapsulate(publicKey)
    }
    const { ciphertext, sharedKey } = nodeCrypto.encapsulate(key)
    return { cipherText: view(ciphertext), sharedSecret: view(sharedKey) }
  }
  return ml_kem768.encapsulate(publicKey)
}

/** Recovers the shared secret of an ML-KEM-768 ciphertext; a wrong key or damaged ciphertext yields another (implicitly rejected) secret. */
export function mlKemDecapsulate(cipherText, secretKey) {
  if (mlKemImplementation === 'openssl') {
    let key
    try {
      key = kemPrivate(secretKey)
    } catch {
      return ml_kem768.decapsulate(cipherText, secretKey)
    }
    try {
      return view(nodeCrypto.decapsulate(key, cipherText))
    } catch {
      // a ciphertext of the wrong length: noble's answer (an error)
      return ml_kem768.decapsulate(cipherText, secretKey)
    }
  }
  return ml_kem768.decapsulate(cipherText, secretKey)
}
