import { describe, expect, it } from 'vitest'
import type { Identity } from '../../src/crypto/identity.ts'
import { DecryptError } from '../../src/crypto/primitives.ts'
import { Chain, ChainIntegrityError, NoAccessError } from '../../src/chain/store.ts'
import { addGroupMember, createGroup, groupAsReader, groupKeyId, groupSecretsOf, listGroups, removeGroupMember } from '../../src/chain/groups.ts'
import { listShares, shareChainPath, ShareError, unshareChainPath } from '../../src/chain/sharing.ts'
import { unwrapForReader } from '../../src/chain/keys.ts'
import { compactChainFile } from '../../src/chain/compact.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { appendSignature, decodeBlock, encodeUnsigned, FORMAT_VERSION, type GroupEvent } from '../../src/chain/format.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { chainPeopleEach, person } from './people.ts'
import { groupGid } from '../../src/chain/mode-grants.ts'

const alice = person('alice')
const bob = person('bob')
const carol = person('carol')
const dave = person('dave')
const hex = (id: { keyId: Uint8Array }) => Buffer.from(id.keyId).toString('hex')

describe('groups kept in the chain', () => {
  const t = chainPeopleEach('facet-groups-')
  const home = (id: Identity) => t.home(id)
  // everyone but the owner opens read-only
  const mount = (identity: Identity, options: { create?: boolean } = {}) => t.mount(identity, { readOnly: identity !== alice, ...options })
  const close = (vfs: Vfs) => t.close(vfs)
  const names = (vfs: Vfs, dir: string) => t.names(vfs, dir)

  /** Alice's chain: /a/x.txt, /a/sub/y.txt, /b/secret.txt, /top.txt; still open. */
  async function aliceChain(): Promise<{ vfs: Vfs; chain: Chain }> {
    const m = await mount(alice, { create: true })
    await m.vfs.mkdir('/c/a')
    await m.vfs.mkdir('/c/a/sub')
    await m.vfs.mkdir('/c/b')
    await m.vfs.writeFile('/c/a/x.txt', 'for the team\n')
    await m.vfs.writeFile('/c/a/sub/y.txt', 'deeper\n')
    await m.vfs.writeFile('/c/b/secret.txt', 'alice only\n')
    await m.vfs.writeFile('/c/top.txt', 'alice only too\n')
    return m
  }

  it('lets a member read a folder granted to its group, made later included, and a non-member open nothing', async () => {
    const a = await aliceChain()
    const made = await createGroup(a.chain, 'team')
    expect(made).toEqual({ name: 'team', keyId: groupKeyId(a.chain.chainId, 'team').toString('hex'), gid: groupGid(a.chain.chainId, 'team'), epoch: 1, members: [], grants: [] })
    await expect(createGroup(a.chain, 'team')).rejects.toThrow(new ShareError("group 'team' exists already"))
    await expect(createGroup(a.chain, '../x')).rejects.toBeInstanceOf(ShareError)
    await addGroupMember(a.chain, 'team', bob)
    await expect(addGroupMember(a.chain, 'team', bob)).rejects.toThrow("'bob' is a member of group 'team' already")
    expect(await shareChainPath(a.chain, '/a', groupAsReader(a.chain, 'team'))).toEqual({ ino: expect.any(Number), path: '/a', authorised: false })
    await a.vfs.writeFile('/c/a/later.txt', 'after the grant\n')
    expect(listShares(a.chain)).toEqual([{ keyId: made.keyId, writerName: undefined, path: '/a', ino: expect.any(Number), write: false, group: 'team' }])
    expect(listGroups(a.chain)).toEqual([{ name: 'team', keyId: made.keyId, gid: made.gid, epoch: 1, members: [{ name: 'bob', keyId: hex(bob) }], grants: [{ ino: expect.any(Number), path: '/a' }] }])
    await close(a.vfs)

    const b = await mount(bob)
    expect(await names(b.vfs, '/c')).toEqual(['a'])
    expect(await names(b.vfs, '/c/a')).toEqual(['later.txt', 'sub', 'x.txt'])
    expect((await b.vfs.readFile('/c/a/x.txt')).toString()).toBe('for the team\n')
    expect((await b.vfs.readFile('/c/a/sub/y.txt')).toString()).toBe('deeper\n')
    expect((await b.vfs.readFile('/c/a/later.txt')).toString()).toBe('after the grant\n')
    await expect(b.vfs.stat('/c/b')).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(b.vfs.stat('/c/top.txt')).rejects.toMatchObject({ code: 'ENOENT' })
    await close(b.vfs)

    // carol is no member: the group's secret is wrapped for bob alone
    await expect(Chain.open(t.path, { identity: carol, home: home(carol), readOnly: true })).rejects.toBeInstanceOf(NoAccessError)

    // the groups survive a compaction, and the log verifies
    await compactChainFile(t.path, { identity: alice, home: home(alice) })
    expect(await verifyChain(t.path, { home: home(alice) })).toMatchObject({ ok: true })
    const again = await mount(bob)
    expect((await again.vfs.readFile('/c/a/x.txt')).toString()).toBe('for the team\n')
    await close(again.vfs)

    // the grant withdrawn: bob (an honest client) opens nothing
    const a2 = await mount(alice)
    expect(await unshareChainPath(a2.chain, '/a', groupAsReader(a2.chain, 'team'))).toMatchObject({ revokedWrite: false, droppedGrant: true, rotation: { paths: ['/a'], dropped: 1 } })
    await close(a2.vfs)
    await expect(Chain.open(t.path, { identity: bob, home: home(bob), readOnly: true })).rejects.toBeInstanceOf(NoAccessError)
  })

  it('rotates the group key when a member is removed: grants after it are out of the removed member’s reach, the others read on', async () => {
    const a = await aliceChain()
    await createGroup(a.chain, 'team')
    await addGroupMember(a.chain, 'team', bob)
    await addGroupMember(a.chain, 'team', carol)
    await shareChainPath(a.chain, '/a', groupAsReader(a.chain, 'team'))
    // the group secret bob could unwrap while a member, kept as a dishonest client would
    const kept = groupSecretsOf(a.chain.tree, bob).get(groupKeyId(a.chain.chainId, 'team').toString('hex'))!
    expect(kept.name).toBe('team')
    const oldKey = Buffer.from(a.chain.tree.groups.get('team')!.kemKey)

    await expect(removeGroupMember(a.chain, 'team', dave.keyId)).rejects.toThrow(/is not a member of group 'team'/)
    expect(await removeGroupMember(a.chain, 'team', bob.keyId)).toMatchObject({ epoch: 2, rewrapped: 1, rotation: { paths: ['/a'] } })
    expect(Buffer.from(a.chain.tree.groups.get('team')!.kemKey).equals(oldKey)).toBe(false)
    expect(listGroups(a.chain)[0]).toMatchObject({ epoch: 2, members: [{ name: 'carol', keyId: hex(carol) }], grants: [{ path: '/a' }] })
    // a grant made after the removal
    await shareChainPath(a.chain, '/b', groupAsReader(a.chain, 'team'))
    const reader = groupKeyId(a.chain.chainId, 'team')
    const grants = a.chain.tree.grants.filter(g => reader.equals(g.reader))
    expect(grants).toHaveLength(2)
    // bob's old group secret opens neither the new grant nor the re-wrapped one
    for (const g of grants) expect(() => unwrapForReader(g, a.chain.chainId, kept.secretKey)).toThrow(DecryptError)
    expect(groupSecretsOf(a.chain.tree, bob).size).toBe(0)
    await close(a.vfs)

    await expect(Chain.open(t.path, { identity: bob, home: home(bob), readOnly: true })).rejects.toBeInstanceOf(NoAccessError)
    const c = await mount(carol)
    expect(await names(c.vfs, '/c')).toEqual(['a', 'b'])
    expect((await c.vfs.readFile('/c/a/x.txt')).toString()).toBe('for the team\n')
    expect((await c.vfs.readFile('/c/b/secret.txt')).toString()).toBe('alice only\n')
    await expect(c.vfs.stat('/c/top.txt')).rejects.toMatchObject({ code: 'ENOENT' })
    await close(c.vfs)
  })

  it('keeps the owner able to add members after it removed itself, and refuses group changes by a non-owner with ShareError', async () => {
    const a = await aliceChain()
    await createGroup(a.chain, 'team')
    await addGroupMember(a.chain, 'team', alice)
    expect(listGroups(a.chain)[0]!.members).toEqual([{ name: 'alice', keyId: hex(alice) }])
    await removeGroupMember(a.chain, 'team', alice.keyId)
    await addGroupMember(a.chain, 'team', carol)
    await shareChainPath(a.chain, '/a', groupAsReader(a.chain, 'team'))
    await shareChainPath(a.chain, '/', bob)
    await close(a.vfs)
    const c = await mount(carol)
    expect((await c.vfs.readFile('/c/a/x.txt')).toString()).toBe('for the team\n')
    await close(c.vfs)
    const b = await mount(bob)
    await expect(createGroup(b.chain, 'other')).rejects.toBeInstanceOf(ShareError)
    await expect(addGroupMember(b.chain, 'team', bob)).rejects.toBeInstanceOf(ShareError)
    await close(b.vfs)
  })

  it('refuses on open, and in facet verify, a group event signed by a writer other than the owner', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/', bob, { write: true })
    await close(a.vfs)
    const b = await Chain.open(t.path, { identity: bob, home: home(bob) })
    expect(b.readOnly).toBe(false)
    await b.commitEvents([{ type: 'group', name: 'forged', epoch: 1, kemKey: bob.kemPublicKey, wraps: [] }])
    await b.close()
    await expect(Chain.open(t.path, { identity: alice, home: home(alice) })).rejects.toThrow(ChainIntegrityError)
    await expect(Chain.open(t.path, { identity: alice, home: home(alice) })).rejects.toThrow(/a group written by an identity other than the owner/)
    expect(await verifyChain(t.path, { home: home(alice) })).toMatchObject({ ok: false })
  })

  it('encodes a group event losslessly, and a decoder that does not know its type skips it and keeps the other events', () => {
    const g: GroupEvent = { type: 'group', name: 'team', epoch: 3, kemKey: bob.kemPublicKey, wraps: [] }
    const block = { formatVersion: FORMAT_VERSION, chainId: Buffer.alloc(16, 7), seq: 5, prevHash: Buffer.alloc(32, 1), time: 1, author: Buffer.from(alice.keyId), events: [g, { type: 'tombstone' as const, ino: 9 }] }
    const unsigned = encodeUnsigned(block)
    expect(decodeBlock(appendSignature(unsigned, Buffer.alloc(8))).block.events).toEqual([{ ...g, kemKey: Buffer.from(bob.kemPublicKey) }, { type: 'tombstone', ino: 9 }])
    // the first event's type byte follows the 101-byte block header: made a type no decoder knows, as event 12 is to a decoder that predates it
    expect(unsigned.buf[101]).toBe(12)
    unsigned.buf[101] = 200
    expect(decodeBlock(appendSignature(unsigned, Buffer.alloc(8))).block.events).toEqual([{ type: 'tombstone', ino: 9 }])
  })
})
