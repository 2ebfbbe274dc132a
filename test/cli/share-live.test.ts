import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createIdentity, loadIdentity } from '../../src/crypto/identity.ts'
import { readContact } from '../../src/crypto/contacts.ts'
import { Chain } from '../../src/chain/store.ts'
import { addGroupMember, createGroup } from '../../src/chain/groups.ts'
import { groupGid } from '../../src/chain/mode-grants.ts'
import { shareChainPath } from '../../src/chain/sharing.ts'
import { fuseSkip, sh } from '../helpers/fuse.ts'
import { PASS, shareSetupEach, stop } from './share-setup.ts'
import { startUp, waitForLine, type Up } from './up-harness.ts'

/** Looks every 20 ms until `check` holds, for at most `ms` (a follower sees a block once chokidar reports the log changed). */
async function until(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not so within ${ms} ms`)
    await new Promise(r => setTimeout(r, 20))
  }
}

/** `ls` of `dir`, one name a line ('' when empty). */
const ls = async (dir: string) => (await sh(`ls '${dir}'`)).stdout

describe.skipIf(fuseSkip)('grants through FUSE while mounted: chgrp/chmod on the owner’s facet up, seen live by a member and by a third identity', () => {
  const t = shareSetupEach()
  const files = ['--files-store', 'files.chain']

  /** Starts facet up as the identity of `env` on alice's store at a fresh mount folder; resolves once mounted. */
  async function up(env: Record<string, string>): Promise<{ up: Up; files: string }> {
    const dir = await t.mountDir()
    const u = startUp(['--mount', dir, '--files-store', t.store], { env: { ...env, FACET_LOG_LEVEL: 'info' }, cwd: t.work })
    await waitForLine(u, /^FacetFS mounted at /, 30_000)
    return { up: u, files: join(dir, 'files') }
  }

  it('chgrp to a chain group opens a folder to its member, chmod o+r of a folder and of one file to carol (no grant, no group), g-r and o-r take them away; EPERM for bob; a remount keeps modes and grants; verify clean', async () => {
    const carol = { FACET_HOME: join(t.work, 'carol'), FACET_PASSPHRASE: PASS }
    await createIdentity('default', PASS, { home: carol.FACET_HOME })
    // team (bob a member) and /b shared with bob, as facet group and facet share do (their CLI is tested in share-group and share-read)
    const chain = await Chain.open(t.store, { identity: await loadIdentity('default', PASS, t.alice.FACET_HOME!), home: t.alice.FACET_HOME! })
    await createGroup(chain, 'team')
    await addGroupMember(chain, 'team', (await readContact('bob', t.alice.FACET_HOME!))!)
    await shareChainPath(chain, '/b', (await readContact('bob', t.alice.FACET_HOME!))!)
    const gid = groupGid(chain.chainId, 'team')
    await chain.close()

    const alice = await up(t.alice)
    const bob = await up(t.bob)
    expect(await ls(bob.files)).toBe('b\n')

    // chgrp of /a to the group's gid: a grant to team, which bob is a member of
    expect(await sh(`chmod 750 '${alice.files}/a' && chgrp ${gid} '${alice.files}/a'`)).toMatchObject({ code: 0, stderr: '' })
    expect((await sh(`stat -c '%a %g' '${alice.files}/a'`)).stdout).toBe(`750 ${gid}\n`)
    await until(async () => (await ls(bob.files)) === 'a\nb\n')
    expect((await sh(`cat '${bob.files}/a/x.txt' '${bob.files}/a/sub/y.txt'`)).stdout).toBe('shared with bob\ndeeper\n')
    expect(bob.up.stderr).toMatch(/the grants of identity 'default' changed; it reads \/a, \/b now/)

    // bob is not the owner: who may read is not his to change
    const refused = await sh(`chmod o+r '${bob.files}/a'; chgrp 0 '${bob.files}/a'`)
    expect(refused.stderr.match(/Operation not permitted/g)).toHaveLength(2)

    // o+r turned on: everyone holding the log, carol included, who holds no grant and is in no group
    expect(await sh(`mkdir -m 750 '${alice.files}/pub' && echo for anyone > '${alice.files}/pub/p.txt' && chmod o+r '${alice.files}/pub'`)).toMatchObject({ code: 0, stderr: '' })
    expect(alice.up.stderr).toMatch(/\/pub: published to everyone holding the chain's log \(chmod o\+r\)/)
    // and of one file in a private folder: that file alone (a file made 0644 is published by turning o+r on, after 600)
    expect(await sh(`mkdir -m 700 '${alice.files}/priv' && echo the one note > '${alice.files}/priv/note.txt' && echo private > '${alice.files}/priv/other.txt' && chmod 600 '${alice.files}/priv/note.txt' && chmod o+r '${alice.files}/priv/note.txt'`)).toMatchObject({ code: 0, stderr: '' })
    expect(alice.up.stderr).toMatch(/\/priv\/note\.txt: published to everyone holding the chain's log \(chmod o\+r\)/)
    await until(async () => (await ls(bob.files)) === 'a\nb\npriv\npub\n')
    const c = await up(carol)
    expect(await ls(c.files)).toBe('priv\npub\n')
    expect((await sh(`cat '${c.files}/pub/p.txt'`)).stdout).toBe('for anyone\n')
    expect((await sh(`ls '${c.files}/priv' && stat -c '%s %a' '${c.files}/priv/note.txt' && cat '${c.files}/priv/note.txt'`)).stdout).toBe('note.txt\n13 604\nthe one note\n')
    expect((await sh(`cat '${c.files}/priv/other.txt'`)).stderr).toMatch(/No such file or directory/)
    expect((await sh(`cat '${c.files}/a/x.txt'`)).stderr).toMatch(/No such file or directory/)

    // a remount of the owner's chain shows the same modes, and the log the same readers
    expect(await stop(alice.up)).toEqual({ code: 0, signal: null })
    expect((await t.run(['share', '--list', ...files], t.alice)).stdout).toMatch(/^\/b\tbob\tread\t[0-9a-f]{16}\n\/a\t@team\tread\t[0-9a-f]{16}\n\/pub\teveryone \(o\+r\)\tread\t[0-9a-f]{16}\n\/priv\/note\.txt\teveryone \(o\+r\)\tread\t[0-9a-f]{16}\n$/)
    const again = await up(t.alice)
    expect((await sh(`stat -c '%n %a %g' '${again.files}/a' '${again.files}/pub'`)).stdout).toBe(`${again.files}/a 750 ${gid}\n${again.files}/pub 754 0\n`)

    // g-r: the group's grant withdrawn; o-r: everyone's
    expect(await sh(`chmod g-r '${again.files}/a' && chmod o-r '${again.files}/pub' '${again.files}/priv/note.txt'`)).toMatchObject({ code: 0, stderr: '' })
    await until(async () => (await ls(bob.files)) === 'b\n')
    await until(async () => (await ls(c.files)) === '')
    expect((await sh(`cat '${c.files}/pub/p.txt'`)).stderr).toMatch(/No such file or directory/)
    expect((await sh(`cat '${c.files}/priv/note.txt'`)).stderr).toMatch(/No such file or directory/)
    expect((await sh(`stat -c '%a' '${again.files}/a' '${again.files}/pub'`)).stdout).toBe('710\n750\n')

    for (const u of [again.up, bob.up, c.up]) expect(await stop(u)).toEqual({ code: 0, signal: null })
    expect(await t.run(['verify', 'files.chain'], t.alice)).toMatchObject({ code: 0, stdout: expect.stringMatching(/^files\.chain: ok, /) })
  }, 60_000)
})
