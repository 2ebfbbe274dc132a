import { readFile, writeFile } from 'node:fs/promises'
import { Command } from 'commander'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { shared } from '../../src/cli/shared.ts'
import * as identity from '../../src/cli/commands/identity.ts'
import * as verify from '../../src/cli/commands/verify.ts'
import * as compact from '../../src/cli/commands/compact.ts'
import * as trust from '../../src/cli/commands/trust.ts'
import { loadIdentity } from '../../src/crypto/identity.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { tempHome } from './helpers.ts'

/** What the last {@link facet} run wrote to stderr. */
let stderr = ''

async function facet(...args: string[]): Promise<string> {
  const program = new Command('facet').exitOverride()
  for (const m of [identity, verify, compact, trust]) m.register(program, shared)
  stderr = ''
  let out = ''
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, cb?: () => void) => {
    out += chunk.toString()
    if (typeof cb === 'function') cb()
    return true
  }) as typeof process.stdout.write)
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array) => {
    stderr += chunk.toString()
    return true
  }) as typeof process.stderr.write)
  try {
    await program.parseAsync(['node', 'facet', ...args])
    return out
  } finally {
    spy.mockRestore()
    err.mockRestore()
  }
}

describe('facet identity, verify and compact', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  beforeAll(async () => {
    t = await tempHome()
    process.env.FACET_PASSPHRASE = 'cli pass'
  })
  afterAll(async () => {
    delete process.env.FACET_PASSPHRASE
    await t.cleanup()
  })

  it('creates, lists and shows an identity with the passphrase from FACET_PASSPHRASE', async () => {
    const keyId = (await facet('identity', 'create', 'owner', '--home', t.home)).trim()
    expect(keyId).toMatch(/^[0-9a-f]{64}$/)
    expect(await facet('identity', 'list', '--home', t.home)).toBe(`owner\t${keyId.slice(0, 16)}\n`)
    expect(await facet('identity', 'show', 'owner', '--home', t.home)).toContain(`key id:      ${keyId}`)
    await expect(facet('identity', 'show', 'nobody', '--home', t.home)).rejects.toThrow(/no identity 'nobody'/)
  })

  it('verifies a good chain and names the first bad block of a damaged one', async () => {
    const id = await loadIdentity('owner', 'cli pass', t.home)
    const chain = await Chain.create(t.path, { identity: id, home: t.home })
    const vfs = createVfs({ mounts: { '/': chainMount(chain) }, logger: silentLogger })
    await vfs.writeFile('/a', 'a')
    await chain.sync()
    await vfs.writeFile('/b', 'b')
    await vfs.close()
    expect(await facet('verify', t.path, '--home', t.home)).toMatch(/ok, 3 blocks/)
    const log = await readFile(t.path)
    const second = 16 + 12 + log.readUInt32LE(16 + 4)
    log[second + 100]! ^= 1
    await writeFile(t.path, log)
    await expect(facet('verify', t.path, '--home', t.home)).rejects.toThrow(/bad block 1 at byte \d+/)
    log[second + 100]! ^= 1
    await writeFile(t.path, log)
  })

  it('compacts a chain with the owner identity', async () => {
    expect(await facet('compact', t.path, '--home', t.home, '--identity', 'owner')).toMatch(/compacted \d+ -> \d+ bytes/)
    expect(await facet('verify', t.path, '--home', t.home)).toMatch(/ok/)
  })
})

describe('facet identity create refuses an empty passphrase (issue 12, case 7)', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  beforeAll(async () => {
    t = await tempHome()
  })
  afterAll(async () => {
    delete process.env.FACET_PASSPHRASE
    await t.cleanup()
  })

  it('refuses an empty or blank passphrase and writes no identity', async () => {
    for (const empty of ['', '   ']) {
      process.env.FACET_PASSPHRASE = empty
      await expect(facet('identity', 'create', 'blank', '--home', t.home)).rejects.toThrow(/refusing to store identity 'blank' under an empty passphrase: anyone who can read its file could sign and read as it/)
    }
    await expect(facet('identity', 'show', 'blank', '--home', t.home)).rejects.toThrow(/no identity 'blank'/)
  })

  it('stores an identity without a passphrase only with --no-passphrase, and says so loudly', async () => {
    delete process.env.FACET_PASSPHRASE
    const keyId = (await facet('identity', 'create', 'open', '--no-passphrase', '--home', t.home)).trim()
    expect(keyId).toMatch(/^[0-9a-f]{64}$/)
    expect(stderr).toMatch(/^WARNING: identity 'open' is stored WITHOUT a passphrase: anyone who can read .*open\.json can sign and read as 'open'\n/)
    expect(JSON.parse(await readFile(`${t.home}/identities/open.json`, 'utf8'))).toMatchObject({ unprotected: true })
    expect(Buffer.from((await loadIdentity('open', '', t.home)).keyId).toString('hex')).toBe(keyId)
  })
})

describe('facet identity export and import (issue 12, item 1)', () => {
  let alice: Awaited<ReturnType<typeof tempHome>>
  let bob: Awaited<ReturnType<typeof tempHome>>
  beforeAll(async () => {
    alice = await tempHome()
    bob = await tempHome()
    process.env.FACET_PASSPHRASE = 'export pass'
  })
  afterAll(async () => {
    delete process.env.FACET_PASSPHRASE
    await alice.cleanup()
    await bob.cleanup()
  })

  it('exports the public keys of an identity as JSON with no secret in it', async () => {
    const keyId = (await facet('identity', 'create', 'alice', '--home', alice.home)).trim()
    const exported = JSON.parse(await facet('identity', 'export', 'alice', '--home', alice.home)) as Record<string, string>
    expect(Object.keys(exported).sort()).toEqual(['format', 'kemPublicKey', 'keyId', 'name', 'signingPublicKey'])
    expect(exported).toMatchObject({ format: 'facet-public-identity/1', name: 'alice', keyId })
    expect(Buffer.from(exported.signingPublicKey!, 'base64')).toHaveLength(1952)
    expect(Buffer.from(exported.kemPublicKey!, 'base64')).toHaveLength(1184)
    await writeFile(`${alice.home}/alice.pub.json`, JSON.stringify(exported))
  })

  it('imports it into another home as a contact, under its own name or --as NAME, and lists and shows it', async () => {
    await facet('identity', 'create', 'bob', '--home', bob.home)
    const file = `${alice.home}/alice.pub.json`
    const { keyId } = JSON.parse(await readFile(file, 'utf8')) as { keyId: string }
    expect(await facet('identity', 'import', file, '--home', bob.home)).toBe(`alice\t${keyId}\n`)
    expect(stderr).toMatch(/^imported contact 'alice' into .*contacts\/alice\.json\n$/)
    expect(await facet('identity', 'list', '--home', bob.home)).toMatch(new RegExp(`^bob\\t[0-9a-f]{16}\\nalice\\t${keyId.slice(0, 16)}\\tcontact\\n$`))
    expect(await facet('identity', 'show', 'alice', '--home', bob.home)).toContain(`key id:      ${keyId}\n`)
    // the same key again is known, under any name
    expect(await facet('identity', 'import', file, '--as', 'al', '--home', bob.home)).toBe(`alice\t${keyId}\n`)
    expect(stderr).toBe("already known as contact 'alice'; nothing imported\n")
    // re-exported from the contact book, it imports anywhere
    const again = await facet('identity', 'export', 'alice', '--home', bob.home)
    expect(JSON.parse(again)).toEqual(JSON.parse(await readFile(file, 'utf8')))
  })

  it('refuses a key id that does not match the keys, an identity file with secrets, and a name another key holds', async () => {
    const file = `${alice.home}/alice.pub.json`
    const good = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>
    const altered = { ...good, keyId: good.keyId!.replace(/^./, c => (c === '0' ? '1' : '0')) }
    await writeFile(`${bob.home}/bad.json`, JSON.stringify(altered))
    await expect(facet('identity', 'import', `${bob.home}/bad.json`, '--home', bob.home)).rejects.toThrow(/the key id does not match the keys/)
    await expect(facet('identity', 'import', `${alice.home}/identities/alice.json`, '--home', bob.home)).rejects.toThrow(/is an identity file with its encrypted secret keys/)
    const short = { ...good, kemPublicKey: Buffer.alloc(10).toString('base64') }
    await writeFile(`${bob.home}/short.json`, JSON.stringify(short))
    await expect(facet('identity', 'import', `${bob.home}/short.json`, '--home', bob.home)).rejects.toThrow(/ML-KEM-768 public key is not 1184 bytes/)
    await facet('identity', 'create', 'carol', '--home', alice.home)
    await writeFile(`${bob.home}/carol.json`, (await facet('identity', 'export', 'carol', '--home', alice.home)).replace('"carol"', '"alice"'))
    await expect(facet('identity', 'import', `${bob.home}/carol.json`, '--home', bob.home)).rejects.toThrow(/a contact 'alice' with another key .* exists; import this one under another name with --as NAME/)
    await expect(facet('identity', 'import', `${bob.home}/carol.json`, '--as', 'bob', '--home', bob.home)).rejects.toThrow(/'bob' is one of your own identities/)
    expect(await facet('identity', 'import', `${bob.home}/carol.json`, '--as', 'carol', '--home', bob.home)).toMatch(/^carol\t/)
  })
})

describe('facet verify and facet trust on a forged or damaged chain (issue 12, cases 1 and 2)', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  beforeAll(async () => {
    t = await tempHome()
    process.env.FACET_PASSPHRASE = 'trust pass'
  })
  afterAll(async () => {
    delete process.env.FACET_PASSPHRASE
    await t.cleanup()
  })

  it('refuses a forged chain at a pinned path by the trust store, and pins it after trust accept, saying whose it is and what it replaced', async () => {
    const { forgeChain } = await import('./forge.ts')
    const { rename } = await import('node:fs/promises')
    await facet('identity', 'create', 'default', '--home', t.home)
    const me = await loadIdentity('default', 'trust pass', t.home)
    const mine = await Chain.create(t.path, { identity: me, home: t.home })
    await mine.close()
    expect(await facet('verify', t.path, '--home', t.home)).toMatch(/: ok, 1 blocks, 3 events, head 0, chain [0-9a-f]{32}, owner 'default' \(key [0-9a-f]{16}\), pinned here\n$/)
    await forgeChain(`${t.path}.forged`, me, { 'x.txt': 'forged' })
    await rename(`${t.path}.forged`, t.path)
    await expect(facet('verify', t.path, '--home', t.home)).rejects.toThrow(/: refused by the trust store: .* is not the chain pinned for it: pinned chain [0-9a-f]{32}, owner 'default' \(key [0-9a-f]{16}\); found chain [0-9a-f]{32}, owner 'default' \(key [0-9a-f]{16}\)/)
    const out = await facet('trust', 'accept', t.path, '--home', t.home)
    expect(out).toMatch(/^pinned .*test\.chain: chain [0-9a-f]{32}, owner 'default' \(key [0-9a-f]{16}\) — a key this home does not know\n  was chain [0-9a-f]{32}, owner 'default' \(key [0-9a-f]{16}\) — your identity 'default'\n  recorded head 1 as the last one seen\n$/)
    expect(await facet('verify', t.path, '--home', t.home)).toMatch(/ok, .*, pinned here\n$/)
    expect(await facet('trust', 'list', '--home', t.home)).toMatch(/test\.chain\t[0-9a-f]{32}\tdefault\t[0-9a-f]{16}\taccepted /)
  })

  it('says the trust store is damaged, naming the file, instead of "cannot read chain"', async () => {
    const { readPin, trustDir } = await import('../../src/chain/trust.ts')
    const { resolve } = await import('node:path')
    const head = `${(await readPin(t.home, resolve(t.path)))!.chainId}.json`
    await writeFile(`${trustDir(t.home)}/${head}`, '{"seq":')
    await expect(facet('verify', t.path, '--home', t.home)).rejects.toThrow(new RegExp(`cannot check the trust store: the trust store file .*${head} is damaged \\(not JSON`))
    await expect(facet('trust', 'accept', t.path, '--home', t.home)).resolves.toMatch(/recorded head 1 as the last one seen/)
    expect(stderr).toMatch(new RegExp(`^replaced the damaged trust store file .*${head}\\n$`))
  })
})
