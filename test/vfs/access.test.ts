import { constants as fsc } from 'node:fs'
import { beforeEach, describe, expect, it } from 'vitest'
import { isVfsError } from '../../src/vfs/errors.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { createVfs, type CallerContext, type Vfs } from '../../src/vfs/vfs.ts'

const root: CallerContext = { uid: 0, gid: 0 }
const alice: CallerContext = { uid: 1000, gid: 1000 }
const bob: CallerContext = { uid: 2000, gid: 2000 }
const bobInStaff: CallerContext = { uid: 2000, gid: 2000, groups: [50] }

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    if (isVfsError(err)) return err.code
    throw err
  }
}

describe('the router checks rights of callers the kernel has not checked', () => {
  let vfs: Vfs
  beforeEach(async () => {
    vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    await vfs.chmod('/m', 0o777, root)
    await vfs.writeFile('/m/secret', 'root only\n', root)
    await vfs.chmod('/m/secret', 0o600, root)
    await vfs.writeFile('/m/public', 'everyone reads\n', root)
    await vfs.chmod('/m/public', 0o644, root)
  })

  it('refuses to read a 0600 file of another user with EACCES and lets its owner read it', async () => {
    expect(await code(vfs.readFile('/m/secret', alice))).toBe('EACCES')
    expect((await vfs.readFile('/m/secret', root)).toString()).toBe('root only\n')
  })

  it('lets anyone read a 0644 file but refuses writing it with EACCES, leaving it unchanged', async () => {
    expect((await vfs.readFile('/m/public', alice)).toString()).toBe('everyone reads\n')
    expect(await code(vfs.writeFile('/m/public', 'defaced', alice))).toBe('EACCES')
    expect(await code(vfs.truncate('/m/public', 0, alice))).toBe('EACCES')
    expect((await vfs.readFile('/m/public')).toString()).toBe('everyone reads\n')
  })

  it('gives a new file and folder to the caller', async () => {
    await vfs.writeFile('/m/mine', 'x', alice)
    await vfs.mkdir('/m/dir', 0o755, alice)
    expect(await vfs.stat('/m/mine')).toMatchObject({ uid: 1000, gid: 1000 })
    expect(await vfs.stat('/m/dir')).toMatchObject({ uid: 1000, gid: 1000 })
  })

  it('gives a new node in a setgid folder the folder group, and a new folder the setgid bit', async () => {
    await vfs.mkdir('/m/shared', 0o777, root)
    await vfs.chown('/m/shared', 0, 50, root)
    await vfs.chmod('/m/shared', 0o2777, root)
    await vfs.writeFile('/m/shared/f', 'x', alice)
    await vfs.mkdir('/m/shared/d', 0o755, alice)
    expect(await vfs.stat('/m/shared/f')).toMatchObject({ uid: 1000, gid: 50 })
    expect((await vfs.stat('/m/shared/d')).mode).toBe(0o42755)
  })

  it('refuses search of a 0700 folder with EACCES all the way down', async () => {
    await vfs.mkdir('/m/private', 0o700, root)
    await vfs.writeFile('/m/private/f', 'x', root)
    await vfs.chmod('/m/private/f', 0o666, root)
    expect(await code(vfs.stat('/m/private/f', alice))).toBe('EACCES')
    expect(await code(vfs.readdir('/m/private', {}, alice))).toBe('EACCES')
    expect(await code(vfs.writeFile('/m/private/new', 'x', alice))).toBe('EACCES')
  })

  it('lets only the owner chmod (EPERM) and only the superuser give a file away (EPERM)', async () => {
    await vfs.writeFile('/m/a', 'x', alice)
    expect(await code(vfs.chmod('/m/a', 0o777, bob))).toBe('EPERM')
    expect(await code(vfs.chmod('/m/a', 0o640, alice))).toBe('ok')
    expect(await code(vfs.chown('/m/a', 2000, -1, alice))).toBe('EPERM')
    expect(await code(vfs.chown('/m/a', 2000, -1, root))).toBe('ok')
    expect((await vfs.stat('/m/a')).uid).toBe(2000)
  })

  it('lets an owner change the group only to one it belongs to (EPERM otherwise)', async () => {
    await vfs.writeFile('/m/b', 'x', bobInStaff)
    expect(await code(vfs.chown('/m/b', -1, 50, bobInStaff))).toBe('ok')
    expect(await code(vfs.chown('/m/b', -1, 60, bobInStaff))).toBe('EPERM')
    expect((await vfs.stat('/m/b')).gid).toBe(50)
  })

  it('drops setgid from a chmod by an owner outside the file group, and clears setuid on chown', async () => {
    await vfs.writeFile('/m/c', 'x', alice)
    await vfs.chown('/m/c', -1, 50, root)
    await vfs.chmod('/m/c', 0o2755, alice)
    expect((await vfs.stat('/m/c')).mode).toBe(0o100755)
    await vfs.chmod('/m/c', 0o4755, alice)
    await vfs.chown('/m/c', -1, 1000, alice)
    expect((await vfs.stat('/m/c')).mode).toBe(0o100755)
  })

  it('lets a non-owner who may write a file clear its setuid and setgid, as the kernel asks after such a write, and nothing more (EPERM)', async () => {
    await vfs.writeFile('/m/s', 'x', alice)
    await vfs.chmod('/m/s', 0o6766, alice)
    expect(await code(vfs.chmod('/m/s', 0o6777, bob))).toBe('EPERM')
    expect(await code(vfs.chmod('/m/s', 0o0760, bob))).toBe('EPERM')
    expect(await code(vfs.chmod('/m/s', 0o0766, bob))).toBe('ok')
    expect((await vfs.stat('/m/s')).mode).toBe(0o100766)
    await vfs.chmod('/m/s', 0o4764, alice)
    // bob may not write it now: no clearing either
    expect(await code(vfs.chmod('/m/s', 0o0764, bob))).toBe('EACCES')
    expect((await vfs.stat('/m/s')).mode).toBe(0o104764)
  })

  it('refuses explicit times from a non-owner with EPERM, and the current time without write access with EACCES', async () => {
    expect(await code(vfs.utimens('/m/public', 1000, 2000, alice))).toBe('EPERM')
    expect(await code(vfs.setattr('/m/public', { atime: 'now', mtime: 'now' }, {}, alice))).toBe('EACCES')
    await vfs.chmod('/m/public', 0o666, root)
    expect(await code(vfs.setattr('/m/public', { atime: 'now', mtime: 'now' }, {}, alice))).toBe('ok')
  })

  it('keeps others from removing or renaming entries of a sticky folder (EPERM), but not their owners', async () => {
    await vfs.mkdir('/m/tmp', 0o1777, root)
    await vfs.writeFile('/m/tmp/alices', 'x', alice)
    expect(await code(vfs.unlink('/m/tmp/alices', bob))).toBe('EPERM')
    expect(await code(vfs.rename('/m/tmp/alices', '/m/tmp/bobs', bob))).toBe('EPERM')
    expect(await code(vfs.rename('/m/tmp/alices', '/m/tmp/renamed', alice))).toBe('ok')
    expect(await code(vfs.unlink('/m/tmp/renamed', alice))).toBe('ok')
  })

  it('refuses user attributes on a file the caller cannot write with EACCES, and trusted ones to non-root with EPERM', async () => {
    expect(await code(vfs.setxattr('/m/public', 'user.tag', Buffer.from('x'), 0, {}, alice))).toBe('EACCES')
    expect(await code(vfs.setxattr('/m/public', 'trusted.tag', Buffer.from('x'), 0, {}, alice))).toBe('EPERM')
    await vfs.setxattr('/m/public', 'user.tag', Buffer.from('v1'), 0, {}, root)
    expect(Buffer.from(await vfs.getxattr('/m/public', 'user.tag', {}, alice)).toString()).toBe('v1')
    expect(await code(vfs.getxattr('/m/secret', 'user.tag', {}, alice))).toBe('EACCES')
  })

  it('answers access(2) for the caller: R_OK on a 0600 file of another user is EACCES', async () => {
    expect(await code(vfs.access('/m/secret', fsc.R_OK, alice))).toBe('EACCES')
    expect(await code(vfs.access('/m/public', fsc.R_OK, alice))).toBe('ok')
    expect(await code(vfs.access('/m/public', fsc.W_OK, alice))).toBe('EACCES')
    expect(await code(vfs.access('/m/secret', fsc.R_OK | fsc.W_OK, root))).toBe('ok')
  })

  it('skips its own checks for a caller the kernel already checked (FUSE with default_permissions)', async () => {
    expect((await vfs.readFile('/m/secret', { ...alice, permissionsChecked: true })).toString()).toBe('root only\n')
  })
})

describe('POSIX sequences on the memory mount', () => {
  let vfs: Vfs
  beforeEach(() => {
    vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
  })

  it('counts hard links in nlink, keeps content shared, and keeps a file readable after its last name goes while open', async () => {
    await vfs.writeFile('/m/a', 'shared')
    await vfs.link('/m/a', '/m/b')
    expect((await vfs.stat('/m/a')).nlink).toBe(2)
    expect((await vfs.stat('/m/a')).ino).toBe((await vfs.stat('/m/b')).ino)
    await vfs.writeFile('/m/b', 'changed')
    expect((await vfs.readFile('/m/a')).toString()).toBe('changed')
    const fh = await vfs.open('/m/a', fsc.O_RDONLY)
    await vfs.unlink('/m/a')
    await vfs.unlink('/m/b')
    expect((await vfs.fstat(fh)).nlink).toBe(0)
    expect(Buffer.from(await vfs.read(fh, 0, 100)).toString()).toBe('changed')
    await vfs.release(fh)
  })

  it('counts subfolders in a folder nlink', async () => {
    await vfs.mkdir('/m/d')
    await vfs.mkdir('/m/d/x')
    await vfs.mkdir('/m/d/y')
    expect((await vfs.stat('/m/d')).nlink).toBe(4)
    await vfs.rename('/m/d/y', '/m/y')
    expect((await vfs.stat('/m/d')).nlink).toBe(3)
  })

  it('keeps nanosecond times set one at a time, with UTIME_OMIT leaving the other', async () => {
    await vfs.writeFile('/m/t', 'x')
    await vfs.setattr('/m/t', { atime: 1_000_000_000_123_456_789n, mtime: 'omit' })
    const before = await vfs.stat('/m/t')
    await vfs.setattr('/m/t', { atime: 'omit', mtime: 981_173_106_987_654_321n })
    const st = await vfs.stat('/m/t')
    expect(st.atimeNs).toBe(1_000_000_000_123_456_789n)
    expect(st.mtimeNs).toBe(981_173_106_987_654_321n)
    expect(before.mtimeNs).not.toBe(st.mtimeNs)
  })

  it('changes a symlink itself with lchown, not its target', async () => {
    await vfs.writeFile('/m/target', 'x')
    await vfs.symlink('target', '/m/link')
    await vfs.lchown('/m/link', 5, 6)
    expect(await vfs.lstat('/m/link')).toMatchObject({ uid: 5, gid: 6 })
    expect(await vfs.stat('/m/link')).toMatchObject({ uid: process.getuid!(), gid: process.getgid!() })
  })

  it('swaps two names with RENAME_EXCHANGE and refuses to replace with RENAME_NOREPLACE (EEXIST)', async () => {
    await vfs.writeFile('/m/x', 'X')
    await vfs.mkdir('/m/y')
    await vfs.rename('/m/x', '/m/y', undefined, 'exchange')
    expect((await vfs.stat('/m/x')).kind).toBe('dir')
    expect((await vfs.readFile('/m/y')).toString()).toBe('X')
    expect(await code(vfs.rename('/m/y', '/m/x', undefined, 'noreplace'))).toBe('EEXIST')
  })

  it('makes fifos, device nodes and sockets with their type and device number', async () => {
    await vfs.mknod('/m/p', 'fifo', 0o600)
    await vfs.mknod('/m/c', 'chardev', 0o600, (1 << 8) | 3)
    await vfs.mknod('/m/s', 'socket', 0o600)
    expect((await vfs.stat('/m/p')).mode).toBe(fsc.S_IFIFO | 0o600)
    expect(await vfs.stat('/m/c')).toMatchObject({ mode: fsc.S_IFCHR | 0o600, rdev: 259 })
    expect((await vfs.stat('/m/s')).mode).toBe(fsc.S_IFSOCK | 0o600)
    expect(await code(vfs.open('/m/p'))).toBe('ENXIO')
  })

  it('keeps user attributes, lists them, honours XATTR_CREATE (EEXIST) and removes them', async () => {
    await vfs.writeFile('/m/f', 'x')
    await vfs.setxattr('/m/f', 'user.a', Buffer.from('1'))
    expect(await code(vfs.setxattr('/m/f', 'user.a', Buffer.from('2'), 1))).toBe('EEXIST')
    expect(await vfs.listxattr('/m/f')).toEqual(['user.a'])
    await vfs.removexattr('/m/f', 'user.a')
    expect(await code(vfs.getxattr('/m/f', 'user.a'))).toBe('ENODATA')
  })

  it('gives files of two mounts different inode numbers even when each mount numbers them alike', async () => {
    const two = createVfs({ logger: silentLogger, mounts: { '/a': memoryMount(), '/b': memoryMount() } })
    await two.writeFile('/a/f', 'x')
    await two.writeFile('/b/f', 'x')
    expect((await two.stat('/a/f')).ino).not.toBe((await two.stat('/b/f')).ino)
  })
})

describe('a read-only tree refuses writes with EROFS before any permission check', () => {
  it('answers EROFS, not EACCES, to another user creating in or writing to a read-only view', async () => {
    const { dir, file } = await import('../../src/views/view.ts')
    const vfs = createVfs({ logger: silentLogger, mounts: { '/ro': { name: 'ro', root: dir({ 'a.txt': file('a\n') }) } } })
    expect(await code(vfs.writeFile('/ro/new.txt', 'x', alice))).toBe('EROFS')
    expect(await code(vfs.mkdir('/ro/d', 0o755, alice))).toBe('EROFS')
    expect(await code(vfs.writeFile('/ro/a.txt', 'x', alice))).toBe('EROFS')
    expect(await code(vfs.unlink('/ro/a.txt', alice))).toBe('EROFS')
    expect(await code(vfs.access('/ro/a.txt', fsc.W_OK, root))).toBe('EROFS')
    expect(await code(vfs.access('/ro', fsc.W_OK, root))).toBe('EROFS')
    expect(await code(vfs.access('/ro/a.txt', fsc.R_OK, alice))).toBe('ok')
  })
})
