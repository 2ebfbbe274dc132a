import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { identityFromSeeds, type Identity } from '../../src/crypto/identity.ts'
import { Chain, ChainIntegrityError } from '../../src/chain/store.ts'
import { listShares, shareChainPath, unshareChainPath } from '../../src/chain/sharing.ts'
import { compactChainFile } from '../../src/chain/compact.ts'
import { acceptChain, verifyChain } from '../../src/chain/verify.ts'
import { appendSignature, decodeBlock, encodeUnsigned, FORMAT_VERSION, type ChainEvent, type WriteScopeEvent } from '../../src/chain/format.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { chainPeopleEach, person } from './people.ts'

const alice = person('alice')
const bob = person('bob')
const carol = person('carol')

describe('write rights scoped to a folder (facet share /a --with bob --write)', () => {
  const t = chainPeopleEach('facet-write-scope-')
  const home = (id: Identity) => t.home(id)
  const mount = (identity: Identity, options: { create?: boolean } = {}) => t.mount(identity, options)
  const close = (vfs: Vfs) => t.close(vfs)
  const names = (vfs: Vfs, dir: string) => t.names(vfs, dir)

  /** Alice's chain (/a/x.txt, /a/sub/y.txt, /b/secret.txt, /top.txt) with /a shared with bob for writing; closed. Returns the inodes. */
  async function aliceShares(): Promise<Record<'a' | 'x' | 'sub' | 'b' | 'secret' | 'top', number>> {
    const m = await mount(alice, { create: true })
    await m.vfs.mkdir('/c/a')
    await m.vfs.mkdir('/c/a/sub')
    await m.vfs.mkdir('/c/b')
    await m.vfs.writeFile('/c/a/x.txt', 'for bob\n')
    await m.vfs.writeFile('/c/a/sub/y.txt', 'deeper\n')
    await m.vfs.writeFile('/c/b/secret.txt', 'alice only\n')
    await m.vfs.writeFile('/c/top.txt', 'alice only too\n')
    const r = await shareChainPath(m.chain, '/a', bob, { write: true })
    expect(r).toEqual({ ino: expect.any(Number), path: '/a', authorised: true, writeScope: ['/a'] })
    // the chain's own inode numbers (the mount shows them offset)
    const ino = (p: string) => p.split('/').filter(Boolean).reduce((n, name) => m.chain.lookup(n, name)!, m.chain.root).ino
    const inos = { a: ino('/a'), x: ino('/a/x.txt'), sub: ino('/a/sub'), b: ino('/b'), secret: ino('/b/secret.txt'), top: ino('/top.txt') }
    await close(m.vfs)
    return inos
  }

  /** Signs a block of `events` as bob (a client that skips the local checks) and closes his chain. */
  async function bobSigns(events: ChainEvent[]): Promise<void> {
    const b = await Chain.open(t.path, { identity: bob, home: home(bob) })
    expect(b.readOnly).toBe(false)
    await b.commitEvents(events)
    await b.close()
  }

  async function expectRefused(reason: RegExp): Promise<void> {
    const v = await verifyChain(t.path, { home: home(alice) })
    expect(v).toMatchObject({ ok: false, problem: { reason: expect.stringMatching(reason) } })
    const err = await Chain.open(t.path, { identity: alice, home: home(alice) }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ChainIntegrityError)
    expect((err as ChainIntegrityError).message).toMatch(new RegExp(`^block ${v.problem!.seq} \\(at byte \\d+\\): `))
    expect((err as ChainIntegrityError).message).toMatch(reason)
    expect((err as ChainIntegrityError).message).toMatch(/by writer 'bob' \(key [0-9a-f]{16}\) limited to folders \d+/)
  }

  it('lets bob write in /a and below, reads back for alice, and verifies clean', async () => {
    await aliceShares()
    const b = await mount(bob)
    await b.vfs.writeFile('/c/a/from-bob.txt', 'written by bob\n')
    await b.vfs.mkdir('/c/a/new')
    await b.vfs.writeFile('/c/a/new/deep.txt', 'deep\n')
    await b.vfs.rename('/c/a/x.txt', '/c/a/sub/x.txt')
    await b.vfs.unlink('/c/a/sub/y.txt')
    await b.vfs.setxattr('/c/a', 'user.note', Buffer.from('bob'))
    await b.vfs.chmod('/c/a/from-bob.txt', 0o600)
    await close(b.vfs)
    expect(await verifyChain(t.path, { home: home(alice) })).toMatchObject({ ok: true })
    const a = await mount(alice)
    expect(await names(a.vfs, '/c/a')).toEqual(['from-bob.txt', 'new', 'sub'])
    expect(await names(a.vfs, '/c/a/sub')).toEqual(['x.txt'])
    expect((await a.vfs.readFile('/c/a/from-bob.txt')).toString()).toBe('written by bob\n')
    expect((await a.vfs.readFile('/c/a/new/deep.txt')).toString()).toBe('deep\n')
    expect((await a.vfs.readFile('/c/a/sub/x.txt')).toString()).toBe('for bob\n')
    expect(Buffer.from(await a.vfs.getxattr('/c/a', 'user.note')).toString()).toBe('bob')
    expect((await a.vfs.stat('/c/a/from-bob.txt')).mode & 0o777).toBe(0o600)
    expect(listShares(a.chain)).toEqual([{ keyId: Buffer.from(bob.keyId).toString('hex'), writerName: 'bob', path: '/a', ino: expect.any(Number), write: true }])
  })

  it("refuses in bob's own mount, with EACCES and before signing, a change outside /a", async () => {
    await aliceShares()
    const b = await mount(bob)
    const head = b.chain.headSeq
    await expect(b.vfs.writeFile('/c/new.txt', 'outside\n')).rejects.toMatchObject({ code: 'EACCES' })
    await expect(b.vfs.mkdir('/c/d')).rejects.toMatchObject({ code: 'EACCES' })
    await expect(b.vfs.rename('/c/a/x.txt', '/c/x.txt')).rejects.toMatchObject({ code: 'EACCES' })
    await expect(b.vfs.rename('/c/a', '/c/a2')).rejects.toMatchObject({ code: 'EACCES' })
    await expect(b.vfs.rmdir('/c/a/sub').then(() => 'removed')).rejects.toMatchObject({ code: 'ENOTEMPTY' })
    // the scope folder's own metadata is sealed under its parent's key: not bob's to change
    await expect(b.vfs.chmod('/c/a', 0o700)).rejects.toMatchObject({ code: 'EACCES' })
    await b.chain.sync()
    expect(b.chain.headSeq).toBe(head)
    await close(b.vfs)
    expect(await verifyChain(t.path, { home: home(alice) })).toMatchObject({ ok: true })
  })

  it('refuses on open and in facet verify a block bob signs that touches /b or /top.txt', async () => {
    const inos = await aliceShares()
    await bobSigns([{ type: 'tombstone', ino: inos.secret }])
    await expectRefused(new RegExp(`tombstone of inode ${inos.secret}, outside its write scope`))
  })

  it('refuses content written outside /a, even in a block that also writes inside', async () => {
    const inos = await aliceShares()
    await bobSigns([
      { type: 'chunksCut', ino: inos.x, from: 0 },
      { type: 'chunksCut', ino: inos.top, from: 0 },
    ])
    await expectRefused(new RegExp(`chunksCut of inode ${inos.top}, outside its write scope`))
  })

  it('refuses a rename out of /a, a rename into it from outside, a new inode outside, and a change to /a itself', async () => {
    const first = await aliceShares()
    const inos = first
    const sealedMeta = Buffer.alloc(64, 1)
    const cases: [ChainEvent, RegExp][] = [
      [{ type: 'inodePut', ino: inos.x, keyParent: 1, version: 9, sealedMeta }, new RegExp(`inodePut of inode ${inos.x} under folder 1, outside`)],
      [{ type: 'inodePut', ino: inos.secret, keyParent: inos.a, version: 9, sealedMeta }, new RegExp(`inodePut of inode ${inos.secret}, which lies outside`)],
      [{ type: 'inodePut', ino: 999, keyParent: inos.b, version: 1, sealedMeta }, new RegExp(`inodePut of inode 999 under folder ${inos.b}, outside`)],
      [{ type: 'inodePut', ino: inos.a, keyParent: 1, version: 9, sealedMeta }, new RegExp(`inodePut of inode ${inos.a} under folder 1, outside`)],
      [{ type: 'linkPut', link: 1, dir: inos.b, version: 1, sealed: sealedMeta }, new RegExp(`linkPut of link 1 in folder ${inos.b}, outside`)],
    ]
    for (const [i, [event, reason]] of cases.entries()) {
      // each on a chain of its own, made the same way (the same inode numbers)
      t.path = join(t.work, `case-${i}.chain`)
      expect(await aliceShares()).toEqual(first)
      await bobSigns([event])
      await expectRefused(reason)
    }
  })

  it('keeps a writer of the whole chain (share / --write) writing everywhere, and scopes survive compaction', async () => {
    const inos = await aliceShares()
    const a = await mount(alice)
    await shareChainPath(a.chain, '/', carol, { write: true })
    await close(a.vfs)
    const c = await mount(carol)
    await c.vfs.writeFile('/c/b/from-carol.txt', 'carol\n')
    await c.vfs.writeFile('/c/top.txt', 'changed by carol\n')
    await close(c.vfs)
    expect(await verifyChain(t.path, { home: home(alice) })).toMatchObject({ ok: true })
    await compactChainFile(t.path, { identity: alice, home: home(alice) })
    const a2 = await mount(alice)
    expect((await a2.vfs.readFile('/c/top.txt')).toString()).toBe('changed by carol\n')
    await close(a2.vfs)
    await bobSigns([{ type: 'tombstone', ino: inos.top }])
    await expectRefused(new RegExp(`tombstone of inode ${inos.top}, outside its write scope`))
  })

  it('unshare /a --write takes writing back; with two folders it keeps the other; share / --write widens it to the whole chain', async () => {
    await aliceShares()
    let a = await mount(alice)
    await shareChainPath(a.chain, '/b', bob, { write: true })
    expect(await unshareChainPath(a.chain, '/a', bob, { onlyWrite: true })).toEqual({ revokedWrite: false, droppedGrant: false, writeScope: ['/b'] })
    await close(a.vfs)
    let b = await mount(bob)
    await b.vfs.writeFile('/c/b/from-bob.txt', 'in b\n')
    await expect(b.vfs.writeFile('/c/a/again.txt', 'in a\n')).rejects.toMatchObject({ code: 'EACCES' })
    expect((await b.vfs.readFile('/c/a/x.txt')).toString()).toBe('for bob\n')
    await close(b.vfs)
    a = await mount(alice)
    expect(await unshareChainPath(a.chain, '/b', bob, { onlyWrite: true })).toEqual({ revokedWrite: true, droppedGrant: false, writeScope: undefined })
    await close(a.vfs)
    b = await mount(bob)
    expect(b.chain.readOnly).toBe(true)
    await close(b.vfs)
    a = await mount(alice)
    await shareChainPath(a.chain, '/a', bob, { write: true })
    expect(await shareChainPath(a.chain, '/', bob, { write: true })).toMatchObject({ authorised: false, writeScope: undefined })
    await close(a.vfs)
    b = await mount(bob)
    await b.vfs.writeFile('/c/top.txt', 'whole chain now\n')
    await close(b.vfs)
    expect(await verifyChain(t.path, { home: home(alice) })).toMatchObject({ ok: true })
  })

  it('opens a format 1 log (no write scopes) and scopes a writer in it', async () => {
    // made by FacetFS format 1: /docs/a.txt, /docs/big.bin, /link -> docs/a.txt (see posix.test.ts)
    await copyFile(fileURLToPath(new URL('fixtures/v1.chain', import.meta.url)), t.path)
    const seeds = Buffer.alloc(96)
    for (let i = 0; i < 96; i++) seeds[i] = i
    const owner = identityFromSeeds('fixture', seeds)
    await acceptChain(t.path, { home: home(owner) })
    const chain = await Chain.open(t.path, { identity: owner, home: home(owner) })
    await shareChainPath(chain, '/docs', bob, { write: true })
    await chain.close()
    const b = await mount(bob)
    await b.vfs.writeFile('/c/docs/from-bob.txt', 'bob\n')
    await expect(b.vfs.writeFile('/c/bob.txt', 'bob\n')).rejects.toMatchObject({ code: 'EACCES' })
    await close(b.vfs)
    expect(await verifyChain(t.path, { home: home(owner) })).toMatchObject({ ok: true })
    const { vfs } = await t.mount(owner, { readOnly: true })
    expect((await vfs.readFile('/c/docs/from-bob.txt')).toString()).toBe('bob\n')
    expect((await vfs.readFile('/c/link')).toString()).toBe('format one\n')
  })

  it('encodes a write scope losslessly, and a decoder that predates it skips it (so no format version bump)', () => {
    const s: WriteScopeEvent = { type: 'writeScope', keyId: Buffer.from(bob.keyId), inos: [5, 2 ** 40] }
    const block = { formatVersion: FORMAT_VERSION, chainId: Buffer.alloc(16, 7), seq: 5, prevHash: Buffer.alloc(32, 1), time: 1, author: Buffer.from(alice.keyId), events: [s, { type: 'tombstone' as const, ino: 9 }] }
    const unsigned = encodeUnsigned(block)
    expect(decodeBlock(appendSignature(unsigned, Buffer.alloc(8))).block.events).toEqual([s, { type: 'tombstone', ino: 9 }])
    // the first event's type byte follows the 101-byte block header
    expect(unsigned.buf[101]).toBe(13)
    unsigned.buf[101] = 200
    expect(decodeBlock(appendSignature(unsigned, Buffer.alloc(8))).block.events).toEqual([{ type: 'tombstone', ino: 9 }])
  })
})
