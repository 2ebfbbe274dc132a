import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import usersView from './index.ts'
import { Chain } from '../../src/chain/store.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { runViewConformance } from '../../src/views/testing.ts'
import { tempHome, tempHomeEach, testIdentity } from '../../test/chain/helpers.ts'

describe('users view', () => {
  const t = tempHomeEach()

  it('lists the chain owner with its key id and public keys, and refuses writes with EROFS', async () => {
    const chain = await Chain.create(t.path, { identity: testIdentity(), home: t.home })
    const vfs = createVfs({ mounts: { '/users': usersView({ chain }) }, logger: silentLogger })
    expect((await vfs.readdirAll('/users')).map(e => e.name)).toEqual(['tester.json', 'by-key'])
    const rec = JSON.parse((await vfs.readFile('/users/tester.json')).toString())
    const keyId = Buffer.from(testIdentity().keyId).toString('hex')
    expect(rec).toMatchObject({ name: 'tester', keyId, role: 'owner', signing: { algorithm: 'ML-DSA-65' }, kem: { algorithm: 'ML-KEM-768' } })
    expect(Buffer.from(rec.signing.publicKey, 'base64').equals(Buffer.from(testIdentity().signingPublicKey))).toBe(true)
    expect((await vfs.stat('/users/tester.json')).size).toBe((await vfs.readFile('/users/tester.json')).length)
    expect(JSON.parse((await vfs.readFile(`/users/by-key/${keyId}.json`)).toString()).name).toBe('tester')
    await expect(vfs.writeFile('/users/tester.json', '{}')).rejects.toMatchObject({ code: 'EROFS' })
    await expect(vfs.stat('/users/nobody.json')).rejects.toMatchObject({ code: 'ENOENT' })
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
