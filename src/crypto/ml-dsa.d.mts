/** The ML-DSA-65 implementation in use: OpenSSL's through node:crypto where the running Node has it, else @noble/post-quantum. */
export declare const mlDsaImplementation: 'openssl' | 'noble'
/** Signs `message` with an ML-DSA-65 secret key (its 4,032-byte FIPS 204 encoding). */
export declare function mlDsaSign(message: Uint8Array, secretKey: Uint8Array): Uint8Array
/** Checks an ML-DSA-65 signature; false for any malformed input. */
export declare function mlDsaVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean
