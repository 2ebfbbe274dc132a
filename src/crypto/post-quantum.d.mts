/** Where ML-DSA-65 runs: OpenSSL's through node:crypto where the running Node has it, else @noble/post-quantum. */
export declare const mlDsaImplementation: 'openssl' | 'noble'
/** Where ML-KEM-768 runs: OpenSSL's through node:crypto where the running Node has it, else @noble/post-quantum. */
export declare const mlKemImplementation: 'openssl' | 'noble'
/** Signs `message` with an ML-DSA-65 secret key (its 4,032-byte FIPS 204 encoding). */
export declare function mlDsaSign(message: Uint8Array, secretKey: Uint8Array): Uint8Array
/** Checks an ML-DSA-65 signature; false for any malformed input. */
export declare function mlDsaVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean
/** Encapsulates a fresh 32-byte shared secret to an ML-KEM-768 public key. */
export declare function mlKemEncapsulate(publicKey: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array }
/** Recovers the shared secret of an ML-KEM-768 ciphertext (implicitly rejected: another secret for a wrong key or damaged ciphertext). */
export declare function mlKemDecapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array
