import { describe, expect, it } from 'vitest'
import { fuseSkip, sh } from '../helpers/fuse.ts'
import { loadIdentity } from '../../src/crypto/identity.ts'
import { readContact } from '../../src/crypto/contacts.ts'
import { Chain } from '../../src/chain/store.ts'
import { addGroupMember, createGroup, groupAsReader } from '../../src/chain/groups.ts'
import { shareChainPath } from '../../src/chain/sharing.ts'
import { PASS, shareSetupEach, stop } from './share-setup.ts'
import { startUp } from './up-harness.ts'

describe.skipIf(fuseSkip)('facet group and facet share PATH --with @GROUP, a member mounting through facet up --files-store', () => {
  const t = shareSetupEach()
  const files = ['--files-store', 'files.chain']

  it('lets bob, a member of team, list and read only /a', async () => {
    expect(await t.run(['group', 'create', 'team', ...files], t.alice)).toMatchObject({ code: 0, stdout: expect.stringMatching(/^created group team \(key [0-9a-f]{16}, epoch 1\): no members yet \(facet group add team MEMBER\)\n$/) })
    expect(await t.run(['group', 'add', 'team', 'bob', ...files], t.alice)).toMatchObject({ code: 0, stdout: expect.stringMatching(/^added bob \(key [0-9a-f]{16}\) to group team: members bob\n$/) })
    const shared = await t.run(['share', '/a', '--with', '@team', ...files], t.alice)
    expect([shared.code, shared.stdout]).toEqual([0, "shared /a with group 'team' (its members now and later): read\n"])
    expect((await t.run(['share', '/a', '--with', '@team', '--write', ...files], t.alice)).stderr).toMatch(/--write is for an identity/)
    expect((await t.run(['share', '/b', '--with', '@nobody', ...files], t.alice)).stderr).toMatch(/no group named 'nobody' in the chain/)
    expect((await t.run(['share', '--list', ...files], t.alice)).stdout).toMatch(/^\/a\t@team\tread\t[0-9a-f]{16}\n$/)
    expect((await t.run(['group', 'list', ...files], t.alice)).stdout).toMatch(/^team\tgid (\d+)\tepoch 1\tmembers: bob\tgrants: \/a\n$/)

    const dir = await t.mountDir()
    const up = await t.bobUp(dir)
    expect((await sh(`ls -a '${dir}/files'`)).stdout).toBe('.\n..\na\n')
    expect((await sh(`ls '${dir}/files/a'`)).stdout).toBe('sub\nx.txt\n')
    expect((await sh(`cat '${dir}/files/a/x.txt' '${dir}/files/a/sub/y.txt'`)).stdout).toBe('shared with bob\ndeeper\n')
    const absent = await sh(`cat '${dir}/files/b/secret.txt'; cat '${dir}/files/top.txt'`)
    expect(absent.stderr).toMatch(/b\/secret.txt: No such file or directory\n.*top.txt: No such file or directory/s)
    expect(await stop(up)).toEqual({ code: 0, signal: null })
  })

  it('group remove rotates the key and says what bob keeps; bob then opens nothing through facet up', async () => {
    const alice = await loadIdentity('default', PASS, t.alice.FACET_HOME!)
    const bob = await readContact('bob', t.alice.FACET_HOME!)
    const chain = await Chain.open(t.store, { identity: alice, home: t.alice.FACET_HOME! })
    await createGroup(chain, 'team')
    await addGroupMember(chain, 'team', bob!)
    await shareChainPath(chain, '/a', groupAsReader(chain, 'team'))
    await chain.close()

    const removed = await t.run(['group', 'remove', 'team', 'bob', ...files], t.alice)
    expect([removed.code, removed.stdout]).toEqual([0, "removed bob from group team: the group's key rotated (epoch 2), 1 grant re-wrapped for the owner alone (no members left)\nrotated the keys of 4 inodes in /a\n"])
    expect(removed.stderr).toMatch(/WARNING: bob keeps the keys it unwrapped before .*: the folders' keys rotated, so nothing written in them from now on opens with those keys/)
    expect((await t.run(['group', 'list', 'team', ...files], t.alice)).stdout).toMatch(/^group team\tkey [0-9a-f]{16}\tgid \d+\tepoch 2\ngrant\t\/a\tread\n$/)

    const again = startUp(['--mount', await t.mountDir(), '--files-store', t.store], { env: t.bob, cwd: t.work })
    // the group's secret is no longer wrapped for bob: his facet up holds no key for /files
    expect(await again.exited).toEqual({ code: 1, signal: null })
    expect(again.stderr).toMatch(/cannot open \/files in .*files\.chain: identity 'default' \([0-9a-f]{16}\) holds no key for chain/)
  })
})
