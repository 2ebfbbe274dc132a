import { readFile, writeFile } from 'node:fs/promises'
import { Command } from 'commander'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { shared } from '../../src/cli/shared.ts'
import * as identity from '../../src/cli/commands/identity.ts'
import * as verify from '../../src/cli/commands/verify.ts'
import * as compact from '../../src/cli/commands/compact.ts'
import { loadIdentity } from '../../src/crypto/identity.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { tempHome } from './helpers.ts'

async function facet(...args: string[]): Promise<string> {
  const program = new Command('facet').exitOverride()
  for (const m of [identity, verify, compact]) m.register(program, shared)
  let out = ''
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, cb?: () => void) => {
    out += chunk.toString()
    if (typeof cb === 'function') cb()
    return true
  }) as typeof process.stdout.write)
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((() => true) as typeof process.stderr.write)
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
