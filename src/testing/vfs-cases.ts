import { constants as fsc } from 'node:fs'
import { expect } from 'vitest'
import { isVfsError, type ErrnoCode, type VfsError } from '../vfs/errors.ts'
import type { NodeKind } from '../vfs/node.ts'
import type { CallerContext, ChangeEvent, Vfs } from '../vfs/vfs.ts'
import type { CaseContext, MountCapabilities, MountCase } from './mount-conformance.ts'

type Caps = Required<MountCapabilities>

/** The names the cases work on, relative to the mount. */
export interface Fixture {
  /** A file; undefined when the mount holds none (every case that needs one then fails). */
  file?: string | undefined
  /** A folder with entries that is neither `file`'s folder nor above it. */
  dir?: string | undefined
  /** Files found (or made), for the size and range checks; at most 50. */
  files: string[]
  /** Names that must exist. */
  names: string[]
}

/** Another user than the superuser and the process: `nobody`. */
export const OTHER: CallerContext = Object.freeze({ uid: 65534, gid: 65534, groups: [] })

const long = 'x'.repeat(256)

/** Makes the fixture of a writable mount: `file`, `sub/child`, `empty/`, and with symlinks `link`, `loop`, `dangling`. */
export async function makeFixture(vfs: Vfs, caps: Caps): Promise<Fixture> {
  await vfs.writeFile('/m/file', 'content')
  await vfs.mkdir('/m/sub')
  await vfs.writeFile('/m/sub/child', 'c')
  await vfs.mkdir('/m/empty')
  const names = ['file', 'sub', 'sub/child', 'empty']
  if (caps.symlinks) {
    await vfs.symlink('file', '/m/link')
    await vfs.symlink('loop', '/m/loop')
    await vfs.symlink('missing', '/m/dangling')
    names.push('link', 'loop', 'dangling')
  }
  return { file: 'file', dir: 'sub', files: ['file', 'sub/child'], names }
}

/** Finds the fixture of a read-only mount in its tree: the shallowest file, and a folder with entries beside it. */
export async function discoverFixture(vfs: Vfs): Promise<Fixture> {
  const files: string[] = []
  const dirs: string[] = []
  const queue = ['']
  let seen = 0
  while (queue.length > 0 && seen < 500) {
    const rel = queue.shift()!
    let entries
    try {
      entries = await vfs.readdirAll(rel ? '/m/' + rel : '/m')
    } catch {
      continue
    }
    if (rel && entries.length > 0) dirs.push(rel)
    for (const e of entries) {
      seen++
      const child = rel ? `${rel}/${e.name}` : e.name
      if (e.kind === 'file' && files.length < 50) files.push(child)
      if (e.kind === 'dir' && child.split('/').length <= 3) queue.push(child)
    }
  }
  const file = files[0]
  const dir = dirs.find(d => file === undefined || !(file + '/').startsWith(d + '/'))
  return { file, dir, files, names: [] }
}

/** Resolves to the VfsError `p` rejects with, or undefined when it resolves; other errors are rethrown. */
async function failure(p: Promise<unknown>): Promise<VfsError | undefined> {
  try {
    await p
  } catch (err) {
    if (isVfsError(err)) return err
    throw err
  }
  return undefined
}

/** Expects `p` to reject with the VfsError `code`. */
async function refuses(p: Promise<unknown>, code: ErrnoCode, what: string): Promise<void> {
  const err = await failure(p)
  expect(err?.code ?? 'no error', what).toBe(code)
}

function need(c: CaseContext, what: 'file' | 'dir'): string {
  const found = c.fixture[what]
  if (found !== undefined) return found
  if (what === 'file') throw new Error('the mount holds no file to test with: an empty fixture')
  return c.skip('the fixture has no folder with entries beside its first file')
}

const text = async (vfs: Vfs, p: string): Promise<string> => (await vfs.readFile(p)).toString()
const names = async (vfs: Vfs, p: string): Promise<string[]> => (await vfs.readdirAll(p)).map(e => e.name).sort()

/** Writes `data` at `offset` through a fresh handle opened with `flags`. */
async function writeAt(vfs: Vfs, p: string, offset: number, data: string, flags = fsc.O_WRONLY): Promise<void> {
  const fh = await vfs.open(p, flags)
  try {
    await vfs.write(fh, offset, Buffer.from(data))
  } finally {
    await vfs.release(fh)
  }
}

/** One row of the errno table: an operation that must fail with `code`, naming `syscall` and the path. */
interface Row {
  op: string
  code: ErrnoCode
  syscall: string
  /** The path the error names, relative to the mount; null for handle errors. */
  path: (c: CaseContext) => string | null
  run: (c: CaseContext) => Promise<unknown>
}

function errnoRows(caps: Caps): Row[] {
  const rw = caps.write
  const F = (c: CaseContext) => need(c, 'file')
  const D = (c: CaseContext) => need(c, 'dir')
  const p = (c: CaseContext, rel: string) => c.path(rel)
  const rows: Row[] = [
    { op: 'stat of a missing name', code: 'ENOENT', syscall: 'stat', path: () => 'nope', run: c => c.vfs.stat(p(c, 'nope')) },
    { op: 'stat through a file', code: 'ENOTDIR', syscall: 'stat', path: c => F(c) + '/x', run: c => c.vfs.stat(p(c, F(c) + '/x')) },
    { op: 'stat of a name over 255 bytes', code: 'ENAMETOOLONG', syscall: 'stat', path: () => long, run: c => c.vfs.stat(p(c, long)) },
    { op: 'stat with a NUL byte', code: 'EINVAL', syscall: 'stat', path: () => 'a\0b', run: c => c.vfs.stat(p(c, 'a\0b')) },
    { op: 'readdir of a file', code: 'ENOTDIR', syscall: 'scandir', path: F, run: c => c.vfs.readdir(p(c, F(c))) },
    { op: 'readdir of a missing folder', code: 'ENOENT', syscall: 'scandir', path: () => 'nope', run: c => c.vfs.readdir(p(c, 'nope')) },
    { op: 'open of a missing file', code: 'ENOENT', syscall: 'open', path: () => 'nope', run: c => c.vfs.open(p(c, 'nope')) },
    { op: 'open of a folder', code: 'EISDIR', syscall: 'open', path: D, run: c => c.vfs.open(p(c, D(c))) },
    { op: 'exclusive create of an existing file', code: 'EEXIST', syscall: 'open', path: F, run: c => c.vfs.open(p(c, F(c)), fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY) },
    { op: 'create in a missing folder', code: 'ENOENT', syscall: 'open', path: () => 'nope/f', run: c => c.vfs.create(p(c, 'nope/f')) },
    { op: 'create with a name over 255 bytes', code: 'ENAMETOOLONG', syscall: 'open', path: () => long, run: c => c.vfs.create(p(c, long)) },
    { op: 'mkdir of an existing name', code: 'EEXIST', syscall: 'mkdir', path: F, run: c => c.vfs.mkdir(p(c, F(c))) },
    { op: 'mkdir under a file', code: 'ENOTDIR', syscall: 'mkdir', path: c => F(c) + '/d', run: c => c.vfs.mkdir(p(c, F(c) + '/d')) },
    { op: 'unlink of a missing file', code: 'ENOENT', syscall: 'unlink', path: () => 'nope', run: c => c.vfs.unlink(p(c, 'nope')) },
    { op: 'unlink of a folder', code: 'EISDIR', syscall: 'unlink', path: D, run: c => c.vfs.unlink(p(c, D(c))) },
    { op: 'rmdir of a file', code: 'ENOTDIR', syscall: 'rmdir', path: F, run: c => c.vfs.rmdir(p(c, F(c))) },
    { op: 'rmdir of a folder with entries', code: rw ? 'ENOTEMPTY' : 'EROFS', syscall: 'rmdir', path: D, run: c => c.vfs.rmdir(p(c, D(c))) },
    { op: 'rename of a missing name', code: 'ENOENT', syscall: 'rename', path: () => 'nope', run: c => c.vfs.rename(p(c, 'nope'), p(c, 'x')) },
    { op: 'rename of a folder into itself', code: 'EINVAL', syscall: 'rename', path: D, run: c => c.vfs.rename(p(c, D(c)), p(c, D(c) + '/deeper')) },
    { op: 'rename of a file over a folder', code: 'EISDIR', syscall: 'rename', path: F, run: c => c.vfs.rename(p(c, F(c)), p(c, D(c))) },
    { op: 'rename of a folder over a file', code: 'ENOTDIR', syscall: 'rename', path: D, run: c => c.vfs.rename(p(c, D(c)), p(c, F(c))) },
    { op: 'rename onto an existing name with RENAME_NOREPLACE', code: 'EEXIST', syscall: 'rename', path: F, run: c => c.vfs.rename(p(c, F(c)), p(c, D(c)), undefined, 'noreplace') },
    { op: 'rename with RENAME_EXCHANGE onto a missing name', code: 'ENOENT', syscall: 'rename', path: F, run: c => c.vfs.rename(p(c, F(c)), p(c, 'none'), undefined, 'exchange') },
    { op: 'truncate of a folder', code: 'EISDIR', syscall: 'truncate', path: D, run: c => c.vfs.truncate(p(c, D(c)), 0) },
    { op: 'truncate to a negative size', code: 'EINVAL', syscall: 'truncate', path: F, run: c => c.vfs.truncate(p(c, F(c)), -1) },
    { op: 'readlink of a file', code: 'EINVAL', syscall: 'readlink', path: F, run: c => c.vfs.readlink(p(c, F(c))) },
    { op: 'readlink of a missing name', code: 'ENOENT', syscall: 'readlink', path: () => 'nope', run: c => c.vfs.readlink(p(c, 'nope')) },
    { op: 'symlink over an existing name', code: 'EEXIST', syscall: 'symlink', path: F, run: c => c.vfs.symlink('x', p(c, F(c))) },
    { op: 'symlink with an empty target', code: 'EINVAL', syscall: 'symlink', path: () => 'l2', run: c => c.vfs.symlink('', p(c, 'l2')) },
    { op: 'mknod over an existing name', code: 'EEXIST', syscall: 'mknod', path: F, run: c => c.vfs.mknod(p(c, F(c)), 'fifo') },
    { op: 'link of a folder', code: 'EPERM', syscall: 'link', path: D, run: c => c.vfs.link(p(c, D(c)), p(c, 'dirlink')) },
    { op: 'link onto an existing name', code: 'EEXIST', syscall: 'link', path: F, run: c => c.vfs.link(p(c, F(c)), p(c, F(c))) },
    { op: 'getxattr of an absent attribute', code: caps.xattrs ? 'ENODATA' : 'EOPNOTSUPP', syscall: 'getxattr', path: F, run: c => c.vfs.getxattr(p(c, F(c)), 'user.none') },
    { op: 'setxattr of a system attribute', code: 'EOPNOTSUPP', syscall: 'setxattr', path: F, run: c => c.vfs.setxattr(p(c, F(c)), 'system.posix_acl_access', Buffer.from('x')) },
    { op: 'setxattr with XATTR_REPLACE of an absent attribute', code: caps.xattrs ? 'ENODATA' : 'EOPNOTSUPP', syscall: 'setxattr', path: F, run: c => c.vfs.setxattr(p(c, F(c)), 'user.none', Buffer.from('x'), 2) },
    { op: 'removexattr of an absent attribute', code: caps.xattrs ? 'ENODATA' : 'EOPNOTSUPP', syscall: 'removexattr', path: F, run: c => c.vfs.removexattr(p(c, F(c)), 'user.none') },
    { op: 'read through a closed handle', code: 'EBADF', syscall: 'read', path: () => null, run: c => c.vfs.read(999_999, 0, 10) },
    {
      op: 'write through a handle open for reading',
      code: 'EBADF',
      syscall: 'write',
      path: F,
      run: async c => {
        const fh = await c.vfs.open(p(c, F(c)), fsc.O_RDONLY)
        try {
          await c.vfs.write(fh, 0, Buffer.from('x'))
        } finally {
          await c.vfs.release(fh)
        }
      },
    },
  ]
  if (rw) {
    rows.push(
      { op: 'rename of a folder over a folder with entries', code: 'ENOTEMPTY', syscall: 'rename', path: () => 'empty', run: c => c.vfs.rename(p(c, 'empty'), p(c, 'sub')) },
      {
        op: 'read through a handle open for writing only',
        code: 'EBADF',
        syscall: 'read',
        path: F,
        run: async c => {
          const fh = await c.vfs.open(p(c, F(c)), fsc.O_WRONLY)
          try {
            await c.vfs.read(fh, 0, 1)
          } finally {
            await c.vfs.release(fh)
          }
        },
      },
    )
    if (caps.symlinks) {
      rows.push(
        { op: 'stat through a symlink loop', code: 'ELOOP', syscall: 'stat', path: () => 'loop', run: c => c.vfs.stat(p(c, 'loop')) },
        { op: 'stat of a dangling symlink', code: 'ENOENT', syscall: 'stat', path: () => 'dangling', run: c => c.vfs.stat(p(c, 'dangling')) },
      )
    } else {
      rows.push({ op: 'symlink on a mount without symlinks', code: 'EROFS', syscall: 'symlink', path: () => 'l', run: c => c.vfs.symlink('file', p(c, 'l')) })
    }
    if (caps.hardLinks) rows.push({ op: 'link onto a name in a missing folder', code: 'ENOENT', syscall: 'link', path: F, run: c => c.vfs.link(p(c, F(c)), p(c, 'nope/hard')) })
    else rows.push({ op: 'link on a mount without hard links', code: 'EPERM', syscall: 'link', path: F, run: c => c.vfs.link(p(c, F(c)), p(c, 'hard')) })
    if (caps.specialFiles) {
      rows.push({
        op: 'open of a fifo through the VFS',
        code: 'ENXIO',
        syscall: 'open',
        path: () => 'pipe',
        run: async c => {
          await c.vfs.mknod(p(c, 'pipe'), 'fifo', 0o644)
          try {
            await c.vfs.open(p(c, 'pipe'))
          } finally {
            await c.vfs.unlink(p(c, 'pipe'))
          }
        },
      })
    } else rows.push({ op: 'mknod on a mount without special files', code: 'EPERM', syscall: 'mknod', path: () => 'pipe', run: c => c.vfs.mknod(p(c, 'pipe'), 'fifo') })
    if (caps.xattrs) {
      rows.push({
        op: 'setxattr with XATTR_CREATE of an existing attribute',
        code: 'EEXIST',
        syscall: 'setxattr',
        path: F,
        run: async c => {
          await c.vfs.setxattr(p(c, F(c)), 'user.once', Buffer.from('1'))
          try {
            await c.vfs.setxattr(p(c, F(c)), 'user.once', Buffer.from('2'), 1)
          } finally {
            await c.vfs.removexattr(p(c, F(c)), 'user.once')
          }
        },
      })
    } else rows.push({ op: 'setxattr on a mount without extended attributes', code: 'EOPNOTSUPP', syscall: 'setxattr', path: F, run: c => c.vfs.setxattr(p(c, F(c)), 'user.x', Buffer.from('x')) })
    if (!caps.renameExchange) rows.push({ op: 'RENAME_EXCHANGE on a mount without it', code: 'EINVAL', syscall: 'rename', path: F, run: c => c.vfs.rename(p(c, F(c)), p(c, D(c)), undefined, 'exchange') })
    if (!caps.chmod) rows.push({ op: 'chmod on a mount that keeps no modes', code: 'EPERM', syscall: 'chmod', path: F, run: c => c.vfs.chmod(p(c, F(c)), 0o600) })
    if (!caps.chown) rows.push({ op: 'chown on a mount that keeps no owners', code: 'EPERM', syscall: 'chown', path: F, run: c => c.vfs.chown(p(c, F(c)), 1, 1) })
  } else {
    rows.push(
      { op: 'create in a read-only mount', code: 'EROFS', syscall: 'open', path: () => 'new-file', run: c => c.vfs.create(p(c, 'new-file')) },
      { op: 'open for writing in a read-only mount', code: 'EROFS', syscall: 'open', path: F, run: c => c.vfs.open(p(c, F(c)), fsc.O_WRONLY) },
      { op: 'writeFile in a read-only mount', code: 'EROFS', syscall: 'open', path: F, run: c => c.vfs.writeFile(p(c, F(c)), 'changed') },
      { op: 'mkdir in a read-only mount', code: 'EROFS', syscall: 'mkdir', path: () => 'new-dir', run: c => c.vfs.mkdir(p(c, 'new-dir')) },
      { op: 'unlink in a read-only mount', code: 'EROFS', syscall: 'unlink', path: F, run: c => c.vfs.unlink(p(c, F(c))) },
      { op: 'rename in a read-only mount', code: 'EROFS', syscall: 'rename', path: F, run: c => c.vfs.rename(p(c, F(c)), p(c, 'renamed')) },
      { op: 'truncate in a read-only mount', code: 'EROFS', syscall: 'truncate', path: F, run: c => c.vfs.truncate(p(c, F(c)), 0) },
      { op: 'chmod in a read-only mount', code: 'EROFS', syscall: 'chmod', path: F, run: c => c.vfs.chmod(p(c, F(c)), 0o600) },
      { op: 'chown in a read-only mount', code: 'EROFS', syscall: 'chown', path: F, run: c => c.vfs.chown(p(c, F(c)), 1, 1) },
      { op: 'utimens in a read-only mount', code: 'EROFS', syscall: 'utime', path: F, run: c => c.vfs.utimens(p(c, F(c)), 0, 0) },
      { op: 'symlink in a read-only mount', code: 'EROFS', syscall: 'symlink', path: () => 'l', run: c => c.vfs.symlink('x', p(c, 'l')) },
      { op: 'mknod in a read-only mount', code: 'EROFS', syscall: 'mknod', path: () => 'pipe', run: c => c.vfs.mknod(p(c, 'pipe'), 'fifo') },
      { op: 'link in a read-only mount', code: 'EROFS', syscall: 'link', path: F, run: c => c.vfs.link(p(c, F(c)), p(c, 'hard')) },
      { op: 'setxattr in a read-only mount', code: 'EOPNOTSUPP', syscall: 'setxattr', path: F, run: c => c.vfs.setxattr(p(c, F(c)), 'user.x', Buffer.from('x')) },
      { op: 'RENAME_EXCHANGE in a read-only mount', code: 'EINVAL', syscall: 'rename', path: F, run: c => c.vfs.rename(p(c, F(c)), p(c, D(c)), undefined, 'exchange') },
    )
  }
  return rows
}

/** A snapshot of the tree: every name with its kind, and the content of every file (up to 200 nodes). */
async function snapshot(vfs: Vfs): Promise<string[]> {
  const out: string[] = []
  const walk = async (rel: string): Promise<void> => {
    for (const e of await vfs.readdirAll(rel ? '/m/' + rel : '/m')) {
      if (out.length >= 200) return
      const child = rel ? `${rel}/${e.name}` : e.name
      if (e.kind === 'file') out.push(`${child} file ${(await vfs.readFile('/m/' + child)).toString('base64')}`)
      else if (e.kind === 'symlink') out.push(`${child} -> ${await vfs.readlink('/m/' + child)}`)
      else out.push(`${child} ${e.kind}`)
      if (e.kind === 'dir') await walk(child)
    }
  }
  await walk('')
  return out.sort()
}

function errnoCases(caps: Caps): MountCase[] {
  const rows = errnoRows(caps)
  const cases: MountCase[] = rows.map(row => ({
    name: `rejects ${row.op} with ${row.code}`,
    run: async c => {
      const err = await failure(row.run(c))
      expect(err?.code ?? 'no error', row.op).toBe(row.code)
      expect(err!.syscall, `${row.op}: syscall`).toBe(row.syscall)
      const rel = row.path(c)
      if (rel !== null) {
        expect(err!.path, `${row.op}: path`).toBe(c.path(rel))
        expect(err!.message).toContain(`${row.code}: `)
      }
    },
  }))
  cases.push({
    name: 'leaves the tree unchanged after every refused operation',
    run: async c => {
      need(c, 'file')
      const before = await snapshot(c.vfs)
      for (const row of rows) await row.run(c).catch(() => undefined)
      expect(await snapshot(c.vfs)).toEqual(before)
    },
  })
  return cases
}

function listingCases(caps: Caps): MountCase[] {
  return [
    {
      name: caps.write ? 'lists what was made in it, and every name the fixture names' : 'lists content in its tree, and every name the fixture names (an empty mount fails)',
      run: async c => {
        const root = await c.vfs.stat(c.path())
        expect(root.kind).toBe('dir')
        const listed = await c.vfs.readdirAll(c.path())
        expect(listed.length, 'entries listed in the mount root').toBeGreaterThan(0)
        need(c, 'file')
        for (const n of c.fixture.names) expect((await failure(c.vfs.lstat(c.path(n))))?.code ?? 'exists', n).toBe('exists')
      },
    },
    {
      name: 'lists a folder in pages that add up to the whole listing without duplicates',
      run: async c => {
        let folder = ''
        if (caps.write) {
          folder = 'many'
          await c.vfs.mkdir(c.path(folder))
          for (let i = 0; i < 25; i++) await c.vfs.writeFile(c.path(`${folder}/f${String(i).padStart(2, '0')}`), String(i))
        }
        const all = (await c.vfs.readdirAll(c.path(folder))).map(e => e.name)
        expect(all.length).toBeGreaterThan(0)
        const paged: string[] = []
        let cursor: string | undefined
        do {
          const page = await c.vfs.readdir(c.path(folder), cursor === undefined ? { limit: 2 } : { limit: 2, cursor })
          expect(page.entries.length).toBeLessThanOrEqual(2)
          paged.push(...page.entries.map(e => e.name))
          cursor = page.cursor
        } while (cursor !== undefined)
        expect(paged).toEqual(all)
        expect(new Set(all).size).toBe(all.length)
        if (caps.write) expect(all.length).toBe(25)
      },
    },
    {
      name: 'reports on stat the exact byte length that reading returns, and type bits that match the kind',
      run: async c => {
        need(c, 'file')
        const files = [...c.fixture.files]
        if (caps.write) {
          for (const size of [0, 1, 4095, 4096, 4097, 300_000]) {
            await c.vfs.writeFile(c.path(`size-${size}`), Buffer.alloc(size, 0x61))
            files.push(`size-${size}`)
          }
        }
        for (const f of files) {
          const st = await c.vfs.stat(c.path(f))
          expect(st.kind, f).toBe('file')
          expect(st.mode & fsc.S_IFMT, f).toBe(fsc.S_IFREG)
          expect(st.size, f).toBe((await c.vfs.readFile(c.path(f))).length)
        }
        const d = await c.vfs.stat(c.path(c.fixture.dir ?? ''))
        expect(d.mode & fsc.S_IFMT).toBe(fsc.S_IFDIR)
      },
    },
    {
      name: 'reads byte ranges that match slices of the whole file, and nothing past its end',
      run: async c => {
        let f = need(c, 'file')
        if (caps.write) {
          f = 'ranges'
          await c.vfs.writeFile(c.path(f), Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251)))
        }
        const whole = await c.vfs.readFile(c.path(f))
        const fh = await c.vfs.open(c.path(f))
        try {
          const half = Math.floor(whole.length / 2)
          for (const [offset, length] of [[0, 1], [1, 3], [half, 7], [Math.max(0, whole.length - 2), 100], [whole.length, 10], [whole.length + 5, 10]] as const) {
            const got = Buffer.from(await c.vfs.read(fh, offset, length))
            expect(got.equals(whole.subarray(offset, offset + length)), `${f} @${offset}+${length}`).toBe(true)
          }
        } finally {
          await c.vfs.release(fh)
        }
      },
    },
    {
      name: 'answers statfs with a block size and a 255-byte name limit',
      run: async c => {
        const s = await c.vfs.statfs(c.path())
        expect(s.bsize).toBeGreaterThan(0)
        expect(s.namemax).toBe(255)
        expect(s.bavail).toBeLessThanOrEqual(s.blocks)
      },
    },
  ]
}

function readOnlyCases(): MountCase[] {
  return [
    {
      name: 'shows no write bits on the files and folders of a read-only mount',
      run: async c => {
        need(c, 'file')
        const rels = ['', ...c.fixture.files, ...(c.fixture.dir ? [c.fixture.dir] : [])]
        for (const rel of rels) expect((await c.vfs.stat(c.path(rel))).mode & 0o222, rel || '/').toBe(0)
      },
    },
  ]
}

function writeCases(caps: Caps): MountCase[] {
  const cases: MountCase[] = [
    {
      name: 'creates a file with the mode asked, owned by the caller, that lists, stats and reads back',
      run: async c => {
        const fh = await c.vfs.create(c.path('new.txt'), 0o640, fsc.O_WRONLY)
        await c.vfs.write(fh, 0, Buffer.from('hello\n'))
        await c.vfs.release(fh)
        expect(await names(c.vfs, c.path())).toContain('new.txt')
        const st = await c.vfs.stat(c.path('new.txt'))
        expect(st.mode).toBe(fsc.S_IFREG | 0o640)
        expect([st.uid, st.gid]).toEqual([process.getuid?.() ?? 0, process.getgid?.() ?? 0])
        expect(st.size).toBe(6)
        expect(st.nlink).toBe(1)
        expect(await text(c.vfs, c.path('new.txt'))).toBe('hello\n')
      },
    },
    {
      name: 'writes at offsets, reads a hole as zeros, and appends at the end with O_APPEND',
      run: async c => {
        await c.vfs.writeFile(c.path('w'), 'abc')
        await writeAt(c.vfs, c.path('w'), 1, 'XY')
        expect(await text(c.vfs, c.path('w'))).toBe('aXY')
        await writeAt(c.vfs, c.path('w'), 100_000, 'end')
        const bytes = await c.vfs.readFile(c.path('w'))
        expect(bytes.length).toBe(100_003)
        expect(bytes.subarray(3, 100_000).every(b => b === 0)).toBe(true)
        await c.vfs.writeFile(c.path('log'), 'one\n')
        await writeAt(c.vfs, c.path('log'), 0, 'two\n', fsc.O_WRONLY | fsc.O_APPEND)
        expect(await text(c.vfs, c.path('log'))).toBe('one\ntwo\n')
      },
    },
    {
      name: 'empties a file opened with O_TRUNC and reports the new size through the open handle',
      run: async c => {
        await c.vfs.writeFile(c.path('t'), 'a long first version')
        const fh = await c.vfs.open(c.path('t'), fsc.O_RDWR | fsc.O_TRUNC)
        try {
          expect((await c.vfs.fstat(fh)).size).toBe(0)
          await c.vfs.write(fh, 0, Buffer.from('short'))
          expect((await c.vfs.fstat(fh)).size).toBe(5)
        } finally {
          await c.vfs.release(fh)
        }
        expect(await text(c.vfs, c.path('t'))).toBe('short')
      },
    },
    {
      name: 'truncates to grow with zeros and to cut, by path and by handle',
      run: async c => {
        await c.vfs.writeFile(c.path('cut'), 'abcdef')
        await c.vfs.truncate(c.path('cut'), 10)
        expect((await c.vfs.readFile(c.path('cut'))).equals(Buffer.from('abcdef\0\0\0\0'))).toBe(true)
        await c.vfs.truncate(c.path('cut'), 2)
        expect(await text(c.vfs, c.path('cut'))).toBe('ab')
        expect((await c.vfs.stat(c.path('cut'))).size).toBe(2)
        const fh = await c.vfs.open(c.path('cut'), fsc.O_RDWR)
        try {
          await c.vfs.ftruncate(fh, 0)
          await c.vfs.ftruncate(fh, 3)
        } finally {
          await c.vfs.release(fh)
        }
        expect((await c.vfs.readFile(c.path('cut'))).equals(Buffer.alloc(3))).toBe(true)
      },
    },
    {
      name: 'makes folders with the mode asked and removes empty ones with rmdir, after which stat fails with ENOENT',
      run: async c => {
        await c.vfs.mkdir(c.path('d'), 0o750)
        await c.vfs.mkdir(c.path('d/e'))
        expect((await c.vfs.stat(c.path('d'))).mode).toBe(fsc.S_IFDIR | 0o750)
        await refuses(c.vfs.rmdir(c.path('d')), 'ENOTEMPTY', 'rmdir of a folder with a folder in it')
        await c.vfs.rmdir(c.path('d/e'))
        await c.vfs.rmdir(c.path('d'))
        await refuses(c.vfs.stat(c.path('d')), 'ENOENT', 'stat after rmdir')
        expect(await names(c.vfs, c.path())).not.toContain('d')
      },
    },
    {
      name: 'removes a file with unlink, after which stat fails with ENOENT and the listing no longer has it',
      run: async c => {
        await c.vfs.writeFile(c.path('gone'), 'x')
        await c.vfs.unlink(c.path('gone'))
        await refuses(c.vfs.stat(c.path('gone')), 'ENOENT', 'stat after unlink')
        expect(await names(c.vfs, c.path())).not.toContain('gone')
      },
    },
    {
      name: 'renames a file over an existing one: the old name goes and the target has the moved content',
      run: async c => {
        await c.vfs.writeFile(c.path('a'), 'A')
        await c.vfs.writeFile(c.path('b'), 'B')
        await c.vfs.rename(c.path('a'), c.path('b'))
        expect(await text(c.vfs, c.path('b'))).toBe('A')
        await refuses(c.vfs.stat(c.path('a')), 'ENOENT', 'stat of the old name')
        const listed = await names(c.vfs, c.path())
        expect(listed).toContain('b')
        expect(listed).not.toContain('a')
      },
    },
    {
      name: 'renames a file into another folder, a folder with its contents, and a folder over an empty one',
      run: async c => {
        await c.vfs.rename(c.path('file'), c.path('sub/moved'))
        expect(await text(c.vfs, c.path('sub/moved'))).toBe('content')
        await c.vfs.rename(c.path('sub'), c.path('renamed'))
        expect(await names(c.vfs, c.path('renamed'))).toEqual(['child', 'moved'])
        await refuses(c.vfs.stat(c.path('sub')), 'ENOENT', 'stat of the old folder name')
        await c.vfs.rename(c.path('renamed'), c.path('empty'))
        expect(await text(c.vfs, c.path('empty/child'))).toBe('c')
        await refuses(c.vfs.stat(c.path('renamed')), 'ENOENT', 'stat of the replaced folder name')
      },
    },
    {
      name: 'renames with RENAME_NOREPLACE onto a free name, and a rename onto the same name changes nothing',
      run: async c => {
        await c.vfs.rename(c.path('file'), c.path('free'), undefined, 'noreplace')
        expect(await text(c.vfs, c.path('free'))).toBe('content')
        await c.vfs.rename(c.path('free'), c.path('free'))
        expect(await text(c.vfs, c.path('free'))).toBe('content')
      },
    },
    caps.renameExchange
      ? {
          name: 'swaps two names with RENAME_EXCHANGE, a file with a folder',
          run: async c => {
            await c.vfs.rename(c.path('file'), c.path('sub'), undefined, 'exchange')
            expect(await text(c.vfs, c.path('file/child'))).toBe('c')
            expect(await text(c.vfs, c.path('sub'))).toBe('content')
          },
        }
      : {
          name: 'refuses RENAME_EXCHANGE with EINVAL and leaves both names as they were',
          run: async c => {
            await refuses(c.vfs.rename(c.path('file'), c.path('sub'), undefined, 'exchange'), 'EINVAL', 'RENAME_EXCHANGE')
            expect(await text(c.vfs, c.path('file'))).toBe('content')
            expect(await text(c.vfs, c.path('sub/child'))).toBe('c')
          },
        },
    caps.unlinkOpen
      ? {
          name: 'keeps an unlinked file readable and writable through a handle opened before',
          run: async c => {
            await c.vfs.writeFile(c.path('open'), 'still here')
            const fh = await c.vfs.open(c.path('open'), fsc.O_RDWR)
            try {
              await c.vfs.unlink(c.path('open'))
              await refuses(c.vfs.stat(c.path('open')), 'ENOENT', 'stat of the unlinked name')
              expect(Buffer.from(await c.vfs.read(fh, 0, 100)).toString()).toBe('still here')
              await c.vfs.write(fh, 0, Buffer.from('STILL'))
              expect(Buffer.from(await c.vfs.read(fh, 0, 100)).toString()).toBe('STILL here')
            } finally {
              await c.vfs.release(fh)
            }
          },
        }
      : {
          name: 'removes the name of an open file at once when it is unlinked',
          run: async c => {
            await c.vfs.writeFile(c.path('open'), 'x')
            const fh = await c.vfs.open(c.path('open'), fsc.O_RDONLY)
            try {
              await c.vfs.unlink(c.path('open'))
              await refuses(c.vfs.stat(c.path('open')), 'ENOENT', 'stat of the unlinked name')
            } finally {
              await c.vfs.release(fh).catch(() => undefined)
            }
          },
        },
    caps.chmod
      ? {
          name: 'sets permission bits with chmod, keeping setuid, setgid and sticky bits and the file type',
          run: async c => {
            await c.vfs.chmod(c.path('file'), 0o600)
            expect((await c.vfs.stat(c.path('file'))).mode).toBe(fsc.S_IFREG | 0o600)
            await c.vfs.chmod(c.path('file'), 0o6755)
            expect((await c.vfs.stat(c.path('file'))).mode).toBe(fsc.S_IFREG | 0o6755)
            await c.vfs.chmod(c.path('sub'), 0o1777)
            expect((await c.vfs.stat(c.path('sub'))).mode).toBe(fsc.S_IFDIR | 0o1777)
          },
        }
      : {
          name: 'refuses chmod with EPERM and keeps the mode',
          run: async c => {
            const before = (await c.vfs.stat(c.path('file'))).mode
            await refuses(c.vfs.chmod(c.path('file'), 0o600), 'EPERM', 'chmod')
            expect((await c.vfs.stat(c.path('file'))).mode).toBe(before)
          },
        },
    caps.chown
      ? {
          name: 'sets owner and group with chown, -1 leaving a field as it is',
          run: async c => {
            await c.vfs.chown(c.path('file'), 1234, 5678)
            let st = await c.vfs.stat(c.path('file'))
            expect([st.uid, st.gid]).toEqual([1234, 5678])
            await c.vfs.chown(c.path('file'), -1, 99)
            st = await c.vfs.stat(c.path('file'))
            expect([st.uid, st.gid]).toEqual([1234, 99])
            await c.vfs.chown(c.path('sub'), 42, -1)
            expect((await c.vfs.stat(c.path('sub'))).uid).toBe(42)
          },
        }
      : {
          name: 'refuses chown with EPERM and keeps the owner',
          run: async c => {
            const before = await c.vfs.stat(c.path('file'))
            await refuses(c.vfs.chown(c.path('file'), 1234, 5678), 'EPERM', 'chown')
            expect((await c.vfs.stat(c.path('file'))).uid).toBe(before.uid)
          },
        },
    {
      name: 'sets access and modification times independently (UTIME_OMIT) and to the current time (UTIME_NOW)',
      run: async c => {
        const p = c.path('file')
        const T1 = 1_500_000_000_000_000_000n
        const T2 = 1_600_000_000_000_000_000n
        await c.vfs.utimens(p, 1_000_000, 2_000_000)
        let st = await c.vfs.stat(p)
        expect([st.atimeMs, st.mtimeMs]).toEqual([1_000_000, 2_000_000])
        await c.vfs.setattr(p, { atime: T1 })
        st = await c.vfs.stat(p)
        expect([st.atimeNs, st.mtimeMs]).toEqual([T1, 2_000_000])
        await c.vfs.setattr(p, { mtime: T2, atime: 'omit' })
        st = await c.vfs.stat(p)
        expect([st.atimeNs, st.mtimeNs]).toEqual([T1, T2])
        const before = Date.now()
        await c.vfs.setattr(p, { mtime: 'now' })
        st = await c.vfs.stat(p)
        expect(st.atimeNs).toBe(T1)
        expect(st.mtimeMs).toBeGreaterThanOrEqual(before - 1)
        expect(st.mtimeMs).toBeLessThanOrEqual(Date.now() + 1)
      },
    },
    {
      name: caps.nanosecondTimes ? 'keeps times set to the nanosecond exactly' : 'keeps times set to the nanosecond at least to the millisecond',
      run: async c => {
        const p = c.path('file')
        const ns = 1_600_000_000_123_456_789n
        await c.vfs.setattr(p, { atime: ns - 1n, mtime: ns })
        const st = await c.vfs.stat(p)
        if (caps.nanosecondTimes) {
          expect([st.atimeNs, st.mtimeNs]).toEqual([ns - 1n, ns])
        } else {
          expect(Math.abs(st.mtimeMs - 1_600_000_000_123.456789)).toBeLessThan(1)
          expect(Math.abs(st.atimeMs - 1_600_000_000_123.456788)).toBeLessThan(1)
        }
      },
    },
    {
      name: 'moves the modification time forward on a write and the change time on chmod',
      run: async c => {
        const p = c.path('file')
        await c.vfs.utimens(p, 1_000_000, 1_000_000)
        const old = await c.vfs.stat(p)
        await writeAt(c.vfs, p, 0, 'C')
        const written = await c.vfs.stat(p)
        expect(written.mtimeMs).toBeGreaterThan(1_000_000)
        expect(written.ctimeMs).toBeGreaterThanOrEqual(old.ctimeMs)
        if (caps.chmod) {
          await c.vfs.chmod(p, 0o600)
          expect((await c.vfs.stat(p)).ctimeMs).toBeGreaterThanOrEqual(written.ctimeMs)
        }
      },
    },
    {
      name: 'makes fsync and fsyncdir succeed',
      run: async c => {
        const fh = await c.vfs.open(c.path('file'), fsc.O_RDWR | fsc.O_TRUNC)
        try {
          await c.vfs.write(fh, 0, Buffer.from('synced'))
          await c.vfs.fsync(fh)
          await c.vfs.fsync(fh, true)
        } finally {
          await c.vfs.release(fh)
        }
        await c.vfs.fsyncdir(c.path())
        await c.vfs.fsyncdir(c.path('sub'))
        expect(await text(c.vfs, c.path('file'))).toBe('synced')
      },
    },
    {
      name: 'reports every mutation as a change event on the VFS bus',
      run: async c => {
        const events: ChangeEvent[] = []
        const stop = c.vfs.watch('/m', e => events.push(e))
        try {
          await c.vfs.writeFile(c.path('ev'), 'x')
          await c.vfs.mkdir(c.path('evd'))
          await c.vfs.rename(c.path('ev'), c.path('evd/ev'))
          await c.vfs.truncate(c.path('evd/ev'), 0)
          await c.vfs.unlink(c.path('evd/ev'))
          await c.vfs.rmdir(c.path('evd'))
        } finally {
          stop()
        }
        const seen = events.map(e => `${e.type} ${e.path}`)
        for (const want of ['create /m/ev', 'create /m/evd', 'rename /m/evd/ev', 'update /m/evd/ev', 'delete /m/evd/ev', 'delete /m/evd']) expect(seen).toContain(want)
        expect(events.find(e => e.type === 'rename')?.oldPath).toBe('/m/ev')
      },
    },
  ]

  cases.push(
    caps.symlinks
      ? {
          name: 'makes symlinks that readlink returns, lstat sees as links with the target length as size, and stat and paths follow',
          run: async c => {
            expect(await c.vfs.readlink(c.path('link'))).toBe('file')
            const l = await c.vfs.lstat(c.path('link'))
            expect(l.kind).toBe('symlink')
            expect(l.mode & fsc.S_IFMT).toBe(fsc.S_IFLNK)
            expect(l.size).toBe(4)
            expect((await c.vfs.stat(c.path('link'))).kind).toBe('file')
            expect(await text(c.vfs, c.path('link'))).toBe('content')
            await c.vfs.symlink('sub', c.path('to-sub'))
            expect(await text(c.vfs, c.path('to-sub/child'))).toBe('c')
            await c.vfs.symlink('/m/sub/child', c.path('absolute'))
            expect(await text(c.vfs, c.path('absolute'))).toBe('c')
            await c.vfs.unlink(c.path('link'))
            expect(await text(c.vfs, c.path('file'))).toBe('content')
            await c.vfs.rename(c.path('to-sub'), c.path('moved-link'))
            expect(await c.vfs.readlink(c.path('moved-link'))).toBe('sub')
          },
        }
      : {
          name: 'refuses symlink with EROFS on a mount without symlinks',
          run: async c => {
            await refuses(c.vfs.symlink('file', c.path('l')), 'EROFS', 'symlink')
            await refuses(c.vfs.lstat(c.path('l')), 'ENOENT', 'lstat of the refused link')
          },
        },
  )
  if (caps.symlinks) {
    cases.push({
      name: 'changes a symlink itself with lchown and lutimes, not its target',
      run: async c => {
        const target = await c.vfs.stat(c.path('file'))
        if (caps.chown) {
          await c.vfs.lchown(c.path('link'), 4321, 8765)
          const l = await c.vfs.lstat(c.path('link'))
          expect([l.uid, l.gid]).toEqual([4321, 8765])
          expect((await c.vfs.stat(c.path('file'))).uid).toBe(target.uid)
        }
        await c.vfs.lutimes(c.path('link'), 3_000_000, 4_000_000)
        expect((await c.vfs.lstat(c.path('link'))).mtimeMs).toBe(4_000_000)
        expect((await c.vfs.stat(c.path('file'))).mtimeMs).toBe(target.mtimeMs)
      },
    })
  }

  cases.push(
    caps.hardLinks
      ? {
          name: 'makes hard links that share content and inode, count names in nlink, and outlive the first name',
          run: async c => {
            await c.vfs.link(c.path('file'), c.path('twin'))
            const [a, b] = [await c.vfs.stat(c.path('file')), await c.vfs.stat(c.path('twin'))]
            expect([a.nlink, b.nlink]).toEqual([2, 2])
            expect(a.ino).toBe(b.ino)
            await writeAt(c.vfs, c.path('twin'), 7, '+more', fsc.O_WRONLY)
            expect(await text(c.vfs, c.path('file'))).toBe('content+more')
            await c.vfs.link(c.path('file'), c.path('sub/triplet'))
            expect((await c.vfs.stat(c.path('twin'))).nlink).toBe(3)
            await c.vfs.unlink(c.path('file'))
            expect((await c.vfs.stat(c.path('twin'))).nlink).toBe(2)
            expect(await text(c.vfs, c.path('sub/triplet'))).toBe('content+more')
            // POSIX: a rename between two names of one file does nothing
            await c.vfs.rename(c.path('twin'), c.path('sub/triplet'))
            expect((await c.vfs.stat(c.path('sub/triplet'))).nlink).toBe(2)
            expect(await names(c.vfs, c.path())).toContain('twin')
            await c.vfs.unlink(c.path('twin'))
            expect((await c.vfs.stat(c.path('sub/triplet'))).nlink).toBe(1)
          },
        }
      : {
          name: 'refuses link with EPERM on a mount without hard links, and makes no name',
          run: async c => {
            await refuses(c.vfs.link(c.path('file'), c.path('twin')), 'EPERM', 'link')
            await refuses(c.vfs.stat(c.path('twin')), 'ENOENT', 'stat of the refused link')
            expect((await c.vfs.stat(c.path('file'))).nlink).toBe(1)
          },
        },
    caps.specialFiles
      ? {
          name: 'makes fifos, sockets and device nodes with mknod, which stat reports with their kind, mode and rdev',
          run: async c => {
            const kinds: Array<[string, 'fifo' | 'socket' | 'chardev' | 'blockdev', number, number]> = [
              ['pipe', 'fifo', fsc.S_IFIFO, 0],
              ['sock', 'socket', fsc.S_IFSOCK, 0],
              ['null', 'chardev', fsc.S_IFCHR, 0x0103],
              ['disk', 'blockdev', fsc.S_IFBLK, 0x0801],
            ]
            for (const [name, kind, type, rdev] of kinds) {
              await c.vfs.mknod(c.path(name), kind, 0o640, rdev)
              const st = await c.vfs.lstat(c.path(name))
              expect(st.kind, name).toBe(kind as NodeKind)
              expect(st.mode, name).toBe(type | 0o640)
              expect(st.rdev, name).toBe(rdev)
              expect(st.size, name).toBe(0)
            }
            expect((await c.vfs.readdirAll(c.path())).filter(e => e.name === 'pipe').map(e => e.kind)).toEqual(['fifo'])
            await c.vfs.rename(c.path('pipe'), c.path('sub/pipe'))
            expect((await c.vfs.lstat(c.path('sub/pipe'))).kind).toBe('fifo')
            await c.vfs.unlink(c.path('sub/pipe'))
            await refuses(c.vfs.lstat(c.path('sub/pipe')), 'ENOENT', 'lstat of the removed fifo')
          },
        }
      : {
          name: 'refuses mknod of a fifo with EPERM on a mount without special files',
          run: async c => {
            await refuses(c.vfs.mknod(c.path('pipe'), 'fifo'), 'EPERM', 'mknod')
            await refuses(c.vfs.lstat(c.path('pipe')), 'ENOENT', 'lstat of the refused fifo')
          },
        },
    caps.xattrs
      ? {
          name: 'sets, lists, reads and removes user.* extended attributes of files and folders, binary values intact',
          run: async c => {
            const value = Buffer.from([0, 1, 2, 255, 10, 0])
            await c.vfs.setxattr(c.path('file'), 'user.bin', value)
            await c.vfs.setxattr(c.path('file'), 'user.text', Buffer.from('hello'))
            await c.vfs.setxattr(c.path('sub'), 'user.dir', Buffer.from('d'))
            expect(Buffer.from(await c.vfs.getxattr(c.path('file'), 'user.bin')).equals(value)).toBe(true)
            expect((await c.vfs.listxattr(c.path('file'))).sort()).toEqual(['user.bin', 'user.text'])
            expect(Buffer.from(await c.vfs.getxattr(c.path('sub'), 'user.dir')).toString()).toBe('d')
            await c.vfs.setxattr(c.path('file'), 'user.text', Buffer.from('replaced'), 2)
            expect(Buffer.from(await c.vfs.getxattr(c.path('file'), 'user.text')).toString()).toBe('replaced')
            await c.vfs.setxattr(c.path('file'), 'user.empty', Buffer.alloc(0))
            expect((await c.vfs.getxattr(c.path('file'), 'user.empty')).length).toBe(0)
            await c.vfs.removexattr(c.path('file'), 'user.bin')
            await refuses(c.vfs.getxattr(c.path('file'), 'user.bin'), 'ENODATA', 'getxattr of the removed attribute')
            await c.vfs.rename(c.path('file'), c.path('renamed'))
            expect((await c.vfs.listxattr(c.path('renamed'))).sort()).toEqual(['user.empty', 'user.text'])
          },
        }
      : {
          name: 'refuses setxattr with EOPNOTSUPP on a mount without extended attributes, and lists none',
          run: async c => {
            await refuses(c.vfs.setxattr(c.path('file'), 'user.x', Buffer.from('x')), 'EOPNOTSUPP', 'setxattr')
            expect(await c.vfs.listxattr(c.path('file'))).toEqual([])
          },
        },
  )
  return cases
}

function permissionCases(caps: Caps): MountCase[] {
  const cases: MountCase[] = [
    {
      name: 'refuses a read of a 0600 file of another owner with EACCES',
      run: async c => {
        const fh = await c.vfs.create(c.path('secret'), 0o600)
        await c.vfs.write(fh, 0, Buffer.from('only the owner'))
        await c.vfs.release(fh)
        await refuses(c.vfs.readFile(c.path('secret'), OTHER), 'EACCES', 'read by another user')
        await refuses(c.vfs.access(c.path('secret'), fsc.R_OK, OTHER), 'EACCES', 'access(R_OK) by another user')
        expect(await text(c.vfs, c.path('secret'))).toBe('only the owner')
      },
    },
    {
      name: 'lets another user read a 0644 file and refuses its write with EACCES, leaving the content',
      run: async c => {
        const fh = await c.vfs.create(c.path('shared'), 0o644)
        await c.vfs.write(fh, 0, Buffer.from('shared'))
        await c.vfs.release(fh)
        expect(await text(c.vfs, c.path('shared'))).toBe('shared')
        expect((await c.vfs.readFile(c.path('shared'), OTHER)).toString()).toBe('shared')
        await refuses(c.vfs.writeFile(c.path('shared'), 'defaced', OTHER), 'EACCES', 'write by another user')
        await refuses(c.vfs.truncate(c.path('shared'), 0, OTHER), 'EACCES', 'truncate by another user')
        expect(await text(c.vfs, c.path('shared'))).toBe('shared')
      },
    },
    {
      name: 'gives a file and a folder made by another user in a 0777 folder to that user and group',
      run: async c => {
        await c.vfs.mkdir(c.path('open'), 0o777)
        const fh = await c.vfs.create(c.path('open/mine'), 0o644, fsc.O_WRONLY, OTHER)
        await c.vfs.write(fh, 0, Buffer.from('x'), OTHER)
        await c.vfs.release(fh, OTHER)
        await c.vfs.mkdir(c.path('open/mydir'), 0o755, OTHER)
        for (const n of ['open/mine', 'open/mydir']) {
          const st = await c.vfs.stat(c.path(n))
          expect([st.uid, st.gid], n).toEqual([65534, 65534])
        }
        if (caps.chmod) {
          await c.vfs.chmod(c.path('open/mine'), 0o600, OTHER)
          expect((await c.vfs.stat(c.path('open/mine'))).mode & 0o777).toBe(0o600)
        }
      },
    },
    {
      name: 'refuses making a name in a 0755 folder of another owner with EACCES',
      run: async c => {
        await refuses(c.vfs.create(c.path('sub/intruder'), 0o644, fsc.O_WRONLY, OTHER), 'EACCES', 'create')
        await refuses(c.vfs.mkdir(c.path('sub/intruder'), 0o755, OTHER), 'EACCES', 'mkdir')
        await refuses(c.vfs.unlink(c.path('sub/child'), OTHER), 'EACCES', 'unlink')
        await refuses(c.vfs.rename(c.path('sub/child'), c.path('sub/stolen'), OTHER), 'EACCES', 'rename')
        expect(await names(c.vfs, c.path('sub'))).toEqual(['child'])
      },
    },
    {
      name: 'refuses chmod, chown and explicit utimes by a non-owner with EPERM',
      run: async c => {
        const before = await c.vfs.stat(c.path('file'))
        await refuses(c.vfs.chmod(c.path('file'), 0o777, OTHER), 'EPERM', 'chmod by a non-owner')
        await refuses(c.vfs.chown(c.path('file'), 65534, 65534, OTHER), 'EPERM', 'chown by a non-owner')
        await refuses(c.vfs.utimens(c.path('file'), 0, 0, OTHER), 'EPERM', 'utimens by a non-owner')
        const after = await c.vfs.stat(c.path('file'))
        expect([after.mode, after.uid, after.mtimeMs]).toEqual([before.mode, before.uid, before.mtimeMs])
      },
    },
    {
      name: 'refuses search of a 0700 folder of another owner with EACCES',
      run: async c => {
        await c.vfs.mkdir(c.path('private'), 0o700)
        await c.vfs.writeFile(c.path('private/x'), 'x')
        await refuses(c.vfs.stat(c.path('private/x'), OTHER), 'EACCES', 'stat inside')
        await refuses(c.vfs.readdir(c.path('private'), {}, OTHER), 'EACCES', 'readdir')
      },
    },
    {
      name: 'refuses removing another user’s file from a sticky folder with EPERM',
      run: async c => {
        await c.vfs.mkdir(c.path('tmp'), 0o1777)
        if (((await c.vfs.stat(c.path('tmp'))).mode & 0o1000) === 0) return c.skip('the mount keeps no sticky bit')
        await c.vfs.writeFile(c.path('tmp/roots'), 'r')
        await refuses(c.vfs.unlink(c.path('tmp/roots'), OTHER), 'EPERM', 'unlink in a sticky folder')
        await refuses(c.vfs.rename(c.path('tmp/roots'), c.path('tmp/mine'), OTHER), 'EPERM', 'rename in a sticky folder')
        await c.vfs.writeFile(c.path('tmp/own'), 'o', OTHER)
        await c.vfs.unlink(c.path('tmp/own'), OTHER)
        expect(await names(c.vfs, c.path('tmp'))).toEqual(['roots'])
      },
    },
  ]
  if (caps.chown && caps.chmod) {
    cases.push({
      name: 'gives new nodes in a setgid folder the folder’s group, and new folders the setgid bit',
      run: async c => {
        await c.vfs.mkdir(c.path('team'), 0o2777)
        await c.vfs.chown(c.path('team'), -1, 4242)
        await c.vfs.chmod(c.path('team'), 0o2777)
        await c.vfs.writeFile(c.path('team/f'), 'x', OTHER)
        await c.vfs.mkdir(c.path('team/d'), 0o755, OTHER)
        const f = await c.vfs.stat(c.path('team/f'))
        const d = await c.vfs.stat(c.path('team/d'))
        expect([f.uid, f.gid]).toEqual([65534, 4242])
        expect(d.gid).toBe(4242)
        expect(d.mode & 0o2000).toBe(0o2000)
      },
    })
  }
  return cases
}

/** The in-process cases for a mount with these capabilities. */
export function vfsCases(caps: Caps): MountCase[] {
  return [...listingCases(caps), ...errnoCases(caps), ...(caps.write ? [...writeCases(caps), ...permissionCases(caps)] : readOnlyCases())]
}
