import { afterEach, describe, expect, it } from 'vitest'
import type { Identity } from '../../src/crypto/identity.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { addGroupMember, createGroup, groupKeyId, listGroups } from '../../src/chain/groups.ts'
import { groupGid, groupOfGid } from '../../src/chain/mode-grants.ts'
import { everyoneKeyId, everyoneKeyPair, posixIdOf } from '../../src/chain/posix-ids.ts'
import { hkdf } from '../../src/crypto/primitives.ts'
import { kemKeygen } from '../../src/crypto/pq.ts'
import { listShares, shareChainPath, unshareChainPath } from '../../src/chain/sharing.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import type { ChangeEvent } from '../../src/vfs/changes.ts'
import { chainPeopleEach, person } from './people.ts'

const alice = person('alice')
const bob = person('bob')
const carol = person('carol')

describe('grants picked up while mounted, and chmod/chgrp of a folder as grants', () => {
  const t = chainPeopleEach('facet-mode-grants-')
  const followers: Vfs[] = []
  afterEach(async () => {
    for (const v of followers.splice(0)) await v.close()
  })

  /** Alice's chain: /a/x.txt, /b/secret.txt, /top.txt, folders made 0750 (no o+r). */
  async function aliceChain(): Promise<{ vfs: Vfs; chain: Chain }> {
    const m = await t.mount(alice, { create: true })
    await m.vfs.mkdir('/c/a', 0o750)
    await m.vfs.mkdir('/c/b', 0o750)
    await m.vfs.writeFile('/c/a/x.txt', 'in a\n')
    await m.vfs.writeFile('/c/b/secret.txt', 'in b\n')
    await m.vfs.writeFile('/c/top.txt', 'top\n')
    await m.chain.sync()
    return m
  }

  /** Opens the chain as `id`, read-only, mounted at /c following the log, with the change events its mount sends. */
  async function follower(id: Identity): Promise<{ vfs: Vfs; chain: Chain; events: ChangeEvent[] }> {
    const chain = await Chain.open(t.path, { identity: id, home: t.home(id), readOnly: true })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain, { follow: true }) }, logger: silentLogger })
    followers.push(vfs)
    const events: ChangeEvent[] = []
    vfs.watch('/', e => void events.push(e))
    return { vfs, chain, events }
  }

  /** The paths of the change events since the last call, without the root's. */
  const drain = (events: ChangeEvent[]) => [...new Set(events.splice(0).map(e => e.path))].filter(p => p !== '/c').sort()

  it('shows a folder shared while mounted, and takes away one unshared, with change events for exactly those paths', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/a', bob)
    const b = await follower(bob)
    expect(await t.names(b.vfs, '/c')).toEqual(['a'])

    await shareChainPath(a.chain, '/b', bob)
    await a.chain.sync()
    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c')).toEqual(['a', 'b'])
    expect((await b.vfs.readFile('/c/b/secret.txt')).toString()).toBe('in b\n')
    expect(drain(b.events)).toEqual(['/c/b'])

    await unshareChainPath(a.chain, '/a', bob)
    await a.chain.sync()
    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c')).toEqual(['b'])
    await expect(b.vfs.stat('/c/a/x.txt')).rejects.toMatchObject({ code: 'ENOENT' })
    expect(drain(b.events)).toContain('/c/a')
    expect(drain(b.events)).toEqual([])

    // the last grant withdrawn: an empty chain, not an error
    await unshareChainPath(a.chain, '/b', bob)
    await a.chain.sync()
    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c')).toEqual([])
    await expect(b.vfs.stat('/c/b')).rejects.toMatchObject({ code: 'ENOENT' })

    // and back again, written after the grant went and came
    await a.vfs.writeFile('/c/a/later.txt', 'written while bob had nothing\n')
    await shareChainPath(a.chain, '/a', bob)
    await a.chain.sync()
    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c/a')).toEqual(['later.txt', 'x.txt'])
    expect((await b.vfs.readFile('/c/a/later.txt')).toString()).toBe('written while bob had nothing\n')
  })

  it('shows a group member the folders of a group it is added to while mounted', async () => {
    const a = await aliceChain()
    await createGroup(a.chain, 'team')
    await shareChainPath(a.chain, '/a', bob)
    const { groupAsReader } = await import('../../src/chain/groups.ts')
    await shareChainPath(a.chain, '/b', groupAsReader(a.chain, 'team'))
    const b = await follower(bob)
    expect(await t.names(b.vfs, '/c')).toEqual(['a'])
    // a group event alone (no grant in its block) opens /b for bob
    await addGroupMember(a.chain, 'team', bob)
    await a.chain.sync()
    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c')).toEqual(['a', 'b'])
  })

  it('makes chgrp of a folder to a chain group a grant to the group, g-r and chgrp away withdraw it, and plain gids stay plain', async () => {
    const a = await aliceChain()
    await createGroup(a.chain, 'team')
    await addGroupMember(a.chain, 'team', bob)
    const gid = groupGid(a.chain.chainId, 'team')
    expect(gid).toBe(posixIdOf(groupKeyId(a.chain.chainId, 'team')))
    expect(gid).toBeGreaterThanOrEqual(2 ** 30)
    expect(gid).toBeLessThan(2 ** 31)
    expect(listGroups(a.chain)[0]!.gid).toBe(gid)
    expect(groupOfGid(a.chain.tree, gid)).toBe('team')
    expect(groupOfGid(a.chain.tree, 1000)).toBeUndefined()

    // a gid that is no chain group's: a plain change, no grant
    await a.vfs.chown('/c/a', -1, 1000)
    expect((await a.vfs.stat('/c/a')).gid).toBe(1000)
    expect(listShares(a.chain)).toEqual([])

    await shareChainPath(a.chain, '/b', bob)
    const b = await follower(bob)
    expect(await t.names(b.vfs, '/c')).toEqual(['b'])

    await a.vfs.chown('/c/a', -1, gid)
    expect((await a.vfs.stat('/c/a')).gid).toBe(gid)
    expect(listShares(a.chain).filter(s => s.group)).toEqual([expect.objectContaining({ path: '/a', group: 'team', write: false })])
    await a.chain.sync()
    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c')).toEqual(['a', 'b'])
    expect((await b.vfs.readFile('/c/a/x.txt')).toString()).toBe('in a\n')

    await a.vfs.chmod('/c/a', 0o710)
    expect((await a.vfs.stat('/c/a')).mode & 0o7777).toBe(0o710)
    expect(listShares(a.chain).filter(s => s.group)).toEqual([])
    await a.chain.sync()
    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c')).toEqual(['b'])

    await a.vfs.chmod('/c/a', 0o750)
    await a.chain.sync()
    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c')).toEqual(['a', 'b'])

    // chgrp away from the group withdraws it
    await a.vfs.chown('/c/a', -1, 1000)
    expect(listShares(a.chain).filter(s => s.group)).toEqual([])
    await a.chain.sync()
    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c')).toEqual(['b'])
    expect((await verifyChain(t.path)).ok).toBe(true)
  })

  it('makes chmod o+r a grant to everyone holding the chain (a third identity with no grant reads it), o-r withdraws it, and a remount keeps both', async () => {
    const a = await aliceChain()
    // a folder made 0755 (o+r already) is not published by a chmod that keeps o+r
    await a.vfs.mkdir('/c/open', 0o755)
    await a.vfs.chmod('/c/open', 0o755)
    expect(listShares(a.chain)).toEqual([])

    await a.vfs.chmod('/c/b', 0o754)
    expect(listShares(a.chain)).toEqual([{ keyId: everyoneKeyId(a.chain.chainId).toString('hex'), path: '/b', ino: expect.any(Number), write: false, everyone: true }])
    // the grant lands with the next block, as the chmod does: another process sees it from then on
    await a.chain.sync()
    const c = await follower(carol)
    expect(await t.names(c.vfs, '/c')).toEqual(['b'])
    expect((await c.vfs.readFile('/c/b/secret.txt')).toString()).toBe('in b\n')

    // the mode and the grant survive a remount of the owner's chain
    await t.close(a.vfs)
    const again = await t.mount(alice)
    expect((await again.vfs.stat('/c/b')).mode & 0o7777).toBe(0o754)
    expect(listShares(again.chain).map(s => [s.path, s.everyone])).toEqual([['/b', true]])

    await again.vfs.chmod('/c/b', 0o750)
    expect(listShares(again.chain)).toEqual([])
    await again.chain.sync()
    await c.chain.catchUp()
    expect(await t.names(c.vfs, '/c')).toEqual([])
    await expect(c.vfs.stat('/c/b/secret.txt')).rejects.toMatchObject({ code: 'ENOENT' })
    expect((await verifyChain(t.path)).ok).toBe(true)
  })

  it("refuses a non-owner's chmod o+r, g-r of a chain group and chgrp to one with EPERM, and leaves its other changes plain", async () => {
    const a = await aliceChain()
    await createGroup(a.chain, 'team')
    const gid = groupGid(a.chain.chainId, 'team')
    await a.vfs.chown('/c/a', -1, gid)
    await shareChainPath(a.chain, '/', bob, { write: true })
    await t.close(a.vfs)

    const b = await t.mount(bob)
    await expect(b.vfs.chmod('/c/b', 0o754)).rejects.toMatchObject({ code: 'EPERM' })
    await expect(b.vfs.chmod('/c/a', 0o710)).rejects.toMatchObject({ code: 'EPERM' })
    await expect(b.vfs.chown('/c/b', -1, gid)).rejects.toMatchObject({ code: 'EPERM' })
    await expect(b.vfs.chown('/c/a', -1, 1000)).rejects.toMatchObject({ code: 'EPERM' })
    expect((await b.vfs.stat('/c/b')).mode & 0o7777).toBe(0o750)
    // no reader changes: as before
    await b.vfs.chmod('/c/b', 0o700)
    await b.vfs.chown('/c/b', -1, 1000)
    expect(await b.vfs.stat('/c/b')).toMatchObject({ mode: expect.any(Number), gid: 1000 })
    expect((await b.vfs.stat('/c/b')).mode & 0o7777).toBe(0o700)
    // a file's mode is a plain mode: its metadata is sealed under its folder's key
    await b.vfs.chmod('/c/top.txt', 0o644)
    expect((await b.vfs.stat('/c/top.txt')).mode & 0o7777).toBe(0o644)
  })
})

describe('the key pair of everyone holding a chain', () => {
  it('is made once per chain id: the same pair each call, the one its seed makes, another for another chain', () => {
    const a = new Uint8Array(16).fill(1)
    const b = new Uint8Array(16).fill(2)
    const first = everyoneKeyPair(a)
    expect(everyoneKeyPair(new Uint8Array(a))).toBe(first)
    const fresh = kemKeygen(hkdf(a, 'facet-everyone-seed/1', Buffer.from('facet-everyone/1'), 64))
    expect(Buffer.from(first.publicKey).equals(Buffer.from(fresh.publicKey))).toBe(true)
    expect(Buffer.from(first.secretKey).equals(Buffer.from(fresh.secretKey))).toBe(true)
    expect(Buffer.from(everyoneKeyPair(b).publicKey).equals(Buffer.from(first.publicKey))).toBe(false)
    expect(Object.isFrozen(first)).toBe(true)
  })
})
