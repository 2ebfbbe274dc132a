import { describe, expect, it } from 'vitest'
import { loadIdentity } from '../../src/crypto/identity.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { fuseSkip, sh } from '../helpers/fuse.ts'
import { PASS, shareSetupEach, stop } from './share-setup.ts'

/** Looks every 20 ms until `check` holds, for at most `ms` (a follower sees a block once chokidar reports the log changed). */
async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not so within ${ms} ms`)
    await new Promise(r => setTimeout(r, 20))
  }
}

describe.skipIf(fuseSkip)('facet share PATH --with NAME, the contact mounting through facet up --files-store', () => {
  const t = shareSetupEach()

  it('shares /a read-only: bob lists only /a, reads it exactly, and his writes fail with EROFS', async () => {
    const shared = await t.run(['share', '/a', '--with', 'bob', '--files-store', 'files.chain'], t.alice)
    expect(shared.code).toBe(0)
    expect(shared.stdout).toMatch(/^shared \/a with 'bob' \(key [0-9a-f]{16}\): read\n$/)
    expect(shared.stderr).toMatch(/WARNING: this cannot be fully undone: a reader keeps every key it unwrapped: facet unshare rotates the keys/)
    expect((await t.run(['share', '--list', '--files-store', 'files.chain'], t.alice)).stdout).toMatch(/^\/a\tbob\tread\t[0-9a-f]{16}\n$/)

    const dir = await t.mountDir()
    const up = await t.bobUp(dir)
    expect((await sh(`ls -a '${dir}/files'`)).stdout).toBe('.\n..\na\n')
    expect((await sh(`ls '${dir}/files/a'`)).stdout).toBe('sub\nx.txt\n')
    expect((await sh(`cat '${dir}/files/a/x.txt' '${dir}/files/a/sub/y.txt'`)).stdout).toBe('shared with bob\ndeeper\n')
    const absent = await sh(`cat '${dir}/files/b/secret.txt'; cat '${dir}/files/top.txt'`)
    expect(absent.stderr).toMatch(/b\/secret.txt: No such file or directory\n.*top.txt: No such file or directory/s)
    const refused = await sh(`echo no > '${dir}/files/a/new.txt'; echo no >> '${dir}/files/a/x.txt'; mkdir '${dir}/files/a/d'`)
    expect(refused.code).not.toBe(0)
    expect(refused.stderr.match(/Read-only file system|Permission denied/g)).toHaveLength(3)
    expect((await sh(`cat '${dir}/files/a/x.txt'`)).stdout).toBe('shared with bob\n')

    // bob's mount holds no writer lock: alice writes on, and bob follows her blocks
    const chain = await Chain.open(t.store, { identity: await loadIdentity('default', PASS, t.alice.FACET_HOME!), home: t.alice.FACET_HOME! })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    await vfs.writeFile('/c/a/late.txt', 'written while bob was mounted\n')
    await vfs.writeFile('/c/b/more.txt', 'alice only\n')
    await vfs.close()
    await until(async () => (await sh(`cat '${dir}/files/a/late.txt'`)).stdout === 'written while bob was mounted\n')
    expect((await sh(`ls '${dir}/files' '${dir}/files/a'`)).stdout).toBe(`${dir}/files:\na\n\n${dir}/files/a:\nlate.txt\nsub\nx.txt\n`)
    expect(await stop(up)).toEqual({ code: 0, signal: null })
    // bob's first open pins alice's chain, and says it is someone else's
    expect(up.stderr).toMatch(/first use here; pinned .*not the identity opening it/)
  })
})
