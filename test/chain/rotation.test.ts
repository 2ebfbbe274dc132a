import { constants } from 'node:fs'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Identity } from '../../src/crypto/identity.ts'
import { Chain, ForgedDataError, NoAccessError } from '../../src/chain/store.ts'
import { shareChainPath, ShareError, unshareChainPath } from '../../src/chain/sharing.ts'
import { addGroupMember, createGroup, groupAsReader, removeGroupMember } from '../../src/chain/groups.ts'
import { rotateSubtreeKeys } from '../../src/chain/rotation.ts'
import { rekeyChainPath } from '../../src/chain/rekey.ts'
import { everyoneAsReader } from '../../src/chain/mode-grants.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { ChainTree } from '../../src/chain/tree.ts'
import { PartialView } from '../../src/chain/partial.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { chainPeopleEach, person } from './people.ts'
import { eventsFrom, keysOf, openedWith } from './sealed.ts'

const alice = person('alice')
const bob = person('bob')
const carol = person('carol')

/** Content of more than one 128 KiB chunk, different for each seed. */
const big = (seed: number, bytes = 300_000) => Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 31 + seed * 7) & 0xff))

describe('key rotation when read access is taken back', () => {
  const t = chainPeopleEach('facet-rotation-')
  const mount = (identity: Identity, options: { readOnly?: boolean; create?: boolean } = {}) => t.mount(identity, options)
  const names = (vfs: Vfs, dir: string) => t.names(vfs, dir)

  /** Alice's chain: /shared (x.bin of three chunks with an xattr, sub/y.txt, a hard link to /private/p.txt), /private/p.txt. */
  async function aliceChain(): Promise<{ vfs: Vfs; chain: Chain }> {
    const m = await mount(alice, { create: true })
    await m.vfs.mkdir('/c/shared')
    await m.vfs.mkdir('/c/shared/sub')
    await m.vfs.mkdir('/c/private')
    await m.vfs.writeFile('/c/shared/x.bin', big(1))
    await m.vfs.setxattr('/c/shared/x.bin', 'user.note', Buffer.from('kept'))
    await m.vfs.writeFile('/c/shared/sub/y.txt', 'y before\n')
    await m.vfs.writeFile('/c/private/p.txt', 'alice only\n')
    await m.vfs.link('/c/private/p.txt', '/c/shared/p-link')
    return m
  }

  /** What everyone still granted must read, old and new, byte for byte. */
  async function expectAll(vfs: Vfs, root = '/c/shared'): Promise<void> {
    expect((await names(vfs, root)).filter(x => x !== 'p-link')).toEqual(['later.txt', 'sub', 'x.bin'])
    const x = big(1)
    big(2, 5000).copy(x, 140_000)
    expect(Buffer.from(await vfs.readFile(`${root}/x.bin`)).equals(x)).toBe(true)
    expect((await vfs.readFile(`${root}/sub/y.txt`)).toString()).toBe('y before\ny after\n')
    expect((await vfs.readFile(`${root}/later.txt`)).toString()).toBe('made after the rotation\n')
  }

  /** After a revocation: the owner rewrites part of x.bin (its middle chunk), appends to y.txt, and makes later.txt. */
  async function writeAfter(vfs: Vfs, chain: Chain): Promise<void> {
    const h = await vfs.open('/c/shared/x.bin', constants.O_RDWR)
    await vfs.write(h, 140_000, big(2, 5000))
    await vfs.release(h)
    const y = await vfs.open('/c/shared/sub/y.txt', constants.O_WRONLY | constants.O_APPEND)
    await vfs.write(y, 0, Buffer.from('y after\n'))
    await vfs.release(y)
    await vfs.writeFile('/c/shared/later.txt', 'made after the rotation\n')
    await chain.sync()
  }

  it('puts what is written after an unshare out of the revoked reader’s reach, with the keys it kept too; the others read everything', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/shared', bob)
    await shareChainPath(a.chain, '/shared', carol)
    await a.chain.sync()

    // bob reads, and keeps his chain open (and every key it unwrapped)
    const b = await mount(bob, { readOnly: true })
    expect(Buffer.from(await b.vfs.readFile('/c/shared/x.bin')).equals(big(1))).toBe(true)
    const bobKeys = keysOf(b.chain)
    expect(bobKeys.length).toBe(4) // /shared, sub, x.bin, y.txt
    const oldCopy = join(t.work, 'bob-copy.chain')
    await copyFile(t.path, oldCopy)

    const r = await unshareChainPath(a.chain, '/shared', bob, { readers: [carol] })
    expect(r.droppedGrant).toBe(true)
    expect(r.rotation).toMatchObject({ paths: ['/shared'], inodes: 4, links: 1, xattrs: 1, regranted: 1, dropped: 1, stillOpen: [] })
    const rotatedAt = a.chain.headSeq
    await writeAfter(a.vfs, a.chain)
    // alice, in the same process, reads old and new
    await expectAll(a.vfs)
    expect((await a.vfs.getxattr('/c/shared/x.bin', 'user.note'))?.toString()).toBe('kept')

    // every record and chunk written since the rotation is out of reach of bob's old keys
    const after = openedWith(bobKeys, await eventsFrom(t.path, rotatedAt), a.chain.chainId)
    expect(after.tried).toBeGreaterThanOrEqual(8)
    expect(after.opened).toBe(0)
    // (the same check opens what was written before it: the test can fail)
    expect(openedWith(bobKeys, await eventsFrom(t.path, 0), a.chain.chainId).opened).toBeGreaterThan(0)

    // a client that ignores the withdrawal reads the new log with the key of /shared bob unwrapped before: what was written since fails authentication, never reads as garbage
    const sharedIno = a.chain.lookup(a.chain.root, 'shared')!.ino
    const rogue = new ChainTree(a.chain.chainId)
    for (const e of await eventsFrom(t.path, 0)) rogue.apply(e, 0)
    const view = new PartialView({ uid: 0, gid: 0 }, 0n)
    view.add(rogue, rogue.inodes.get(sharedIno)!, b.chain.tree.partial!.granted.get(sharedIno)!, '/shared')
    rogue.partial = view
    expect(() => rogue.names(rogue.inodes.get(sharedIno)!)).toThrow(ForgedDataError)
    for (const ino of rogue.inodes.get(sharedIno)!.children) expect(() => rogue.meta(rogue.inodes.get(ino)!)).toThrow(ForgedDataError)
    await t.close(b.vfs)

    // an honest open as bob finds no grant; his copy of the old log still reads what was there before
    await expect(Chain.open(t.path, { identity: bob, home: t.home(bob), readOnly: true })).rejects.toThrow(NoAccessError)
    const copy = await Chain.open(oldCopy, { identity: bob, home: t.home(bob), readOnly: true })
    const xOld = copy.lookup(copy.lookup(copy.root, 'shared')!, 'x.bin')!
    expect(Buffer.from(await copy.read(xOld, 0, 400_000)).equals(big(1))).toBe(true)
    await copy.close()

    // carol, still granted, and alice after a reopen read everything, old and new
    await t.close(a.vfs)
    const c = await mount(carol, { readOnly: true })
    await expectAll(c.vfs)
    await t.close(c.vfs)
    const again = await mount(alice)
    await expectAll(again.vfs)
    expect(await names(again.vfs, '/c/shared')).toContain('p-link')
    expect((await again.vfs.getxattr('/c/shared/x.bin', 'user.note'))?.toString()).toBe('kept')
    await t.close(again.vfs)
    expect((await verifyChain(t.path, { home: t.home(alice) })).problem).toBeUndefined()
  })

  it('rotates the folders granted to a group when a member is removed: the removed member’s old keys open nothing written after', async () => {
    const a = await aliceChain()
    await createGroup(a.chain, 'team')
    await addGroupMember(a.chain, 'team', bob)
    await addGroupMember(a.chain, 'team', carol)
    await shareChainPath(a.chain, '/shared', groupAsReader(a.chain, 'team'))
    const b = await mount(bob, { readOnly: true })
    expect((await b.vfs.readFile('/c/shared/sub/y.txt')).toString()).toBe('y before\n')
    const bobKeys = keysOf(b.chain)
    await t.close(b.vfs)

    const r = await removeGroupMember(a.chain, 'team', bob.keyId)
    expect(r).toMatchObject({ epoch: 2, rewrapped: 1, rotation: { paths: ['/shared'], inodes: 4, regranted: 1, dropped: 0 } })
    const rotatedAt = a.chain.headSeq
    await writeAfter(a.vfs, a.chain)
    const after = openedWith(bobKeys, await eventsFrom(t.path, rotatedAt), a.chain.chainId)
    expect(after.tried).toBeGreaterThanOrEqual(8)
    expect(after.opened).toBe(0)
    await t.close(a.vfs)

    await expect(Chain.open(t.path, { identity: bob, home: t.home(bob), readOnly: true })).rejects.toThrow(NoAccessError)
    const c = await mount(carol, { readOnly: true })
    await expectAll(c.vfs)
    await t.close(c.vfs)
    expect((await verifyChain(t.path, { home: t.home(alice) })).problem).toBeUndefined()
  })

  it('keeps a reader of the whole chain, mounted and following, reading through a rotation of / while it stays granted, and empties its view when it is unshared in turn', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/', bob)
    await shareChainPath(a.chain, '/', carol)
    await a.chain.sync()
    const chain = await Chain.open(t.path, { identity: bob, home: t.home(bob), readOnly: true })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain, { follow: true }) }, logger: silentLogger })
    try {
      expect(await names(vfs, '/c')).toEqual(['private', 'shared'])
      await unshareChainPath(a.chain, '/', carol, { readers: [bob] })
      await a.vfs.writeFile('/c/shared/later.txt', 'made after the rotation\n')
      await a.chain.sync()
      await chain.catchUp()
      expect((await vfs.readFile('/c/shared/later.txt')).toString()).toBe('made after the rotation\n')
      expect((await vfs.readFile('/c/private/p.txt')).toString()).toBe('alice only\n')
      expect(Buffer.from(await vfs.readFile('/c/shared/x.bin')).equals(big(1))).toBe(true)
      await unshareChainPath(a.chain, '/', bob)
      await a.vfs.writeFile('/c/shared/later.txt', 'out of his reach\n')
      await a.chain.sync()
      await chain.catchUp()
      expect(await names(vfs, '/c')).toEqual([])
    } finally {
      await vfs.close()
    }
  })

  it('rekeys a folder: after it, no key the revoked reader held opens anything in the new log, and the others read everything', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/shared', bob)
    await shareChainPath(a.chain, '/shared', carol)
    const b = await mount(bob, { readOnly: true })
    const bobKeys = keysOf(b.chain)
    await t.close(b.vfs)
    await unshareChainPath(a.chain, '/shared', bob, { readers: [carol] })
    await writeAfter(a.vfs, a.chain)
    const before = await a.vfs.stat('/c/shared/x.bin')
    // before the rekey, the chunks written before the rotation still open with bob's keys
    expect(openedWith(bobKeys, await eventsFrom(t.path, 0), a.chain.chainId).opened).toBeGreaterThan(0)

    const r = await rekeyChainPath(a.chain, '/shared', { readers: [carol] })
    // it rotates again first, so every chunk of the subtree is sealed again: x.bin's three, y.txt's and later.txt's
    expect(r).toMatchObject({ files: 3, chunks: 5, rotation: { inodes: 5 } })
    const all = openedWith(bobKeys, await eventsFrom(t.path, 0), a.chain.chainId)
    expect(all.tried).toBeGreaterThan(8)
    expect(all.opened).toBe(0)
    await expectAll(a.vfs)
    const now = await a.vfs.stat('/c/shared/x.bin')
    expect([now.mtimeNs, now.ctimeNs, now.size]).toEqual([before.mtimeNs, before.ctimeNs, before.size])
    await t.close(a.vfs)

    const c = await mount(carol, { readOnly: true })
    await expectAll(c.vfs)
    await t.close(c.vfs)
    const again = await mount(alice)
    await expectAll(again.vfs)
    expect((await again.vfs.readFile('/c/private/p.txt')).toString()).toBe('alice only\n')
    expect((await again.vfs.getxattr('/c/shared/x.bin', 'user.note'))?.toString()).toBe('kept')
    await t.close(again.vfs)
    expect((await verifyChain(t.path, { home: t.home(alice) })).problem).toBeUndefined()
  })

  it('refuses a rotation when a remaining reader’s public key is unknown, changing nothing, and rotating a file, with ShareError', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/shared', bob)
    await shareChainPath(a.chain, '/shared', carol)
    const head = a.chain.headSeq
    await expect(unshareChainPath(a.chain, '/shared', bob)).rejects.toThrow(/public key of .* is not known here/)
    expect(a.chain.headSeq).toBe(head)
    await expect(rotateSubtreeKeys(a.chain, ['/shared/x.bin'])).rejects.toThrow(ShareError)
    // nothing changed: both still read
    await t.close(a.vfs)
    for (const who of [bob, carol]) {
      const m = await mount(who, { readOnly: true })
      expect((await m.vfs.readFile('/c/shared/sub/y.txt')).toString()).toBe('y before\n')
      await t.close(m.vfs)
    }
  })

  it('keeps a grant to everyone (chmod o+r) inside the rotated subtree without being told its key: anyone holding the log still reads old and new there', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/shared', bob)
    await shareChainPath(a.chain, '/shared/sub', everyoneAsReader(a.chain.chainId))
    await a.chain.sync()
    const report = await unshareChainPath(a.chain, '/shared', bob)
    expect(report.droppedGrant).toBe(true)
    expect(report.rotation).toBeDefined()
    await writeAfter(a.vfs, a.chain)
    await t.close(a.vfs)
    // carol has no grant and is in no group: she reads /shared/sub through the everyone grant, made again under the new key
    const c = await mount(carol, { readOnly: true })
    expect(await names(c.vfs, '/c/shared/sub')).toEqual(['y.txt'])
    expect((await c.vfs.readFile('/c/shared/sub/y.txt')).toString()).toBe('y before\ny after\n')
    await t.close(c.vfs)
    expect((await verifyChain(t.path)).ok).toBe(true)
  })
})
