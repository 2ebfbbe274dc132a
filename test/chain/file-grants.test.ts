import { constants } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import type { Identity } from '../../src/crypto/identity.ts'
import { compactChain } from '../../src/chain/compact.ts'
import { rekeyChainPath } from '../../src/chain/rekey.ts'
import { everyoneKeyId } from '../../src/chain/posix-ids.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { listShares, shareChainPath, ShareError, unshareChainPath } from '../../src/chain/sharing.ts'
import { Chain, NoAccessError } from '../../src/chain/store.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { chainPeopleEach, person } from './people.ts'
import { eventsFrom, keysOf, openedWith } from './sealed.ts'

const alice = person('alice')
const bob = person('bob')
const carol = person('carol')

/** Content that ends in zero bytes (what the padding of its last chunk adds too), of more than two 128 KiB chunks with `extra`. */
const report = (extra = 0) => Buffer.concat([Buffer.from('quarterly report\n'), Buffer.alloc(1000), Buffer.from(Array.from({ length: extra }, (_, i) => (i * 7) & 0xff))])

describe('a grant of one file: the reader sees that file alone, follows its changes, and loses it with its keys rotated', () => {
  const t = chainPeopleEach('facet-file-grants-')
  const followers: Vfs[] = []
  afterEach(async () => {
    for (const v of followers.splice(0)) await v.close()
  })

  /** Alice's chain: /docs (0750) with report.bin and secret.txt, /top.txt. */
  async function aliceChain(): Promise<{ vfs: Vfs; chain: Chain }> {
    const m = await t.mount(alice, { create: true })
    await m.vfs.mkdir('/c/docs', 0o750)
    await m.vfs.writeFile('/c/docs/report.bin', report())
    await m.vfs.writeFile('/c/docs/secret.txt', 'alice only\n')
    await m.vfs.writeFile('/c/top.txt', 'top\n')
    await m.vfs.symlink('report.bin', '/c/docs/latest')
    await m.chain.sync()
    return m
  }

  /** Opens the chain as `id`, read-only, mounted at /c following the log. */
  async function follower(id: Identity): Promise<{ vfs: Vfs; chain: Chain }> {
    const chain = await Chain.open(t.path, { identity: id, home: t.home(id), readOnly: true })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain, { follow: true }) }, logger: silentLogger })
    followers.push(vfs)
    return { vfs, chain }
  }

  async function append(vfs: Vfs, path: string, data: Buffer): Promise<void> {
    const h = await vfs.open(path, constants.O_WRONLY | constants.O_APPEND)
    await vfs.write(h, 0, data)
    await vfs.release(h)
  }

  it('lists the file and the folders above it only, with its exact size, mode and content, and follows rewrites, renames and chmods', async () => {
    const a = await aliceChain()
    expect(await shareChainPath(a.chain, '/docs/report.bin', bob)).toMatchObject({ path: '/docs/report.bin', authorised: false })
    expect(listShares(a.chain)).toEqual([{ keyId: Buffer.from(bob.keyId).toString('hex'), path: '/docs/report.bin', ino: expect.any(Number), write: false }])

    const b = await follower(bob)
    expect(await t.names(b.vfs, '/c')).toEqual(['docs'])
    expect(await t.names(b.vfs, '/c/docs')).toEqual(['report.bin'])
    expect(await b.vfs.stat('/c/docs/report.bin')).toMatchObject({ size: 1017 })
    expect((await b.vfs.stat('/c/docs/report.bin')).mode & 0o7777).toBe(0o644)
    expect(Buffer.from(await b.vfs.readFile('/c/docs/report.bin')).equals(report())).toBe(true)
    await expect(b.vfs.stat('/c/docs/secret.txt')).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(b.vfs.stat('/c/top.txt')).rejects.toMatchObject({ code: 'ENOENT' })

    // alice appends past two chunks, renames it in its folder and changes its mode: bob follows each
    await append(a.vfs, '/c/docs/report.bin', report(300_000).subarray(1017))
    await a.vfs.rename('/c/docs/report.bin', '/c/docs/final.bin')
    await a.vfs.chmod('/c/docs/final.bin', 0o640)
    await a.chain.sync()
    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c/docs')).toEqual(['final.bin'])
    expect(await b.vfs.stat('/c/docs/final.bin')).toMatchObject({ size: 301_017 })
    expect((await b.vfs.stat('/c/docs/final.bin')).mode & 0o7777).toBe(0o640)
    expect(Buffer.from(await b.vfs.readFile('/c/docs/final.bin')).equals(report(300_000))).toBe(true)
    expect((await verifyChain(t.path)).ok).toBe(true)

    // compaction keeps the file's own copy of its metadata: bob reads the compacted log the same
    await compactChain(a.chain)
    await t.close(a.vfs)
    const again = await follower(bob)
    expect(await t.names(again.vfs, '/c/docs')).toEqual(['final.bin'])
    expect(Buffer.from(await again.vfs.readFile('/c/docs/final.bin')).equals(report(300_000))).toBe(true)
    expect((await verifyChain(t.path, { home: t.home(alice) })).problem).toBeUndefined()
  })

  it('refuses write rights on a file and grants of a symlink, and leaves the log as it was', async () => {
    const a = await aliceChain()
    const head = a.chain.headSeq
    await expect(shareChainPath(a.chain, '/docs/report.bin', bob, { write: true })).rejects.toThrow(/write rights are given on folders/)
    await expect(shareChainPath(a.chain, '/docs/latest', bob)).rejects.toThrow(ShareError)
    expect(a.chain.headSeq).toBe(head)
    expect(listShares(a.chain)).toEqual([])
  })

  it('rotates the file’s key on unshare: what is written after is out of reach of the key bob kept; carol, still granted, reads old and new', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/docs/report.bin', bob)
    await shareChainPath(a.chain, '/docs/report.bin', carol)
    const b = await follower(bob)
    expect(Buffer.from(await b.vfs.readFile('/c/docs/report.bin')).equals(report())).toBe(true)
    const bobKeys = keysOf(b.chain)
    expect(bobKeys).toHaveLength(1)

    const r = await unshareChainPath(a.chain, '/docs/report.bin', bob, { readers: [carol] })
    expect(r.rotation).toMatchObject({ paths: ['/docs/report.bin'], inodes: 1, regranted: 1, dropped: 1 })
    const rotatedAt = a.chain.headSeq
    await append(a.vfs, '/c/docs/report.bin', report(300_000).subarray(1017))
    await a.chain.sync()

    const after = openedWith(bobKeys, await eventsFrom(t.path, rotatedAt), a.chain.chainId)
    expect(after.tried).toBeGreaterThanOrEqual(4)
    expect(after.opened).toBe(0)
    expect(openedWith(bobKeys, await eventsFrom(t.path, 0), a.chain.chainId).opened).toBeGreaterThan(0)

    await b.chain.catchUp()
    expect(await t.names(b.vfs, '/c')).toEqual([])
    await t.close(a.vfs)
    await expect(Chain.open(t.path, { identity: bob, home: t.home(bob), readOnly: true })).rejects.toThrow(NoAccessError)
    // carol reads the chunks sealed before the rotation (their key in the file's own metadata) and after it
    const c = await follower(carol)
    expect(Buffer.from(await c.vfs.readFile('/c/docs/report.bin')).equals(report(300_000))).toBe(true)
    expect((await verifyChain(t.path, { home: t.home(alice) })).problem).toBeUndefined()
  })

  it('keeps no copy of a file’s own metadata once its last grant is gone: after the folder’s rekey the log holds none, and nothing the key bob kept opens', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/docs/report.bin', bob)
    const b = await follower(bob)
    const bobKeys = keysOf(b.chain)
    expect(bobKeys).toHaveLength(1)
    await unshareChainPath(a.chain, '/docs/report.bin', bob)
    // the file's own copy of its metadata from before the unshare is still the latest one, under the key bob kept
    expect(openedWith(bobKeys, (await eventsFrom(t.path, 0)).filter(e => e.type === 'fileMeta'), a.chain.chainId).opened).toBeGreaterThan(0)
    await rekeyChainPath(a.chain, '/docs')
    const left = openedWith(bobKeys, await eventsFrom(t.path, 0), a.chain.chainId)
    expect(left.tried).toBeGreaterThanOrEqual(8)
    expect(left.opened).toBe(0)
    expect((await eventsFrom(t.path, 0)).some(e => e.type === 'fileMeta')).toBe(false)
    expect(Buffer.from(await a.vfs.readFile('/c/docs/report.bin')).equals(report())).toBe(true)
  })

  it('makes chmod o+r of a file (after 600) a grant of that file to everyone, o-r withdraws it; a writer’s plain chmod of a file stays plain, its o+r is EPERM', async () => {
    const a = await aliceChain()
    // a file made 0644 is not published by a chmod that keeps o+r
    await a.vfs.chmod('/c/docs/report.bin', 0o644)
    expect(listShares(a.chain)).toEqual([])
    await a.vfs.chmod('/c/docs/report.bin', 0o600)
    await a.vfs.chmod('/c/docs/report.bin', 0o604)
    expect(listShares(a.chain)).toEqual([{ keyId: everyoneKeyId(a.chain.chainId).toString('hex'), path: '/docs/report.bin', ino: expect.any(Number), write: false, everyone: true }])
    // the grant lands with the next block, as the chmod does: another process sees it from then on
    await a.chain.sync()
    const c = await follower(carol)
    expect(await t.names(c.vfs, '/c/docs')).toEqual(['report.bin'])
    expect(Buffer.from(await c.vfs.readFile('/c/docs/report.bin')).equals(report())).toBe(true)

    await a.vfs.chmod('/c/docs/report.bin', 0o600)
    expect(listShares(a.chain)).toEqual([])
    await c.chain.catchUp()
    expect(await t.names(c.vfs, '/c')).toEqual([])

    // bob, a writer of /docs: chmod 600 of a file no one was given is his to make; o+r is not
    await shareChainPath(a.chain, '/docs', bob, { write: true })
    await t.close(a.vfs)
    const b = await t.mount(bob)
    await b.vfs.chmod('/c/docs/secret.txt', 0o600)
    expect((await b.vfs.stat('/c/docs/secret.txt')).mode & 0o7777).toBe(0o600)
    await expect(b.vfs.chmod('/c/docs/secret.txt', 0o604)).rejects.toMatchObject({ code: 'EPERM' })
    expect((await b.vfs.stat('/c/docs/secret.txt')).mode & 0o7777).toBe(0o600)
  })

  it('keeps a file’s reader current when a scoped writer of its folder rewrites it, and verify accepts the writer’s blocks', async () => {
    const a = await aliceChain()
    await shareChainPath(a.chain, '/docs', bob, { write: true })
    await shareChainPath(a.chain, '/docs/report.bin', carol)
    await t.close(a.vfs)

    const b = await t.mount(bob)
    await append(b.vfs, '/c/docs/report.bin', Buffer.from('signed off by bob\n'))
    await b.chain.sync()
    await t.close(b.vfs)

    const c = await follower(carol)
    expect((await c.vfs.readFile('/c/docs/report.bin')).toString()).toBe(report().toString() + 'signed off by bob\n')
    expect((await verifyChain(t.path, { home: t.home(alice) })).problem).toBeUndefined()
  })
})
