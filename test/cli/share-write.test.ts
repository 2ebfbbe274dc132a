import { appendFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { loadIdentity } from '../../src/crypto/identity.ts'
import { Chain, ChainIntegrityError } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { FORMAT_VERSION, frameHeader } from '../../src/chain/format.ts'
import { signBlock } from '../../src/chain/signing.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { fuseSkip, sh } from '../helpers/fuse.ts'
import { shareChainPath } from '../../src/chain/sharing.ts'
import { PASS, shareSetupEach, stop } from './share-setup.ts'

describe.skipIf(fuseSkip)('facet share / --with NAME --write and facet unshare --write, the writer mounting through facet up --files-store', () => {
  const t = shareSetupEach()

  it('shares / with --write: bob writes through his mount, alice reads it, and verify is clean', async () => {
    const shared = await t.run(['share', '/', '--with', 'bob', '--write', '--files-store', t.store], t.alice)
    expect(shared.code).toBe(0)
    expect(shared.stdout).toMatch(/^shared \/ with 'bob' \(key [0-9a-f]{16}\): read and write\n$/)
    expect(shared.stderr).toMatch(/bob may now write anywhere in the chain\n/)

    const dir = await t.mountDir()
    const up = await t.bobUp(dir)
    expect((await sh(`ls '${dir}/files'`)).stdout).toBe('a\nb\ntop.txt\n')
    expect((await sh(`printf 'written by bob\\n' > '${dir}/files/a/from-bob.txt' && cat '${dir}/files/a/from-bob.txt'`)).stdout).toBe('written by bob\n')
    expect(await stop(up)).toEqual({ code: 0, signal: null })

    const chain = await Chain.open(t.store, { identity: await loadIdentity('default', PASS, t.alice.FACET_HOME!), home: t.alice.FACET_HOME!, readOnly: true })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    expect((await vfs.readFile('/c/a/from-bob.txt')).toString()).toBe('written by bob\n')
    await vfs.close()
    const clean = await t.run(['verify', t.store], t.alice)
    expect([clean.code, clean.stdout]).toEqual([0, expect.stringMatching(/: ok, \d+ blocks/)])
  })

  it('unshare / --write: bob mounts read-only, still reads, and a block he signs anyway is refused by verify and on open', async () => {
    // bob made a writer, and a block of his written, in-process (the test before does both through the CLI and FUSE)
    const aliceId = await loadIdentity('default', PASS, t.alice.FACET_HOME!)
    const bobId = await loadIdentity('default', PASS, t.bob.FACET_HOME!)
    const owner = await Chain.open(t.store, { identity: aliceId, home: t.alice.FACET_HOME! })
    await shareChainPath(owner, '/', bobId, { write: true })
    await owner.close()
    const writer = await Chain.open(t.store, { identity: bobId, home: t.bob.FACET_HOME! })
    const bobVfs = createVfs({ mounts: { '/c': chainMount(writer) }, logger: silentLogger })
    await bobVfs.writeFile('/c/a/from-bob.txt', 'written by bob\n')
    await bobVfs.close()

    const unshared = await t.run(['unshare', '/', '--with', 'bob', '--write', '--files-store', t.store], t.alice)
    expect([unshared.code, unshared.stdout]).toEqual([0, 'bob may no longer write: blocks it signs from now on are refused\n'])
    expect((await t.run(['share', '--list', '--files-store', t.store], t.alice)).stdout).toMatch(/^\/\tbob\tread\t[0-9a-f]{16}\n$/)

    // bob still reads, but mounts read-only now
    const dir = await t.mountDir()
    const up = await t.bobUp(dir)
    expect((await sh(`cat '${dir}/files/a/from-bob.txt'`)).stdout).toBe('written by bob\n')
    const refused = await sh(`echo again > '${dir}/files/a/again.txt'`)
    expect(refused.stderr).toMatch(/Read-only file system|Permission denied/)
    expect(await stop(up)).toEqual({ code: 0, signal: null })

    // a block bob signs anyway (a modified client) is refused by verify and on open
    const v = await verifyChain(t.store, { home: t.alice.FACET_HOME! })
    const { body } = signBlock({ formatVersion: FORMAT_VERSION, chainId: Buffer.from(v.chainId!, 'hex'), seq: v.headSeq + 1, prevHash: Buffer.from(v.headHash!, 'hex'), time: Date.now(), author: bobId.keyId, events: [{ type: 'tombstone', ino: 2 }] }, bobId)
    await appendFile(t.store, Buffer.concat([frameHeader(body), body]))
    const bad = await t.run(['verify', t.store], t.alice)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(new RegExp(`bad block ${v.headSeq + 1} at byte \\d+: signed by an identity that is not an authorised writer`))
    await expect(Chain.open(t.store, { identity: aliceId, home: t.alice.FACET_HOME!, readOnly: true })).rejects.toBeInstanceOf(ChainIntegrityError)
  })
})
