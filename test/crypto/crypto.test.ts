import { hkdfSync, randomBytes } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js'
import { mlDsaImplementation, mlKemImplementation } from '../../src/crypto/post-quantum.mjs'
import {
  ContactError,
  createIdentity,
  decapsulate,
  EmptyPassphraseError,
  exportPublicIdentity,
  importContact,
  listContacts,
  parsePublicIdentity,
  toPublic,
  whoIs,
  DecryptError,
  encapsulate,
  generateIdentity,
  hkdf,
  kemKeygen,
  listIdentities,
  loadIdentity,
  open,
  PassphraseRequiredError,
  randomBytes as pooledRandomBytes,
  randomInto,
  readPublicIdentity,
  resolvePassphrase,
  seal,
  sign,
  signingKeygen,
  verify,
  WrongPassphraseError,
} from '../../src/crypto/index.ts'

const FAST = { N: 1 << 12, r: 8, p: 1 }

describe('post-quantum primitives', () => {
  it('signs with ML-DSA-65 and rejects a changed message or signature', () => {
    const k = signingKeygen()
    const msg = Buffer.from('block digest')
    const sig = sign(msg, k.secretKey)
    expect(sig.length).toBe(3309)
    expect(verify(sig, msg, k.publicKey)).toBe(true)
    expect(verify(sig, Buffer.from('block digesT'), k.publicKey)).toBe(false)
    const bad = Buffer.from(sig)
    bad[100]! ^= 1
    expect(verify(bad, msg, k.publicKey)).toBe(false)
    expect(verify(sig.subarray(1), msg, k.publicKey)).toBe(false)
  })

  it('signs on OpenSSL where Node has ML-DSA, and its signatures and noble\'s verify under the other', () => {
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number]
    expect(mlDsaImplementation).toBe(major > 24 || (major === 24 && minor >= 7) ? 'openssl' : 'noble')
    expect(mlKemImplementation).toBe(mlDsaImplementation)
    const k = signingKeygen(new Uint8Array(32).fill(7))
    const msg = randomBytes(32)
    const ours = sign(msg, k.secretKey)
    expect(ml_dsa65.verify(ours, msg, k.publicKey)).toBe(true)
    const nobles = ml_dsa65.sign(msg, k.secretKey)
    expect(verify(nobles, msg, k.publicKey)).toBe(true)
    // a second key of the same process is not confused with the first one's imported key
    const other = signingKeygen(new Uint8Array(32).fill(8))
    expect(verify(sign(msg, other.secretKey), msg, k.publicKey)).toBe(false)
    expect(verify(sign(msg, other.secretKey), msg, other.publicKey)).toBe(true)
    expect(() => sign(msg, k.secretKey.subarray(1))).toThrow()
  })

  it('encapsulates on OpenSSL to what noble decapsulates and back, with the same implicit rejection', () => {
    const k = kemKeygen(new Uint8Array(64).fill(5))
    const ours = encapsulate(k.publicKey)
    expect(ours.cipherText.length).toBe(1088)
    expect(Buffer.from(ml_kem768.decapsulate(ours.cipherText, k.secretKey)).equals(Buffer.from(ours.sharedSecret))).toBe(true)
    const nobles = ml_kem768.encapsulate(k.publicKey)
    expect(Buffer.from(decapsulate(nobles.cipherText, k.secretKey)).equals(Buffer.from(nobles.sharedSecret))).toBe(true)
    const damaged = Buffer.from(nobles.cipherText)
    damaged[7]! ^= 1
    const rejected = Buffer.from(decapsulate(damaged, k.secretKey))
    expect(rejected.equals(Buffer.from(nobles.sharedSecret))).toBe(false)
    expect(rejected.equals(Buffer.from(ml_kem768.decapsulate(damaged, k.secretKey)))).toBe(true)
    // another key pair's secret key gets another secret, not this one
    const other = kemKeygen(new Uint8Array(64).fill(6))
    expect(Buffer.from(decapsulate(ours.cipherText, other.secretKey)).equals(Buffer.from(ours.sharedSecret))).toBe(false)
    expect(() => encapsulate(k.publicKey.subarray(1))).toThrow()
  })

  it('falls back to noble when asked (FACETFS_PQ=noble): a signature and a ciphertext made there open here', async () => {
    const k = signingKeygen(new Uint8Array(32).fill(9))
    const kem = kemKeygen(new Uint8Array(64).fill(10))
    const script = `import { mlDsaImplementation, mlKemImplementation, mlDsaSign, mlKemEncapsulate } from ${JSON.stringify(new URL('../../src/crypto/post-quantum.mjs', import.meta.url).href)}
const sig = mlDsaSign(Buffer.from('from noble'), Buffer.from(process.argv[1], 'base64'))
const e = mlKemEncapsulate(Buffer.from(process.argv[2], 'base64'))
const b64 = u => Buffer.from(u).toString('base64')
console.log(JSON.stringify({ impl: [mlDsaImplementation, mlKemImplementation], sig: b64(sig), ct: b64(e.cipherText), secret: b64(e.sharedSecret) }))`
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, Buffer.from(k.secretKey).toString('base64'), Buffer.from(kem.publicKey).toString('base64')], { env: { ...process.env, FACETFS_PQ: 'noble' } })
    const out = JSON.parse(stdout) as { impl: string[]; sig: string; ct: string; secret: string }
    expect(out.impl).toEqual(['noble', 'noble'])
    expect(verify(Buffer.from(out.sig, 'base64'), Buffer.from('from noble'), k.publicKey)).toBe(true)
    expect(verify(Buffer.from(out.sig, 'base64'), Buffer.from('from noblE'), k.publicKey)).toBe(false)
    expect(Buffer.from(decapsulate(Buffer.from(out.ct, 'base64'), kem.secretKey)).toString('base64')).toBe(out.secret)
  })

  it('hands out pooled random bytes once: no nonce repeats across pool refills, and big requests bypass the pool', () => {
    const key = randomBytes(32)
    const nonces = new Set<string>()
    // 1,000 seals take 12,000 bytes of nonces: the 4 KiB pool is refilled twice on the way
    for (let i = 0; i < 1000; i++) nonces.add(seal(key, Buffer.from('x')).subarray(0, 12).toString('hex'))
    expect(nonces.size).toBe(1000)
    const pieces = Array.from({ length: 400 }, (_, i) => pooledRandomBytes(1 + (i % 37)).toString('hex'))
    expect(new Set(pieces.filter(p => p.length >= 16)).size).toBe(pieces.filter(p => p.length >= 16).length)
    const big = pooledRandomBytes(10_000)
    expect(big.length).toBe(10_000)
    expect(new Set(big).size).toBeGreaterThan(200)
    const into = Buffer.alloc(40)
    randomInto(into, 8, 24)
    expect(into.subarray(0, 8).every(b => b === 0) && into.subarray(32).every(b => b === 0)).toBe(true)
    expect(into.subarray(8, 32).some(b => b !== 0)).toBe(true)
  })

  // Node 22 has neither ML-DSA nor ML-KEM in node:crypto: the module must still load there and use noble
  const olderNode = ((): string | undefined => {
    try {
      const v = execFileSync('/usr/bin/node', ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim().split('.').map(Number) as [number, number]
      return v[0] < 24 || (v[0] === 24 && v[1] < 7) ? '/usr/bin/node' : undefined
    } catch {
      return undefined
    }
  })()
  it.skipIf(!olderNode)(`loads on a Node without ML-DSA and ML-KEM in node:crypto (${olderNode ?? 'none on this machine'}) and uses noble there`, async () => {
    const k = signingKeygen(new Uint8Array(32).fill(11))
    const script = `const m = await import(${JSON.stringify(new URL('../../src/crypto/post-quantum.mjs', import.meta.url).href)})
const sig = m.mlDsaSign(Buffer.from('old node'), Buffer.from(process.argv[1], 'base64'))
console.log(JSON.stringify({ impl: [m.mlDsaImplementation, m.mlKemImplementation], sig: Buffer.from(sig).toString('base64') }))`
    const { stdout } = await promisify(execFile)(olderNode!, ['--input-type=module', '-e', script, Buffer.from(k.secretKey).toString('base64')], { cwd: new URL('../..', import.meta.url).pathname })
    const out = JSON.parse(stdout) as { impl: string[]; sig: string }
    expect(out.impl).toEqual(['noble', 'noble'])
    expect(verify(Buffer.from(out.sig, 'base64'), Buffer.from('old node'), k.publicKey)).toBe(true)
  })

  it('agrees on an ML-KEM-768 shared secret only with the right secret key', () => {
    const a = kemKeygen()
    const b = kemKeygen()
    const { cipherText, sharedSecret } = encapsulate(a.publicKey)
    expect(Buffer.from(decapsulate(cipherText, a.secretKey)).equals(Buffer.from(sharedSecret))).toBe(true)
    expect(Buffer.from(decapsulate(cipherText, b.secretKey)).equals(Buffer.from(sharedSecret))).toBe(false)
  })

  it('derives HKDF-SHA-256 as RFC 5869 says, and as node:crypto does for every length', () => {
    const ikm = Buffer.alloc(22, 0x0b)
    const salt = Buffer.from('000102030405060708090a0b0c', 'hex')
    const info = Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex')
    expect(hkdf(ikm, salt, info, 42).toString('hex')).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865')
    expect(hkdf(ikm, Buffer.alloc(0), Buffer.alloc(0), 42).toString('hex')).toBe('8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8')
    for (const length of [1, 16, 32, 33, 64, 100, 8160]) {
      const k = randomBytes(32)
      expect(hkdf(k, 'salt', 'info', length).equals(Buffer.from(hkdfSync('sha256', k, 'salt', 'info', length)))).toBe(true)
    }
    expect(() => hkdf(ikm, salt, info, 8161)).toThrow(RangeError)
  })

  it('refuses AES-256-GCM data with a wrong key, AAD or byte', () => {
    const key = hkdf(Buffer.alloc(32, 1), 'salt', 'info')
    const sealed = seal(key, Buffer.from('secret'), Buffer.from('aad'))
    expect(open(key, sealed, Buffer.from('aad')).toString()).toBe('secret')
    expect(() => open(key, sealed, Buffer.from('aaD'))).toThrow(DecryptError)
    expect(() => open(hkdf(Buffer.alloc(32, 2), 'salt', 'info'), sealed, Buffer.from('aad'))).toThrow(DecryptError)
    const bad = Buffer.from(sealed)
    bad[14]! ^= 1
    expect(() => open(key, bad, Buffer.from('aad'))).toThrow(DecryptError)
  })
})

describe('identities', () => {
  let home: string
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'facet-id-'))
  })
  afterAll(async () => {
    await rm(home, { recursive: true, force: true })
  })

  it('stores an identity encrypted, mode 0600, and unlocks it with the passphrase', async () => {
    const id = await createIdentity('alice', 'correct horse', { home, scrypt: FAST })
    const path = join(home, 'identities', 'alice.json')
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const text = await readFile(path, 'utf8')
    expect(text).not.toContain(Buffer.from(id.signingSecretKey.subarray(0, 32)).toString('base64'))
    const back = await loadIdentity('alice', 'correct horse', home)
    expect(Buffer.from(back.signingSecretKey).equals(Buffer.from(id.signingSecretKey))).toBe(true)
    expect(Buffer.from(back.kemSecretKey).equals(Buffer.from(id.kemSecretKey))).toBe(true)
    expect((await readPublicIdentity('alice', home)).keyId).toEqual(Buffer.from(id.keyId))
    expect((await listIdentities(home)).map(i => i.name)).toEqual(['alice'])
  })

  it('refuses a wrong passphrase and a second identity of the same name', async () => {
    await expect(loadIdentity('alice', 'wrong', home)).rejects.toBeInstanceOf(WrongPassphraseError)
    await expect(createIdentity('alice', 'x', { home, scrypt: FAST })).rejects.toThrow(/already exists/)
  })

  it('refuses an empty or blank passphrase unless asked to store the identity unprotected, and marks that file', async () => {
    for (const empty of ['', ' \t ']) await expect(createIdentity('blank', empty, { home, scrypt: FAST })).rejects.toBeInstanceOf(EmptyPassphraseError)
    await expect(readPublicIdentity('blank', home)).rejects.toThrow(/no identity 'blank'/)
    const id = await createIdentity('blank', '', { home, scrypt: FAST, allowEmptyPassphrase: true })
    expect(JSON.parse(await readFile(join(home, 'identities', 'blank.json'), 'utf8'))).toMatchObject({ unprotected: true })
    expect((await loadIdentity('blank', '', home)).keyId).toEqual(id.keyId)
  })

  it('round-trips a public identity through export and parse, and keeps contacts apart from identities', async () => {
    const bob = generateIdentity('bob')
    const text = JSON.stringify(exportPublicIdentity(bob))
    for (const secret of [Buffer.from(bob.seeds).toString('base64').slice(0, 24), Buffer.from(bob.seeds).toString('hex').slice(0, 24), Buffer.from(bob.signingSecretKey.subarray(256, 280)).toString('base64')]) expect(text).not.toContain(secret)
    expect(parsePublicIdentity(text)).toEqual({ ...toPublic(bob), keyId: Buffer.from(bob.keyId), signingPublicKey: Buffer.from(bob.signingPublicKey), kemPublicKey: Buffer.from(bob.kemPublicKey) })
    expect(await importContact(parsePublicIdentity(text), { home })).toMatchObject({ status: 'added', name: 'bob' })
    expect(await importContact(parsePublicIdentity(text), { home, as: 'robert' })).toMatchObject({ status: 'known', name: 'bob' })
    expect((await listContacts(home)).map(c => c.name)).toEqual(['bob'])
    expect((await listIdentities(home)).map(i => i.name)).not.toContain('bob')
    expect(await whoIs(bob.keyId, home)).toEqual({ name: 'bob', own: false })
    const alice = await readPublicIdentity('alice', home)
    expect(await importContact(alice, { home, as: 'al' })).toMatchObject({ status: 'known', name: 'alice', own: true })
    expect(() => parsePublicIdentity('{"format":"facet-public-identity/1","name":"x"}')).toThrow(ContactError)
  })

  it('makes distinct identities with 32-byte key ids', () => {
    const a = generateIdentity('a')
    const b = generateIdentity('b')
    expect(a.keyId.length).toBe(32)
    expect(Buffer.from(a.keyId).equals(Buffer.from(b.keyId))).toBe(false)
  })
})

describe('passphrase sources', () => {
  it('reads the first line of --passphrase-file, then FACET_PASSPHRASE', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'facet-pp-'))
    const file = join(dir, 'pp')
    await writeFile(file, 'from file\nsecond line\n')
    expect(await resolvePassphrase({ passphraseFile: file, env: { FACET_PASSPHRASE: 'env' } })).toBe('from file')
    expect(await resolvePassphrase({ env: { FACET_PASSPHRASE: 'env' } })).toBe('env')
    await rm(dir, { recursive: true })
  })

  it('reads a passphrase and its confirmation typed ahead in one burst, with echo off', async () => {
    const { input, output, shown } = terminal()
    const answer = resolvePassphrase({ env: {}, input, output, confirm: true, prompt: 'New: ' })
    input.write('s3cret\rs3cret\r')
    expect(await answer).toBe('s3cret')
    expect(shown()).toBe('New: \nRepeat passphrase: \n')
    expect(input.isRaw).toBe(false)
  })

  it('refuses a confirmation that does not match', async () => {
    const { input, output } = terminal()
    const answer = resolvePassphrase({ env: {}, input, output, confirm: true }).catch(e => e)
    input.write('one\n')
    input.write('two\n')
    const err = await answer
    expect(err).toBeInstanceOf(PassphraseRequiredError)
    expect(err.message).toBe('the passphrases do not match')
  })

  it('never prompts when stdin is not a terminal and names the flag and variable', async () => {
    const input = { isTTY: false } as unknown as NodeJS.ReadStream
    const err = await resolvePassphrase({ env: {}, input }).catch(e => e)
    expect(err).toBeInstanceOf(PassphraseRequiredError)
    expect(err.message).toMatch(/--passphrase-file/)
    expect(err.message).toMatch(/FACET_PASSPHRASE/)
  })
})

/** A stand-in terminal: a stream that says it is a TTY and records raw mode, and what the prompt printed. */
function terminal(): { input: NodeJS.ReadStream & PassThrough; output: PassThrough; shown: () => string } {
  const input = Object.assign(new PassThrough(), {
    isTTY: true,
    isRaw: false,
    setRawMode(mode: boolean) {
      input.isRaw = mode
      return input
    },
  }) as unknown as NodeJS.ReadStream & PassThrough
  const output = new PassThrough()
  let text = ''
  output.setEncoding('utf8').on('data', d => (text += d))
  return { input, output, shown: () => text }
}
