import { describe, expect, it } from 'vitest'
import { rotateSubtreeKeys } from '../../src/chain/rotation.ts'
import { shareChainPath, unshareChainPath } from '../../src/chain/sharing.ts'
import { chainPeopleEach, person } from './people.ts'

const alice = person('alice')
const bob = person('bob')
const carol = person('carol')

describe('/.history across key rotations: each block opens with the keys of its time', () => {
  const t = chainPeopleEach('facet-history-rotation-')

  it('shows the owner the tree before a rotation of / (old root key) and after it', async () => {
    const a = await t.mount(alice, { create: true })
    await a.vfs.mkdir('/c/d')
    await a.vfs.writeFile('/c/d/f.txt', 'before\n')
    await a.chain.sync()
    const before = a.chain.headSeq
    await rotateSubtreeKeys(a.chain, ['/'])
    await a.vfs.writeFile('/c/d/f.txt', 'after\n')
    await a.chain.sync()
    expect((await a.vfs.readFile(`/c/.history/${before}/d/f.txt`)).toString()).toBe('before\n')
    expect((await a.vfs.readFile(`/c/.history/${a.chain.headSeq}/d/f.txt`)).toString()).toBe('after\n')
    expect((await a.vfs.readFile('/c/d/f.txt')).toString()).toBe('after\n')
    await t.close(a.vfs)
    // and after a remount, which unwraps only the newest grant of the root
    const again = await t.mount(alice, { readOnly: true })
    expect((await again.vfs.readFile(`/c/.history/${before}/d/f.txt`)).toString()).toBe('before\n')
  })

  it('shows a reader of one folder what it held before a rotation that kept the reader (another reader revoked)', async () => {
    const a = await t.mount(alice, { create: true })
    await a.vfs.mkdir('/c/shared')
    await a.vfs.writeFile('/c/shared/s.txt', 'first\n')
    await shareChainPath(a.chain, '/shared', bob)
    await shareChainPath(a.chain, '/shared', carol)
    const before = a.chain.headSeq
    await unshareChainPath(a.chain, '/shared', carol, { readers: [bob] })
    await a.vfs.writeFile('/c/shared/s.txt', 'second\n')
    await a.chain.sync()
    await t.close(a.vfs)

    const b = await t.mount(bob, { readOnly: true })
    expect((await b.vfs.readFile('/c/shared/s.txt')).toString()).toBe('second\n')
    expect((await b.vfs.readFile(`/c/.history/${before}/shared/s.txt`)).toString()).toBe('first\n')
    expect(await t.names(b.vfs, `/c/.history/${before}`)).toEqual(['shared'])
  })
})
