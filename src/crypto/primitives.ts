import { createCipheriv, createDecipheriv, createHash, createHmac, randomFillSync, scrypt as nodeScrypt, timingSafeEqual } from 'node:crypto'

/** Length in bytes of an AES-256-GCM key. */
export const KEY_BYTES = 32
/** Length in bytes of an AES-GCM nonce. */
export const IV_BYTES = 12
/** Length in bytes of an AES-GCM authentication tag. */
export const TAG_BYTES = 16
/** Bytes an {@link seal} adds to its plaintext: nonce plus tag. */
export const SEAL_OVERHEAD = IV_BYTES + TAG_BYTES

/** Thrown when authenticated decryption fails: wrong key, or forged or damaged data. */
export class DecryptError extends Error {
  override readonly name = 'DecryptError'
}

/**
 * Random bytes for keys and nonces come from a pool the CSPRNG refills 4 KiB at a time: a
 * call into it costs about 4 µs whatever its size up to a few hundred bytes, and a new file
 * takes three (its data key, and the nonces that seal its metadata and its content).
 */
const POOL_BYTES = 4096
/** Requests bigger than this go to the CSPRNG directly. */
const POOLED_MAX = 256
const pool = Buffer.allocUnsafe(POOL_BYTES)
let poolAt = POOL_BYTES

/** Writes `n` cryptographically random bytes into `out` at `offset`. Pooled bytes are handed out once and wiped from the pool. */
export function randomInto(out: Uint8Array, offset: number, n: number): void {
  if (n > POOLED_MAX) {
    randomFillSync(out, offset, n)
    return
  }
  if (poolAt + n > POOL_BYTES) {
    randomFillSync(pool)
    poolAt = 0
  }
  pool.copy(out, offset, poolAt, poolAt + n)
  pool.fill(0, poolAt, poolAt + n)
  poolAt += n
}

/** Returns `n` cryptographically random bytes. */
export function randomBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(n)
  randomInto(out, 0, n)
  return out
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/**
 * HKDF-SHA-256 (RFC 5869): derives `length` bytes (at most 8160) from input key material
 * `ikm` with `salt` and `info`. Written out with HMAC: node's `hkdfSync` builds key objects
 * on every call (24 µs per 32-byte key here, against 12 µs for these two HMACs), and a
 * chain derives keys for every new file.
 */
export function hkdf(ikm: Uint8Array, salt: Uint8Array | string, info: Uint8Array | string, length = KEY_BYTES): Buffer {
  if (length > 255 * 32) throw new RangeError('HKDF-SHA-256 derives at most 8160 bytes')
  const prk = createHmac('sha256', typeof salt === 'string' ? Buffer.from(salt) : salt).update(ikm).digest()
  const out = Buffer.allocUnsafe(length)
  let block: Buffer = Buffer.alloc(0)
  for (let i = 1, at = 0; at < length; i++) {
    block = createHmac('sha256', prk).update(block).update(info).update(Uint8Array.of(i)).digest()
    at += block.copy(out, at)
  }
  return out
}

/**
 * Encrypts `plaintext` with AES-256-GCM under `key`, binding `aad`.
 * Returns `nonce (12) ‖ ciphertext ‖ tag (16)`, with a fresh random nonce.
 */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(IV_BYTES + plaintext.length + TAG_BYTES)
  randomInto(out, 0, IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, out.subarray(0, IV_BYTES))
  if (aad) cipher.setAAD(aad)
  const n = cipher.update(plaintext).copy(out, IV_BYTES)
  cipher.final()
  cipher.getAuthTag().copy(out, IV_BYTES + n)
  return out
}

/**
 * Decrypts the output of {@link seal}; throws {@link DecryptError} when the key, the
 * `aad` or any byte of `sealed` is wrong. Nothing is returned from forged data.
 */
export function open(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Buffer {
  if (sealed.length < SEAL_OVERHEAD) throw new DecryptError('ciphertext too short')
  const iv = sealed.subarray(0, IV_BYTES)
  const tag = sealed.subarray(sealed.length - TAG_BYTES)
  const decipher = createDecipheriv('aes-256-gcm', key, iv)
  if (aad) decipher.setAAD(aad)
  decipher.setAuthTag(tag)
  const body = decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES))
  try {
    decipher.final()
  } catch {
    throw new DecryptError('authentication failed')
  }
  return body
}

/** scrypt parameters for passphrase keys. */
export interface ScryptParams {
  /** CPU/memory cost. @default 131072 (2^17) */
  N: number
  /** Block size. @default 8 */
  r: number
  /** Parallelism. @default 1 */
  p: number
}

/** The scrypt parameters new identities use. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 1 << 17, r: 8, p: 1 }

/** Derives a 32-byte key from a passphrase with scrypt, off the JS thread. */
export function scrypt(passphrase: string, salt: Uint8Array, params: ScryptParams = DEFAULT_SCRYPT): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    nodeScrypt(passphrase.normalize('NFC'), salt, KEY_BYTES, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + (1 << 20) }, (err, key) =>
      err ? reject(err) : resolve(key),
    )
  })
}

/** Compares two byte strings in constant time for equal lengths. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
