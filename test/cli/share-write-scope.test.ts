import { describe, expect, it } from 'vitest'
import { loadIdentity } from '../../src/crypto/identity.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { fuseSkip, sh } from '../helpers/fuse.ts'
import { PASS, shareSetupEach, stop } from './share-setup.ts'

describe.skipIf(fuseSkip)('facet share /a --with NAME --write: a writer limited to a folder, mounting through facet up --files-store', () => {
  const t = shareSetupEach()

  it('shares /a with --write: bob writes in /a through his mount, is refused elsewhere with EACCES, and unshare /a --write takes it back', async () => {
    const shared = await t.run(['share', '/a', '--with', 'bob', '--write', '--files-store', t.store], t.alice)
    expect([shared.code, shared.stdout]).toEqual([0, expect.stringMatching(/^shared \/a with 'bob' \(key [0-9a-f]{16}\): read and write\n$/)])
    expect(shared.stderr).toMatch(/bob may now write only in \/a \(and below\)\n/)
    expect((await t.run(['share', '--list', '--files-store', t.store], t.alice)).stdout).toMatch(/^\/a\tbob\tread\+write\t[0-9a-f]{16}\n$/)

    const dir = await t.mountDir()
    const up = await t.bobUp(dir)
    expect((await sh(`ls '${dir}/files'`)).stdout).toBe('a\n')
    expect((await sh(`printf 'written by bob\\n' > '${dir}/files/a/sub/from-bob.txt' && mv '${dir}/files/a/x.txt' '${dir}/files/a/sub/x.txt' && cat '${dir}/files/a/sub/from-bob.txt'`)).stdout).toBe('written by bob\n')
    const outside = await sh(`printf x > '${dir}/files/bob.txt'`)
    expect(outside.stderr).toMatch(/Permission denied/)
    const moved = await sh(`mv '${dir}/files/a/sub/x.txt' '${dir}/files/x.txt'`)
    expect(moved.stderr).toMatch(/Permission denied/)
    const chmod = await sh(`chmod 700 '${dir}/files/a'`)
    expect(chmod.stderr).toMatch(/Permission denied|Operation not permitted/)
    expect(await stop(up)).toEqual({ code: 0, signal: null })

    const clean = await t.run(['verify', t.store], t.alice)
    expect([clean.code, clean.stdout]).toEqual([0, expect.stringMatching(/: ok, \d+ blocks/)])
    const chain = await Chain.open(t.store, { identity: await loadIdentity('default', PASS, t.alice.FACET_HOME!), home: t.alice.FACET_HOME!, readOnly: true })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    expect((await vfs.readdirAll('/c/a/sub')).map(e => e.name).sort()).toEqual(['from-bob.txt', 'x.txt', 'y.txt'])
    expect((await vfs.readFile('/c/a/sub/from-bob.txt')).toString()).toBe('written by bob\n')
    expect((await vfs.readdirAll('/c')).map(e => e.name).sort()).toEqual(['a', 'b', 'top.txt'])
    await vfs.close()

    const unshared = await t.run(['unshare', '/a', '--with', 'bob', '--write', '--files-store', t.store], t.alice)
    expect([unshared.code, unshared.stdout]).toEqual([0, 'bob may no longer write: blocks it signs from now on are refused\n'])
    expect((await t.run(['share', '--list', '--files-store', t.store], t.alice)).stdout).toMatch(/^\/a\tbob\tread\t[0-9a-f]{16}\n$/)
  })
})
