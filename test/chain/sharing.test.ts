import { appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Identity } from '../../src/crypto/identity.ts'
import { Chain, ChainIntegrityError, NoAccessError } from '../../src/chain/store.ts'
import { listShares, shareChainPath, ShareError, unshareChainPath } from '../../src/chain/sharing.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { compactChainFile } from '../../src/chain/compact.ts'
import { FORMAT_VERSION, frameHeader } from '../../src/chain/format.ts'
import { signBlock } from '../../src/chain/signing.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { chainPeopleEach, person } from './people.ts'

const alice = person('alice')
const bob = person('bob')

describe('sharing a chain with a second identity', () => {
  const t = chainPeopleEach('facet-sharing-')
  const mount = (identity: Identity, options: { readOnly?: boolean; create?: boolean } = {}) => t.mount(identity, options)
  const close = (vfs: Vfs) => t.close(vfs)
  const names = (vfs: Vfs, dir: string) => t.names(vfs, dir)

  /** Alice's chain: /a (two files, a subfolder, a hard link to /b's secret), /b/secret.txt, /top.txt. */
  async function aliceChain(): Promise<{ vfs: Vfs; chain: Chain }> {
    const m = await mount(alice, { create: true })
    await m.vfs.mkdir('/c/a')
    await m.vfs.mkdir('/c/a/sub')
    await m.vfs.mkdir('/c/b')
    await m.vfs.writeFile('/c/a/x.txt', 'shared x\n')
    await m.vfs.writeFile('/c/a/sub/y.txt', 'shared y, deeper\n')
    await m.vfs.writeFile('/c/b/secret.txt', 'alice only\n')
    await m.vfs.writeFile('/c/top.txt', 'also alice only\n')
    await m.vfs.link('/c/b/secret.txt', '/c/a/secret-link')
    return m
  }

  it('lets a reader granted /a list and read exactly /a, with the rest absent, and refuses its writes with EROFS', async () => {
    const a = await aliceChain()
    expect(await shareChainPath(a.chain, '/a', bob)).toEqual({ ino: expect.any(Number), path: '/a', authorised: false })
    // made after the grant: inherited, since its metadata is sealed under /a's key
    await a.vfs.writeFile('/c/a/later.txt', 'written after the share\n')
    await close(a.vfs)

    const b = await mount(bob)
    expect(b.chain.readOnly).toBe(true)
    expect(await names(b.vfs, '/c')).toEqual(['a'])
    // the hard link to /b/secret.txt lies in /a, but names a file bob cannot open: absent
    expect(await names(b.vfs, '/c/a')).toEqual(['later.txt', 'sub', 'x.txt'])
    expect((await b.vfs.readFile('/c/a/x.txt')).toString()).toBe('shared x\n')
    expect((await b.vfs.readFile('/c/a/sub/y.txt')).toString()).toBe('shared y, deeper\n')
    expect((await b.vfs.readFile('/c/a/later.txt')).toString()).toBe('written after the share\n')
    expect((await b.vfs.stat('/c/a/x.txt')).size).toBe(9)
    await expect(b.vfs.stat('/c/b')).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(b.vfs.stat('/c/top.txt')).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(b.vfs.stat('/c/a/secret-link')).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(b.vfs.writeFile('/c/a/new.txt', 'no')).rejects.toMatchObject({ code: 'EROFS' })
    await expect(b.vfs.writeFile('/c/a/x.txt', 'no')).rejects.toMatchObject({ code: 'EROFS' })
    // opened without readOnly, a reader still holds no writer lock: the owner opens for writing beside it
    const again = await mount(alice)
    expect(again.chain.readOnly).toBe(false)
    await close(again.vfs)
    await close(b.vfs)
  })

  it('lets a reader granted /a follow the owner\'s writes: new files in /a appear, new ones elsewhere stay absent', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/a', bob)
    const b = await mount(bob, { readOnly: true })
    expect(await names(b.vfs, '/c/a')).toEqual(['sub', 'x.txt'])
    await a.vfs.writeFile('/c/a/sub/new.txt', 'followed\n')
    await a.vfs.writeFile('/c/b/more.txt', 'still alice only\n')
    await a.vfs.mkdir('/c/c')
    await a.chain.sync()
    const touched = await b.chain.catchUp()
    expect(touched.size).toBeGreaterThan(0)
    expect(await names(b.vfs, '/c')).toEqual(['a'])
    expect(await names(b.vfs, '/c/a/sub')).toEqual(['new.txt', 'y.txt'])
    expect((await b.vfs.readFile('/c/a/sub/new.txt')).toString()).toBe('followed\n')
  })

  it('keeps folder grants and writers through compaction, and leaves withdrawn grants out', async () => {
    const a = await aliceChain()
    const carol = person('carol')
    await shareChainPath(a.chain, '/a', bob)
    await shareChainPath(a.chain, '/b', carol)
    await shareChainPath(a.chain, '/', carol, { write: true })
    await unshareChainPath(a.chain, '/b', carol)
    await close(a.vfs)
    await compactChainFile(t.path, { identity: alice, home: t.home(alice) })
    const b = await mount(bob, { readOnly: true })
    expect(await names(b.vfs, '/c')).toEqual(['a'])
    expect((await b.vfs.readFile('/c/a/x.txt')).toString()).toBe('shared x\n')
    await close(b.vfs)
    const a2 = await mount(alice, { readOnly: true })
    expect(listShares(a2.chain).map(s => [s.path, s.writerName ?? '', s.write])).toEqual([
      ['/a', '', false],
      ['/', 'carol', true],
    ])
    await close(a2.vfs)
  })

  it('shows a nested grant at its path, the folders above it by name only', async () => {
    const a = await mount(alice, { create: true })
    await a.vfs.mkdir('/c/x')
    await a.vfs.mkdir('/c/x/y')
    await a.vfs.mkdir('/c/x/y/z')
    await a.vfs.writeFile('/c/x/sibling.txt', 'not shared\n')
    await a.vfs.writeFile('/c/x/y/z/f.txt', 'deep\n')
    await shareChainPath(a.chain, '/x/y/z', bob)
    await close(a.vfs)
    const b = await mount(bob, { readOnly: true })
    expect(await names(b.vfs, '/c')).toEqual(['x'])
    expect(await names(b.vfs, '/c/x')).toEqual(['y'])
    expect(await names(b.vfs, '/c/x/y')).toEqual(['z'])
    expect((await b.vfs.readFile('/c/x/y/z/f.txt')).toString()).toBe('deep\n')
    expect((await b.vfs.stat('/c/x')).mode & 0o777).toBe(0o555)
  })

  it('refuses an identity with no grant, and one whose grant was withdrawn, with NoAccessError', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/a', bob)
    const carol = person('carol')
    await expect(Chain.open(t.path, { identity: carol, home: join(t.work, 'carol'), readOnly: true })).rejects.toBeInstanceOf(NoAccessError)
    expect(await unshareChainPath(a.chain, '/a', bob)).toMatchObject({ revokedWrite: false, droppedGrant: true, rotation: { paths: ['/a'], dropped: 1 } })
    expect(listShares(a.chain)).toEqual([])
    await expect(unshareChainPath(a.chain, '/a', bob)).rejects.toBeInstanceOf(ShareError)
    await close(a.vfs)
    await expect(Chain.open(t.path, { identity: bob, home: t.home(bob), readOnly: true })).rejects.toBeInstanceOf(NoAccessError)
  })

  it('refuses sharing by a non-owner and writing on a file, and taking writing back on a folder from a writer of the whole chain, with ShareError', async () => {
    const a = await aliceChain()
    // a file is shared for reading alone (file-grants.test.ts)
    await expect(shareChainPath(a.chain, '/a/x.txt', bob, { write: true })).rejects.toThrow(/is a file: write rights are given on folders/)
    await expect(shareChainPath(a.chain, '/nope', bob)).rejects.toThrow(/no such/)
    await expect(unshareChainPath(a.chain, '/a', bob, { onlyWrite: true })).rejects.toThrow(/'bob' is not a writer/)
    await shareChainPath(a.chain, '/', bob, { write: true })
    await expect(unshareChainPath(a.chain, '/a', bob, { onlyWrite: true })).rejects.toThrow(/'bob' writes the whole chain: take it back on \/, not \/a/)
    await close(a.vfs)
    const b = await mount(bob)
    await expect(shareChainPath(b.chain, '/a', person('carol'))).rejects.toThrow(/only the chain's owner/)
  })

  it('lets a writer write, the owner read it back, verify stay clean, and refuses its blocks once revoked', async () => {
    const a = await aliceChain()
    expect(await shareChainPath(a.chain, '/', bob, { write: true })).toMatchObject({ path: '/', authorised: true })
    expect(listShares(a.chain)).toEqual([{ keyId: Buffer.from(bob.keyId).toString('hex'), writerName: 'bob', path: '/', ino: 1, write: true }])
    await close(a.vfs)

    const b = await mount(bob)
    expect(b.chain.readOnly).toBe(false)
    expect(await names(b.vfs, '/c')).toEqual(['a', 'b', 'top.txt'])
    await b.vfs.writeFile('/c/a/from-bob.txt', 'bob was here\n')
    await close(b.vfs)

    const a2 = await mount(alice)
    expect((await a2.vfs.readFile('/c/a/from-bob.txt')).toString()).toBe('bob was here\n')
    expect(await verifyChain(t.path, { home: t.home(alice) })).toMatchObject({ ok: true })
    expect(await unshareChainPath(a2.chain, '/', bob)).toMatchObject({ revokedWrite: true, droppedGrant: true, rotation: { paths: ['/'], dropped: 1 } })
    await close(a2.vfs)

    // bob signs a block after the revoke (as a modified client would): refused
    const v = await verifyChain(t.path, { home: t.home(alice) })
    const block = { formatVersion: FORMAT_VERSION, chainId: Buffer.from(v.chainId!, 'hex'), seq: v.headSeq + 1, prevHash: Buffer.from(v.headHash!, 'hex'), time: Date.now(), author: bob.keyId, events: [{ type: 'tombstone' as const, ino: 2 }] }
    const { body } = signBlock(block, bob)
    await appendFile(t.path, Buffer.concat([frameHeader(body), body]))
    const after = await verifyChain(t.path, { home: t.home(alice) })
    expect(after.ok).toBe(false)
    expect(after.problem).toMatchObject({ seq: v.headSeq + 1, reason: 'signed by an identity that is not an authorised writer' })
    await expect(Chain.open(t.path, { identity: alice, home: t.home(alice), readOnly: true })).rejects.toBeInstanceOf(ChainIntegrityError)
  })
})
