import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import usersView from './index.ts'
import { Chain } from '../../src/chain/store.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { runViewConformance } from '../../src/views/testing.ts'
import { tempHome, tempHomeEach, testIdentity } from '../../test/chain/helpers.ts'
import { generateIdentity } from '../../src/crypto/identity.ts'
import { shareChainPath } from '../../src/chain/sharing.ts'
import { addGroupMember, createGroup, groupAsReader, groupKeyId } from '../../src/chain/groups.ts'
import { posixIdOf } from '../../src/chain/posix-ids.ts'

describe('users view', () => {
  const t = tempHomeEach()

  it('lists the chain owner with its key id and public keys, and refuses writes with EROFS', async () => {
    const chain = await Chain.create(t.path, { identity: testIdentity(), home: t.home })
    const vfs = createVfs({ mounts: { '/users': usersView({ chain }) }, logger: silentLogger })
    expect((await vfs.readdirAll('/users')).map(e => e.name)).toEqual(['tester.json', 'by-key', 'grants.json', 'groups'])
    const rec = JSON.parse((await vfs.readFile('/users/tester.json')).toString())
    const keyId = Buffer.from(testIdentity().keyId).toString('hex')
    expect(rec).toMatchObject({ name: 'tester', keyId, uid: posixIdOf(testIdentity().keyId), role: 'owner', signing: { algorithm: 'ML-DSA-65' }, kem: { algorithm: 'ML-KEM-768' } })
    expect(Buffer.from(rec.signing.publicKey, 'base64').equals(Buffer.from(testIdentity().signingPublicKey))).toBe(true)
    expect((await vfs.stat('/users/tester.json')).size).toBe((await vfs.readFile('/users/tester.json')).length)
    expect(JSON.parse((await vfs.readFile(`/users/by-key/${keyId}.json`)).toString()).name).toBe('tester')
    await expect(vfs.writeFile('/users/tester.json', '{}')).rejects.toMatchObject({ code: 'EROFS' })
    await expect(vfs.stat('/users/nobody.json')).rejects.toMatchObject({ code: 'ENOENT' })
    await vfs.close()
    await chain.close()
  })
})

describe('users view of a shared chain', () => {
  const t = tempHomeEach()

  it('shows writers and readers with the folders shared with them, and every grant in grants.json', async () => {
    const chain = await Chain.create(t.path, { identity: testIdentity(), home: t.home })
    const person = (name: string) => (({ seeds: _s, ...id }) => id)(generateIdentity(name))
    const [bob, carol] = [person('bob'), person('carol')]
    const vfs = createVfs({ mounts: { '/users': usersView({ chain }), '/c': (await import('../../src/chain/mount.ts')).chainMount(chain, { closeChain: false }) }, logger: silentLogger })
    await vfs.mkdir('/c/projects')
    await shareChainPath(chain, '/projects', carol)
    await shareChainPath(chain, '/', bob, { write: true })
    const hex = (id: { keyId: Uint8Array }) => Buffer.from(id.keyId).toString('hex')
    expect((await vfs.readdirAll('/users')).map(e => e.name)).toEqual(['tester.json', 'bob.json', `reader-${hex(carol).slice(0, 8)}.json`, 'by-key', 'grants.json', 'groups'])
    expect(JSON.parse((await vfs.readFile('/users/bob.json')).toString())).toMatchObject({ name: 'bob', role: 'writer', grants: [{ path: '/', access: 'write' }] })
    const reader = JSON.parse((await vfs.readFile(`/users/reader-${hex(carol).slice(0, 8)}.json`)).toString())
    expect(reader).toEqual({ name: `reader-${hex(carol).slice(0, 8)}`, keyId: hex(carol), uid: posixIdOf(carol.keyId), role: 'reader', grants: [{ path: '/projects', access: 'read' }] })
    expect(JSON.parse((await vfs.readFile('/users/grants.json')).toString())).toEqual([
      { path: '/', name: 'tester', keyId: hex(testIdentity()), access: 'write' },
      { path: '/', name: 'bob', keyId: hex(bob), access: 'write' },
      { path: '/projects', name: `reader-${hex(carol).slice(0, 8)}`, keyId: hex(carol), access: 'read' },
    ])
    await vfs.close()
    await chain.close()
  })
})

describe('users view of a chain with groups', () => {
  const t = tempHomeEach()

  it('shows each group in groups/<name>.json with its members and grants, and no reader record for the group', async () => {
    const chain = await Chain.create(t.path, { identity: testIdentity(), home: t.home })
    const person = (name: string) => (({ seeds: _s, ...id }) => id)(generateIdentity(name))
    const [bob, carol] = [person('bob'), person('carol')]
    const vfs = createVfs({ mounts: { '/users': usersView({ chain }), '/c': (await import('../../src/chain/mount.ts')).chainMount(chain, { closeChain: false }) }, logger: silentLogger })
    await vfs.mkdir('/c/projects')
    await createGroup(chain, 'team')
    await createGroup(chain, 'empty')
    await addGroupMember(chain, 'team', bob)
    await addGroupMember(chain, 'team', carol)
    await shareChainPath(chain, '/projects', groupAsReader(chain, 'team'))
    const hex = (id: { keyId: Uint8Array }) => Buffer.from(id.keyId).toString('hex')
    expect((await vfs.readdirAll('/users')).map(e => e.name)).toEqual(['tester.json', 'by-key', 'grants.json', 'groups'])
    expect((await vfs.readdirAll('/users/groups')).map(e => e.name)).toEqual(['empty.json', 'team.json'])
    const ino = chain.lookup(chain.root, 'projects')!.ino
    expect(JSON.parse((await vfs.readFile('/users/groups/team.json')).toString())).toEqual({
      name: 'team',
      keyId: groupKeyId(chain.chainId, 'team').toString('hex'),
      gid: posixIdOf(groupKeyId(chain.chainId, 'team')),
      epoch: 1,
      members: [
        { name: 'bob', keyId: hex(bob) },
        { name: 'carol', keyId: hex(carol) },
      ],
      grants: [{ ino, path: '/projects' }],
    })
    expect((await vfs.stat('/users/groups/team.json')).size).toBe((await vfs.readFile('/users/groups/team.json')).length)
    await vfs.close()
    await chain.close()
  })
})

describe('users view conformance', () => {
  let home: Awaited<ReturnType<typeof tempHome>>
  let chain: Chain
  beforeAll(async () => {
    home = await tempHome()
    chain = await Chain.create(home.path, { identity: testIdentity(), home: home.home })
  })
  afterAll(async () => {
    await chain.close()
    await home.cleanup()
  })
  runViewConformance('users', () => usersView({ chain }), { expectNames: ['tester.json'] })
})
