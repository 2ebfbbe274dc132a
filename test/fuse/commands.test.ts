import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { memoryMount } from '../../src/vfs/memory.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { dir, file, symlink } from '../../src/views/view.ts'
import { fuseSkip, mountForTest, run, sh, type TestMount } from '../helpers/fuse.ts'

const GREETING = 'hello, world\n'
const uid = process.getuid?.() ?? 0
const gid = process.getgid?.() ?? 0

describe.skipIf(fuseSkip)('shell commands on a FUSE mount of a memory mount and a read-only view', () => {
  let vfs: Vfs
  let mount: TestMount
  let m: string
  let local: string

  beforeAll(async () => {
    vfs = createVfs({
      logger: silentLogger,
      mounts: {
        '/scratch': memoryMount(),
        '/other': memoryMount({ name: 'other' }),
        '/hello': {
          name: 'hello',
          root: dir({
            'greeting.txt': file(GREETING),
            'data': dir({ 'n.json': file('{"n":1}\n'), 'm.json': file('{"m":22}\n') }),
            'latest': symlink('greeting.txt'),
          }),
        },
      },
    })
    mount = await mountForTest(vfs)
    m = mount.dir
    local = await mkdtemp(join(tmpdir(), 'facet-local-'))
  })

  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
    if (local) await rm(local, { recursive: true, force: true })
  })

  it('lists the mount points with ls, and . and .. with ls -a', async () => {
    expect(await run('ls', [m])).toMatchObject({ code: 0, stdout: 'hello\nother\nscratch\n', stderr: '' })
    expect((await run('ls', ['-a', `${m}/hello`])).stdout).toBe('.\n..\ndata\ngreeting.txt\nlatest\n')
  })

  it('shows exact modes, owners, sizes and link targets with ls -ln, and nothing on stderr', async () => {
    const r = await run('ls', ['-ln', '--time-style=+T', `${m}/hello`])
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe(
      [
        'total 5',
        `dr-xr-xr-x 2 ${uid} ${gid} 4096 T data`,
        `-r--r--r-- 1 ${uid} ${gid}   13 T greeting.txt`,
        `lrwxrwxrwx 1 ${uid} ${gid}   12 T latest -> greeting.txt`,
        '',
      ].join('\n'),
    )
  })

  it('reads a view file with cat, and its stat size equals what wc -c counts', async () => {
    expect(await run('cat', [`${m}/hello/greeting.txt`])).toMatchObject({ code: 0, stdout: GREETING })
    expect((await run('stat', ['-c', '%s %F %a', `${m}/hello/greeting.txt`])).stdout).toBe('13 regular file 444\n')
    expect((await run('wc', ['-c', `${m}/hello/data/m.json`])).stdout).toBe(`9 ${m}/hello/data/m.json\n`)
    expect((await run('stat', ['-c', '%s', `${m}/hello/data/m.json`])).stdout).toBe('9\n')
  })

  it('fails cat of a missing file with ENOENT "No such file or directory"', async () => {
    expect(await run('cat', [`${m}/hello/missing.txt`])).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `cat: ${m}/hello/missing.txt: No such file or directory\n`,
    })
  })

  it('fails every write into the read-only view with EROFS "Read-only file system"', async () => {
    const redirect = await sh(`echo changed > ${m}/hello/greeting.txt`)
    expect(redirect.code).not.toBe(0)
    expect(redirect.stderr).toMatch(/cannot create .*\/hello\/greeting\.txt: Read-only file system\n$/)
    expect(await run('touch', [`${m}/hello/new.txt`])).toMatchObject({ code: 1, stderr: `touch: cannot touch '${m}/hello/new.txt': Read-only file system\n` })
    expect(await run('mkdir', [`${m}/hello/sub`])).toMatchObject({ code: 1, stderr: `mkdir: cannot create directory '${m}/hello/sub': Read-only file system\n` })
    expect(await run('rm', [`${m}/hello/greeting.txt`])).toMatchObject({ code: 1, stderr: `rm: cannot remove '${m}/hello/greeting.txt': Read-only file system\n` })
    expect(await run('truncate', ['-s', '0', `${m}/hello/greeting.txt`])).toMatchObject({ code: 1, stderr: `truncate: cannot open '${m}/hello/greeting.txt' for writing: Read-only file system\n` })
    expect((await run('cat', [`${m}/hello/greeting.txt`])).stdout).toBe(GREETING)
  })

  it('writes with echo >, appends with >>, and the VFS reads the same bytes in-process', async () => {
    expect(await sh(`echo first > ${m}/scratch/note.txt && echo second >> ${m}/scratch/note.txt`)).toMatchObject({ code: 0, stderr: '' })
    expect((await run('cat', [`${m}/scratch/note.txt`])).stdout).toBe('first\nsecond\n')
    expect((await vfs.readFile('/scratch/note.txt')).toString()).toBe('first\nsecond\n')
    expect(await sh(`echo over > ${m}/scratch/note.txt`)).toMatchObject({ code: 0 })
    expect((await run('cat', [`${m}/scratch/note.txt`])).stdout).toBe('over\n')
  })

  it('sees a file written in-process at once, with its exact size', async () => {
    await vfs.writeFile('/scratch/inproc.txt', 'made inside\n')
    expect((await run('cat', [`${m}/scratch/inproc.txt`])).stdout).toBe('made inside\n')
    expect((await run('stat', ['-c', '%s', `${m}/scratch/inproc.txt`])).stdout).toBe('12\n')
  })

  it('makes and removes folders with mkdir and rmdir, failing with EEXIST and ENOTEMPTY', async () => {
    expect(await run('mkdir', ['-p', `${m}/scratch/d/e`])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('stat', ['-c', '%F %a', `${m}/scratch/d/e`])).stdout).toBe('directory 755\n')
    expect(await run('mkdir', [`${m}/scratch/d`])).toMatchObject({ code: 1, stderr: `mkdir: cannot create directory '${m}/scratch/d': File exists\n` })
    expect(await run('rmdir', [`${m}/scratch/d`])).toMatchObject({ code: 1, stderr: `rmdir: failed to remove '${m}/scratch/d': Directory not empty\n` })
    expect(await run('rmdir', [`${m}/scratch/d/e`, `${m}/scratch/d`])).toMatchObject({ code: 0, stderr: '' })
    expect(await run('ls', [`${m}/scratch/d`])).toMatchObject({ code: 2, stderr: `ls: cannot access '${m}/scratch/d': No such file or directory\n` })
  })

  it('refuses rmdir of a mount point with EBUSY "Device or resource busy"', async () => {
    expect(await run('rmdir', [`${m}/other`])).toMatchObject({ code: 1, stderr: `rmdir: failed to remove '${m}/other': Device or resource busy\n` })
  })

  it('renames within a mount with mv, replacing the target', async () => {
    await sh(`echo a > ${m}/scratch/mv-a && echo b > ${m}/scratch/mv-b`)
    expect(await run('mv', [`${m}/scratch/mv-a`, `${m}/scratch/mv-b`])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('cat', [`${m}/scratch/mv-b`])).stdout).toBe('a\n')
    expect(await run('ls', [`${m}/scratch/mv-a`])).toMatchObject({ code: 2 })
  })

  it('moves across mounts with mv, which copies and unlinks after rename fails with EXDEV', async () => {
    await sh(`echo travelling > ${m}/scratch/trip.txt`)
    await expect(vfs.rename('/scratch/trip.txt', '/other/trip.txt')).rejects.toMatchObject({ code: 'EXDEV' })
    expect(await run('mv', [`${m}/scratch/trip.txt`, `${m}/other/trip.txt`])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('cat', [`${m}/other/trip.txt`])).stdout).toBe('travelling\n')
    expect(await run('ls', [`${m}/scratch/trip.txt`])).toMatchObject({ code: 2 })
  })

  it('fails mv into the read-only view with EROFS and keeps the source', async () => {
    await sh(`echo keep > ${m}/scratch/keep.txt`)
    const r = await run('mv', [`${m}/scratch/keep.txt`, `${m}/hello/keep.txt`])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('Read-only file system')
    expect((await run('cat', [`${m}/scratch/keep.txt`])).stdout).toBe('keep\n')
  })

  it('removes files with rm, failing on a missing one with ENOENT', async () => {
    await sh(`echo x > ${m}/scratch/gone.txt`)
    expect(await run('rm', [`${m}/scratch/gone.txt`])).toMatchObject({ code: 0, stderr: '' })
    expect(await run('rm', [`${m}/scratch/gone.txt`])).toMatchObject({ code: 1, stderr: `rm: cannot remove '${m}/scratch/gone.txt': No such file or directory\n` })
    await run('mkdir', [`${m}/scratch/tree`])
    await sh(`echo 1 > ${m}/scratch/tree/one && echo 2 > ${m}/scratch/tree/two`)
    expect(await run('rm', ['-r', `${m}/scratch/tree`])).toMatchObject({ code: 0, stderr: '' })
    expect(await vfs.readdirAll('/scratch').then(e => e.some(x => x.name === 'tree'))).toBe(false)
  })

  it('makes symlinks with ln -s that readlink, stat and cat follow', async () => {
    await sh(`echo target > ${m}/scratch/real.txt`)
    expect(await run('ln', ['-s', 'real.txt', `${m}/scratch/link.txt`])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('readlink', [`${m}/scratch/link.txt`])).stdout).toBe('real.txt\n')
    expect((await run('stat', ['-c', '%F %s', `${m}/scratch/link.txt`])).stdout).toBe('symbolic link 8\n')
    expect((await run('cat', [`${m}/scratch/link.txt`])).stdout).toBe('target\n')
    expect((await run('readlink', [`${m}/hello/latest`])).stdout).toBe('greeting.txt\n')
    expect((await run('cat', [`${m}/hello/latest`])).stdout).toBe(GREETING)
  })

  it('makes hard links that share content and count their names in nlink', async () => {
    await sh(`echo x > ${m}/scratch/solo.txt`)
    expect(await run('ln', [`${m}/scratch/solo.txt`, `${m}/scratch/twin.txt`])).toMatchObject({ code: 0, stderr: '' })
    await sh(`echo more >> ${m}/scratch/twin.txt`)
    expect((await run('cat', [`${m}/scratch/solo.txt`])).stdout).toBe('x\nmore\n')
    // libfuse's path API numbers inodes per name, so only the link count shows the sharing
    expect((await run('stat', ['-c', '%h', `${m}/scratch/solo.txt`, `${m}/scratch/twin.txt`])).stdout).toBe('2\n2\n')
    await sh(`rm ${m}/scratch/solo.txt`)
    expect((await run('stat', ['-c', '%h', `${m}/scratch/twin.txt`])).stdout).toBe('1\n')
    expect(await run('ln', [`${m}/scratch`, `${m}/scratch/dirlink`])).toMatchObject({ code: 1 })
  })

  it('refuses a name that is not valid UTF-8 with EILSEQ, so two such names never become one file', async () => {
    const r = await run('sh', ['-c', `touch "${m}/scratch/alias$(printf '\\377').txt"`])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('Invalid or incomplete multibyte or wide character')
    expect((await run('ls', [`${m}/scratch`])).stdout).not.toContain('alias')
  })

  it('refuses truncate past the largest file with EFBIG "File too large"', async () => {
    await sh(`echo x > ${m}/scratch/huge.bin`)
    expect(await run('truncate', ['-s', '999999999999999', `${m}/scratch/huge.bin`])).toMatchObject({
      code: 1,
      stderr: `truncate: failed to truncate '${m}/scratch/huge.bin' at 999999999999999 bytes: File too large\n`,
    })
  })

  it('grows with zeros and cuts with truncate -s', async () => {
    await sh(`printf abcdef > ${m}/scratch/cut.bin`)
    expect(await run('truncate', ['-s', '10', `${m}/scratch/cut.bin`])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('cat', [`${m}/scratch/cut.bin`])).bytes).toEqual(Buffer.from('abcdef\0\0\0\0'))
    expect(await run('truncate', ['-s', '2', `${m}/scratch/cut.bin`])).toMatchObject({ code: 0 })
    expect((await run('cat', [`${m}/scratch/cut.bin`])).stdout).toBe('ab')
    expect((await run('stat', ['-c', '%s', `${m}/scratch/cut.bin`])).stdout).toBe('2\n')
  })

  it('reports the memory mount’s size with df and stat -f', async () => {
    const df = await run('df', ['--output=source,fstype,size,target', `${m}/scratch`])
    expect(df.code).toBe(0)
    expect(df.stdout.split('\n')[1]!.split(/\s+/)).toEqual(['facetfs', 'fuse.facet', '4194304', m])
    expect((await run('stat', ['-f', '-c', '%S %b %l', `${m}/scratch`])).stdout).toBe('4096 1048576 255\n')
  })

  it('sets modes with chmod and times with touch -d', async () => {
    await sh(`echo x > ${m}/scratch/perm.txt`)
    expect(await run('chmod', ['600', `${m}/scratch/perm.txt`])).toMatchObject({ code: 0, stderr: '' })
    expect(await run('touch', ['-d', '2020-01-02T03:04:05Z', `${m}/scratch/perm.txt`])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('stat', ['-c', '%a %Y %X', `${m}/scratch/perm.txt`])).stdout).toBe('600 1577934245 1577934245\n')
    expect((await vfs.stat('/scratch/perm.txt')).mtimeMs).toBe(1577934245000)
  })

  it('changes owners with chown, fsyncs with sync, and makes fifos that carry data between processes', async () => {
    await sh(`echo x > ${m}/scratch/owned.txt`)
    expect(await run('chown', ['123:456', `${m}/scratch/owned.txt`])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('stat', ['-c', '%u %g', `${m}/scratch/owned.txt`])).stdout).toBe('123 456\n')
    expect(await run('chown', [':789', `${m}/scratch/owned.txt`])).toMatchObject({ code: 0 })
    expect((await run('stat', ['-c', '%u %g', `${m}/scratch/owned.txt`])).stdout).toBe('123 789\n')
    expect(await run('sync', [`${m}/scratch/owned.txt`])).toMatchObject({ code: 0, stderr: '' })
    expect(await run('sync', ['-d', `${m}/scratch/owned.txt`])).toMatchObject({ code: 0, stderr: '' })
    expect(await run('sync', [`${m}/scratch`])).toMatchObject({ code: 0, stderr: '' })
    expect(await run('mkfifo', [`${m}/scratch/pipe`])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('stat', ['-c', '%F', `${m}/scratch/pipe`])).stdout).toBe('fifo\n')
    expect((await sh(`(echo through > ${m}/scratch/pipe &) ; cat ${m}/scratch/pipe`)).stdout).toBe('through\n')
  })

  it('answers access(2) from the mode bits: a view file is not writable, a folder is searchable', async () => {
    await sh(`echo x > ${m}/scratch/w.txt`)
    // root may write any file its mode forbids, as on any filesystem; another user may not
    expect((await run('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'test', '-w', `${m}/hello/greeting.txt`])).code).toBe(1)
    expect((await sh(`test -r ${m}/hello/greeting.txt`)).code).toBe(0)
    expect((await sh(`test -w ${m}/scratch/w.txt`)).code).toBe(0)
    expect((await sh(`test -x ${m}/scratch/w.txt`)).code).toBe(1)
    expect((await sh(`test -x ${m}/hello/data`)).code).toBe(0)
    expect((await sh(`test -e ${m}/hello/nothing`)).code).toBe(1)
  })

  it('copies with cp and cp -a without complaints about extended attributes', async () => {
    expect(await run('cp', [`${m}/hello/greeting.txt`, `${m}/scratch/copy.txt`])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('cat', [`${m}/scratch/copy.txt`])).stdout).toBe(GREETING)
    expect(await run('cp', ['-a', `${m}/scratch/copy.txt`, `${m}/scratch/copy2.txt`])).toMatchObject({ code: 0, stderr: '' })
    expect(await run('cp', ['-r', `${m}/hello/data`, `${m}/scratch/data`])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('cat', [`${m}/scratch/data/m.json`])).stdout).toBe('{"m":22}\n')
  })

  it('round-trips 4 MiB of random bytes with dd, sha256sum, tail -c and wc -c', async () => {
    const data = randomBytes(4 << 20)
    const sha = createHash('sha256').update(data).digest('hex')
    await writeFile(join(local, 'big.bin'), data)
    expect(await run('dd', [`if=${join(local, 'big.bin')}`, `of=${m}/scratch/big.bin`, 'bs=1M', 'status=none'])).toMatchObject({ code: 0, stderr: '' })
    expect((await run('sha256sum', [`${m}/scratch/big.bin`])).stdout).toBe(`${sha}  ${m}/scratch/big.bin\n`)
    expect(createHash('sha256').update(await vfs.readFile('/scratch/big.bin')).digest('hex')).toBe(sha)
    expect((await run('wc', ['-c', `${m}/scratch/big.bin`])).stdout).toBe(`${4 << 20} ${m}/scratch/big.bin\n`)
    expect((await run('tail', ['-c', '1000', `${m}/scratch/big.bin`])).bytes).toEqual(data.subarray(data.length - 1000))
    const middle = await run('dd', [`if=${m}/scratch/big.bin`, 'bs=4096', 'skip=300', 'count=3', 'status=none'])
    expect(middle.bytes).toEqual(data.subarray(300 * 4096, 303 * 4096))
    expect(await run('cp', [`${m}/scratch/big.bin`, join(local, 'back.bin')])).toMatchObject({ code: 0 })
    expect((await run('sha256sum', [join(local, 'back.bin')])).stdout).toBe(`${sha}  ${join(local, 'back.bin')}\n`)
  })

  it('keeps every handle balanced: nothing stays open after the commands', async () => {
    expect(vfs.openHandles).toBe(0)
  })
})
