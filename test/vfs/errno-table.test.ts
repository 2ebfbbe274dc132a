import { constants as fsc } from 'node:fs'
import { beforeEach, describe, expect, it } from 'vitest'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { dir, file } from '../../src/views/view.ts'
import { vfsError, VfsError, type ErrnoCode } from '../../src/vfs/errors.ts'

/** One operation that must fail: what it is, which errno, which syscall name, which path the message names. */
interface Row {
  op: string
  run: (vfs: Vfs) => Promise<unknown>
  code: ErrnoCode
  syscall: string
  path: string
}

const long = 'x'.repeat(256)

const rows: Row[] = [
  { op: 'stat of a missing file', run: v => v.stat('/m/nope'), code: 'ENOENT', syscall: 'stat', path: '/m/nope' },
  { op: 'stat through a file', run: v => v.stat('/m/file/x'), code: 'ENOTDIR', syscall: 'stat', path: '/m/file/x' },
  { op: 'stat of a name over 255 bytes', run: v => v.stat(`/m/${long}`), code: 'ENAMETOOLONG', syscall: 'stat', path: `/m/${long}` },
  { op: 'stat above the root', run: v => v.stat('/m/../../etc'), code: 'EINVAL', syscall: 'stat', path: '/m/../../etc' },
  { op: 'stat with a NUL byte', run: v => v.stat('/m/a\0b'), code: 'EINVAL', syscall: 'stat', path: '/m/a\0b' },
  { op: 'stat outside every mount', run: v => v.stat('/elsewhere'), code: 'ENOENT', syscall: 'stat', path: '/elsewhere' },
  { op: 'readdir of a file', run: v => v.readdir('/m/file'), code: 'ENOTDIR', syscall: 'scandir', path: '/m/file' },
  { op: 'readdir of a missing dir', run: v => v.readdir('/m/nope'), code: 'ENOENT', syscall: 'scandir', path: '/m/nope' },
  { op: 'open of a missing file', run: v => v.open('/m/nope'), code: 'ENOENT', syscall: 'open', path: '/m/nope' },
  { op: 'open of a directory', run: v => v.open('/m/sub'), code: 'EISDIR', syscall: 'open', path: '/m/sub' },
  { op: 'exclusive create of an existing file', run: v => v.open('/m/file', fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY), code: 'EEXIST', syscall: 'open', path: '/m/file' },
  { op: 'create in a missing dir', run: v => v.create('/m/nope/f'), code: 'ENOENT', syscall: 'open', path: '/m/nope/f' },
  { op: 'open for write in a read-only view', run: v => v.open('/ro/a.txt', fsc.O_WRONLY), code: 'EROFS', syscall: 'open', path: '/ro/a.txt' },
  { op: 'create in a read-only view', run: v => v.create('/ro/new.txt'), code: 'EROFS', syscall: 'open', path: '/ro/new.txt' },
  { op: 'writeFile into a read-only view', run: v => v.writeFile('/ro/a.txt', 'x'), code: 'EROFS', syscall: 'open', path: '/ro/a.txt' },
  { op: 'mkdir of an existing name', run: v => v.mkdir('/m/file'), code: 'EEXIST', syscall: 'mkdir', path: '/m/file' },
  { op: 'mkdir in a missing dir', run: v => v.mkdir('/m/nope/d'), code: 'ENOENT', syscall: 'mkdir', path: '/m/nope/d' },
  { op: 'mkdir under a file', run: v => v.mkdir('/m/file/d'), code: 'ENOTDIR', syscall: 'mkdir', path: '/m/file/d' },
  { op: 'mkdir in a read-only view', run: v => v.mkdir('/ro/d'), code: 'EROFS', syscall: 'mkdir', path: '/ro/d' },
  { op: 'mkdir over a mount point', run: v => v.mkdir('/m/inner'), code: 'EEXIST', syscall: 'mkdir', path: '/m/inner' },
  { op: 'unlink of a missing file', run: v => v.unlink('/m/nope'), code: 'ENOENT', syscall: 'unlink', path: '/m/nope' },
  { op: 'unlink of a directory', run: v => v.unlink('/m/sub'), code: 'EISDIR', syscall: 'unlink', path: '/m/sub' },
  { op: 'unlink in a read-only view', run: v => v.unlink('/ro/a.txt'), code: 'EROFS', syscall: 'unlink', path: '/ro/a.txt' },
  { op: 'rmdir of a file', run: v => v.rmdir('/m/file'), code: 'ENOTDIR', syscall: 'rmdir', path: '/m/file' },
  { op: 'rmdir of a non-empty dir', run: v => v.rmdir('/m/sub'), code: 'ENOTEMPTY', syscall: 'rmdir', path: '/m/sub' },
  { op: 'rmdir of a mount point', run: v => v.rmdir('/m/inner'), code: 'EBUSY', syscall: 'rmdir', path: '/m/inner' },
  { op: 'rmdir of the root', run: v => v.rmdir('/'), code: 'EBUSY', syscall: 'rmdir', path: '/' },
  { op: 'rename of a missing file', run: v => v.rename('/m/nope', '/m/x'), code: 'ENOENT', syscall: 'rename', path: '/m/nope' },
  { op: 'rename across mounts', run: v => v.rename('/m/file', '/other/file'), code: 'EXDEV', syscall: 'rename', path: '/m/file' },
  { op: 'rename of a dir into itself', run: v => v.rename('/m/sub', '/m/sub/deeper'), code: 'EINVAL', syscall: 'rename', path: '/m/sub' },
  { op: 'rename of a file over a dir', run: v => v.rename('/m/file', '/m/sub'), code: 'EISDIR', syscall: 'rename', path: '/m/file' },
  { op: 'rename of a dir over a file', run: v => v.rename('/m/sub', '/m/file'), code: 'ENOTDIR', syscall: 'rename', path: '/m/sub' },
  { op: 'rename of a dir over a non-empty dir', run: v => v.rename('/m/empty', '/m/sub'), code: 'ENOTEMPTY', syscall: 'rename', path: '/m/empty' },
  { op: 'rename of a mount point', run: v => v.rename('/m/inner', '/m/moved'), code: 'EBUSY', syscall: 'rename', path: '/m/inner' },
  { op: 'rename in a read-only view', run: v => v.rename('/ro/a.txt', '/ro/b.txt'), code: 'EROFS', syscall: 'rename', path: '/ro/a.txt' },
  { op: 'truncate of a dir', run: v => v.truncate('/m/sub', 0), code: 'EISDIR', syscall: 'truncate', path: '/m/sub' },
  { op: 'truncate to a negative size', run: v => v.truncate('/m/file', -1), code: 'EINVAL', syscall: 'truncate', path: '/m/file' },
  { op: 'truncate in a read-only view', run: v => v.truncate('/ro/a.txt', 0), code: 'EROFS', syscall: 'truncate', path: '/ro/a.txt' },
  { op: 'chmod of a missing file', run: v => v.chmod('/m/nope', 0o600), code: 'ENOENT', syscall: 'chmod', path: '/m/nope' },
  { op: 'chmod in a read-only view', run: v => v.chmod('/ro/a.txt', 0o600), code: 'EROFS', syscall: 'chmod', path: '/ro/a.txt' },
  { op: 'chown in a read-only view', run: v => v.chown('/ro/a.txt', 1, 1), code: 'EROFS', syscall: 'chown', path: '/ro/a.txt' },
  { op: 'utimens in a read-only view', run: v => v.utimens('/ro/a.txt', 0, 0), code: 'EROFS', syscall: 'utime', path: '/ro/a.txt' },
  { op: 'readlink of a file', run: v => v.readlink('/m/file'), code: 'EINVAL', syscall: 'readlink', path: '/m/file' },
  { op: 'readlink of a missing file', run: v => v.readlink('/m/nope'), code: 'ENOENT', syscall: 'readlink', path: '/m/nope' },
  { op: 'symlink over an existing name', run: v => v.symlink('x', '/m/file'), code: 'EEXIST', syscall: 'symlink', path: '/m/file' },
  { op: 'symlink with an empty target', run: v => v.symlink('', '/m/l2'), code: 'EINVAL', syscall: 'symlink', path: '/m/l2' },
  { op: 'symlink in a read-only view', run: v => v.symlink('a.txt', '/ro/l'), code: 'EROFS', syscall: 'symlink', path: '/ro/l' },
  { op: 'stat through a symlink loop', run: v => v.stat('/m/loop'), code: 'ELOOP', syscall: 'stat', path: '/m/loop' },
  { op: 'stat of a dangling symlink', run: v => v.stat('/m/dangling'), code: 'ENOENT', syscall: 'stat', path: '/m/dangling' },
  { op: 'create with a name over 255 bytes', run: v => v.create(`/m/${long}`), code: 'ENAMETOOLONG', syscall: 'open', path: `/m/${long}` },
  { op: 'write past the space limit', run: v => v.writeFile('/small/big', new Uint8Array(2 << 20)), code: 'ENOSPC', syscall: 'write', path: '/small/big' },
  { op: 'truncate beyond the largest file', run: v => v.truncate('/m/file', 999_999_999_999_999), code: 'EFBIG', syscall: 'truncate', path: '/m/file' },
  { op: 'link of a folder', run: v => v.link('/m/sub', '/m/dirlink'), code: 'EPERM', syscall: 'link', path: '/m/sub' },
  { op: 'link across mounts', run: v => v.link('/m/file', '/small/file'), code: 'EXDEV', syscall: 'link', path: '/m/file' },
  { op: 'mknod in a read-only view', run: v => v.mknod('/ro/pipe', 'fifo'), code: 'EROFS', syscall: 'mknod', path: '/ro/pipe' },
  { op: 'rename onto an existing name with RENAME_NOREPLACE', run: v => v.rename('/m/file', '/m/sub', undefined, 'noreplace'), code: 'EEXIST', syscall: 'rename', path: '/m/file' },
  { op: 'rename exchange with a missing target', run: v => v.rename('/m/file', '/m/none', undefined, 'exchange'), code: 'ENOENT', syscall: 'rename', path: '/m/file' },
  { op: 'getxattr of an absent attribute', run: v => v.getxattr('/m/file', 'user.none'), code: 'ENODATA', syscall: 'getxattr', path: '/m/file' },
  { op: 'setxattr with XATTR_REPLACE of an absent attribute', run: v => v.setxattr('/m/file', 'user.none', Buffer.from('x'), 2), code: 'ENODATA', syscall: 'setxattr', path: '/m/file' },
  { op: 'setxattr of a system attribute', run: v => v.setxattr('/m/file', 'system.posix_acl_access', Buffer.from('x')), code: 'EOPNOTSUPP', syscall: 'setxattr', path: '/m/file' },
  { op: 'read through a closed handle', run: v => v.read(999_999, 0, 10), code: 'EBADF', syscall: 'read', path: undefined as unknown as string },
]

describe('errno table on the memory mount and a read-only view', () => {
  let vfs: Vfs
  beforeEach(async () => {
    vfs = createVfs({
      logger: silentLogger,
      mounts: {
        '/m': memoryMount(),
        '/m/inner': memoryMount(),
        '/other': memoryMount(),
        '/small': memoryMount({ maxBytes: 1 << 20 }),
        '/ro': { name: 'ro', root: dir({ 'a.txt': file('a\n') }) },
      },
    })
    await vfs.writeFile('/m/file', 'content')
    await vfs.mkdir('/m/sub')
    await vfs.writeFile('/m/sub/child', 'c')
    await vfs.mkdir('/m/empty')
    await vfs.symlink('loop', '/m/loop')
    await vfs.symlink('missing', '/m/dangling')
  })

  it.each(rows)('rejects $op with $code', async row => {
    const err = await row.run(vfs).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err, `${row.op} should fail`).toBeDefined()
    expect(err).toMatchObject({ name: 'VfsError', code: row.code, syscall: row.syscall })
    if (row.path !== undefined) {
      expect((err as { path: string }).path).toBe(row.path)
      expect((err as Error).message).toContain(`${row.code}: `)
      expect((err as Error).message).toContain(`, ${row.syscall} '${row.path}'`)
    }
  })

  it('leaves the tree unchanged after every refused operation', async () => {
    for (const row of rows) await row.run(vfs).catch(() => undefined)
    expect((await vfs.readFile('/m/file')).toString()).toBe('content')
    expect((await vfs.readdirAll('/m')).map(e => e.name).sort()).toEqual(['dangling', 'empty', 'file', 'inner', 'loop', 'sub'])
    expect((await vfs.readdirAll('/m/sub')).map(e => e.name)).toEqual(['child'])
    expect((await vfs.readFile('/ro/a.txt')).toString()).toBe('a\n')
    expect((await vfs.readdirAll('/other'))).toEqual([])
  })
})

describe('VfsError stacks', () => {
  it('carries no stack frames for an answer (ENOENT, ENODATA, EEXIST) and keeps them for a fault, without changing the stack limit', () => {
    const limit = Error.stackTraceLimit
    for (const code of ['ENOENT', 'ENODATA', 'EEXIST'] as const) {
      const e = vfsError(code)
      expect(e.stack ?? '').not.toMatch(/\n\s+at /)
      expect(e.message).toBe(new VfsError(code).message)
    }
    expect(vfsError('EIO', 'disk gone').stack).toMatch(/\n\s+at .*errno-table\.test\.ts/)
    expect(vfsError('ENOTDIR').stack).toMatch(/\n\s+at /)
    expect(Error.stackTraceLimit).toBe(limit)
    expect(new Error('plain').stack).toMatch(/\n\s+at /)
  })
})
