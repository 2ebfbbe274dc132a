import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { memoryMount } from '../../src/vfs/memory.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { fuseSkip, mountForTest, run, sh, type TestMount } from '../helpers/fuse.ts'

/** A command run as uid and gid 65534, with these supplementary groups (none when empty). */
const as = (groups: number[], cmd: string[]) =>
  run('setpriv', ['--reuid', '65534', '--regid', '65534', ...(groups.length ? ['--groups', groups.join(',')] : ['--clear-groups']), ...cmd])

// the same answers whoever checks: FacetFS's router (the default) or the kernel (default_permissions)
describe.skipIf(fuseSkip).each(['facet', 'kernel'] as const)('rights of another user through FUSE, checked by %s', permissions => {
  let vfs: Vfs
  let mount: TestMount
  let m: string

  beforeAll(async () => {
    vfs = createVfs({ mounts: { '/': memoryMount() }, logger: silentLogger })
    mount = await mountForTest(vfs, { allowOther: true, permissions })
    m = mount.dir
    const setup = await sh(
      [
        `chmod 755 ${m}`,
        `mkdir ${m}/sec && echo hidden > ${m}/sec/f && chmod 700 ${m}/sec`,
        `echo 'group secret' > ${m}/grp.txt && chgrp 4242 ${m}/grp.txt && chmod 640 ${m}/grp.txt`,
        `mkdir ${m}/pub && echo public > ${m}/pub/f && chmod 644 ${m}/pub/f`,
        `mkdir ${m}/open && chmod 777 ${m}/open`,
        `mkdir ${m}/gdir && chgrp 4242 ${m}/gdir && chmod 770 ${m}/gdir && echo in > ${m}/gdir/f`,
        `echo none > ${m}/none.txt && chmod 000 ${m}/none.txt`,
      ].join(' && '),
    )
    expect(setup).toMatchObject({ code: 0, stderr: '' })
  })

  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
  })

  it('refuses what the modes refuse: a folder of 700 cannot be listed, entered or walked through, a file of 644 not written, a 755 folder not written in', async () => {
    expect(await as([], ['cat', `${m}/sec/f`])).toMatchObject({ code: 1, stdout: '' })
    expect((await as([], ['cat', `${m}/sec/f`])).stderr).toMatch(/Permission denied/)
    expect((await as([], ['ls', `${m}/sec`])).stderr).toMatch(/Permission denied/)
    expect((await as([], ['sh', '-c', `cd ${m}/sec`])).code).not.toBe(0)
    expect((await as([], ['stat', `${m}/sec/f`])).stderr).toMatch(/Permission denied/)
    expect((await as([], ['sh', '-c', `echo more >> ${m}/pub/f`])).stderr).toMatch(/Permission denied/)
    expect((await as([], ['touch', `${m}/pub/new`])).stderr).toMatch(/Permission denied/)
    expect((await as([], ['cat', `${m}/none.txt`])).stderr).toMatch(/Permission denied/)
    expect((await as([], ['chmod', '777', `${m}/pub/f`])).stderr).toMatch(/Operation not permitted/)
    // nothing changed
    expect((await sh(`cat ${m}/pub/f ${m}/sec/f; ls ${m}/pub; stat -c %a ${m}/pub/f`)).stdout).toBe('public\nhidden\nf\n644\n')
  })

  it('grants what the modes grant, through a supplementary group too: the group may read a 640 file and enter a 770 folder, others may not', async () => {
    expect(await as([], ['cat', `${m}/pub/f`])).toMatchObject({ code: 0, stdout: 'public\n' })
    expect(await as([4242], ['cat', `${m}/grp.txt`])).toMatchObject({ code: 0, stdout: 'group secret\n' })
    expect(await as([4242], ['cat', `${m}/gdir/f`])).toMatchObject({ code: 0, stdout: 'in\n' })
    expect(await as([4242], ['ls', `${m}/gdir`])).toMatchObject({ code: 0, stdout: 'f\n' })
    expect((await as([], ['cat', `${m}/grp.txt`])).stderr).toMatch(/Permission denied/)
    expect((await as([4243], ['ls', `${m}/gdir`])).stderr).toMatch(/Permission denied/)
    // access(2) answers the same
    expect((await as([4242], ['test', '-r', `${m}/grp.txt`])).code).toBe(0)
    expect((await as([], ['test', '-r', `${m}/grp.txt`])).code).toBe(1)
    expect((await as([], ['test', '-w', `${m}/open`])).code).toBe(0)
    // root reads what no mode grants
    expect((await run('cat', [`${m}/none.txt`])).stdout).toBe('none\n')
  })

  it('clears setuid and setgid of a file another user writes to, and keeps what was written', async () => {
    expect(await sh(`echo root > ${m}/open/suid && chmod 6777 ${m}/open/suid`)).toMatchObject({ code: 0, stderr: '' })
    expect(await as([], ['sh', '-c', `echo other >> ${m}/open/suid`])).toMatchObject({ code: 0, stderr: '' })
    expect((await sh(`stat -c %a ${m}/open/suid && cat ${m}/open/suid`)).stdout).toBe('777\nroot\nother\n')
  })

  it('makes what another user creates in a 777 folder theirs, and lets only them change its mode', async () => {
    expect(await as([], ['sh', '-c', `echo mine > ${m}/open/theirs && chmod 600 ${m}/open/theirs`])).toMatchObject({ code: 0, stderr: '' })
    expect((await sh(`stat -c '%u %g %a' ${m}/open/theirs`)).stdout).toBe('65534 65534 600\n')
    expect(await as([], ['cat', `${m}/open/theirs`])).toMatchObject({ code: 0, stdout: 'mine\n' })
  })
})
