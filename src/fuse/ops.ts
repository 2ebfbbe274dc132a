import { constants as fsc } from 'node:fs'
import { vfsError } from '../vfs/errors.ts'
import type { StatFs } from '../vfs/node.ts'
import type { Stat, Vfs } from '../vfs/vfs.ts'
import type { Answer } from './answer.ts'
import type { FuseCallback, FuseInstance } from './binding.ts'

/** A stat as fuse-native's `getStatArray` reads it; times in milliseconds. */
interface FuseStat {
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
  blksize: number
  blocks: number
  atime: number
  mtime: number
  ctime: number
}

/** Statfs figures as fuse-native's `getStatfsArray` reads them (every field a uint32). */
interface FuseStatfs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  namemax: number
}

const UINT32_MAX = 0xffff_ffff
/** `(uid_t)-1` as fuse-native passes it: "leave the owner as it is". */
const UNCHANGED_ID = UINT32_MAX
/**
 * fuse-native turns a timespec into milliseconds, so `UTIME_NOW` and `UTIME_OMIT`
 * (tv_sec 0, tv_nsec 2^30-1 or 2^30-2) both arrive as 1073.
 */
const UTIME_SPECIAL_MS = 1073

function toFuseStat(s: Stat): FuseStat {
  return {
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    nlink: s.nlink,
    blksize: s.blksize,
    blocks: s.blocks,
    atime: s.atimeMs,
    mtime: s.mtimeMs,
    ctime: s.ctimeMs,
  }
}

/** Fits statfs figures into fuse-native's uint32 fields by growing the fragment size. */
export function toFuseStatfs(s: StatFs): FuseStatfs {
  let frsize = s.bsize
  let { blocks, bfree, bavail } = s
  while (blocks > UINT32_MAX) {
    frsize *= 2
    blocks = Math.floor(blocks / 2)
    bfree = Math.floor(bfree / 2)
    bavail = Math.floor(bavail / 2)
  }
  const files = Math.min(s.files, UINT32_MAX)
  const ffree = Math.min(s.ffree, UINT32_MAX)
  return { bsize: s.bsize, frsize, blocks, bfree, bavail, files, ffree, favail: ffree, namemax: s.namemax }
}

/** Options for {@link createFuseOps}. */
export interface FuseOpsOptions {
  /** Answers each call exactly once (see `answer.ts`). */
  answer: Answer
}

/**
 * Builds fuse-native's handler object over a {@link Vfs}: one handler per op the VFS
 * supports, each answering through `answer` (exactly once, errno-mapped, guarded).
 *
 * File-handle numbers are the Vfs's own. Ops left out on purpose: the xattr ops (the
 * kernel then answers `EOPNOTSUPP` itself and stops asking, so `ls -l` costs no extra
 * round trip per entry), and `opendir`/`releasedir`/`init` (nothing to do).
 */
export function createFuseOps(vfs: Vfs, { answer }: FuseOpsOptions): Record<string, (...args: never[]) => void> {
  const ok = (): number => 0
  const stat = (s: Stat): [number, FuseStat] => [0, toFuseStat(s)]
  const release = (fh: number): void => {
    vfs.release(fh).catch(() => {})
  }

  return {
    /** Existence, plus the mode bits for `W_OK`/`X_OK` (a rendered view file is 0444, so `test -w` is false). */
    access(path: string, mode: number, cb: FuseCallback) {
      answer('access', path, cb, async () => {
        const s = await vfs.stat(path)
        if (mode & fsc.W_OK && (s.mode & 0o222) === 0) throw vfsError('EACCES')
        if (mode & fsc.X_OK && (s.mode & 0o111) === 0) throw vfsError('EACCES')
      }, ok)
    },

    statfs(path: string, cb: FuseCallback) {
      answer('statfs', path, cb, () => vfs.statfs(path), s => [0, toFuseStatfs(s)])
    },

    getattr(path: string, cb: FuseCallback) {
      answer('getattr', path, cb, () => vfs.lstat(path), stat)
    },

    /** Called through the instance's `_op_fgetattr` (see {@link patchFgetattr}). */
    fgetattr(path: string, fd: number, cb: FuseCallback) {
      answer('fgetattr', path, cb, () => (fd > 0 ? vfs.fstat(fd) : vfs.lstat(path)), stat)
    },

    readdir(path: string, cb: FuseCallback) {
      answer('readdir', path, cb, () => vfs.readdirAll(path), entries => {
        const names = new Array<string>(entries.length + 2)
        names[0] = '.'
        names[1] = '..'
        for (let i = 0; i < entries.length; i++) names[i + 2] = entries[i]!.name
        return [0, names]
      })
    },

    readlink(path: string, cb: FuseCallback) {
      answer('readlink', path, cb, () => vfs.readlink(path), target => [0, target])
    },

    open(path: string, flags: number, cb: FuseCallback) {
      answer('open', path, cb, () => vfs.open(path, flags), fh => [0, fh], release)
    },

    create(path: string, mode: number, cb: FuseCallback) {
      // fuse-native passes no open flags to create; O_RDWR lets the caller read back through its descriptor.
      answer('create', path, cb, () => vfs.create(path, mode & 0o7777, fsc.O_RDWR), fh => [0, fh], release)
    },

    mknod(path: string, mode: number, _dev: number, cb: FuseCallback) {
      answer('mknod', path, cb, async () => {
        if ((mode & fsc.S_IFMT) !== fsc.S_IFREG) throw vfsError('EPERM', 'only regular files can be made')
        const fh = await vfs.create(path, mode & 0o7777, fsc.O_WRONLY | fsc.O_EXCL)
        await vfs.release(fh)
      }, ok)
    },

    read(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: FuseCallback) {
      // the mount fills fuse-native's buffer itself; the guard's answer detaches it, so a late read writes nowhere
      answer('read', path, cb, () => vfs.readInto(fd, pos, len === buf.length ? buf : buf.subarray(0, len)), n => n)
    },

    write(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: FuseCallback) {
      // fuse-native lends `buf` only until this call is answered (then detaches it, so a
      // kept view would read as empty): writeLent copies it for a mount that may keep it
      answer('write', path, cb, () => vfs.writeLent(fd, pos, len === buf.length ? buf : buf.subarray(0, len)), n => n)
    },

    flush(path: string, fd: number, cb: FuseCallback) {
      answer('flush', path, cb, () => vfs.flush(fd), ok)
    },

    fsync(path: string, datasync: number, fd: number, cb: FuseCallback) {
      answer('fsync', path, cb, () => vfs.fsync(fd, datasync !== 0), ok)
    },

    fsyncdir(path: string, _datasync: number, _fd: number, cb: FuseCallback) {
      answer('fsyncdir', path, cb, () => vfs.access(path), ok)
    },

    release(path: string, fd: number, cb: FuseCallback) {
      // close(2) has already returned: it waits for FLUSH, never for RELEASE, and the kernel
      // drops RELEASE's answer. What a release may still wait for (a chain's group commit)
      // runs on without holding a FUSE thread and a slot of the kernel's background queue,
      // which had releases queue by the thousand behind commits when files are made fast.
      answer('release', path, cb, () => void release(fd), ok)
    },

    truncate(path: string, size: number, cb: FuseCallback) {
      answer('truncate', path, cb, () => vfs.truncate(path, size), ok)
    },

    ftruncate(path: string, fd: number, size: number, cb: FuseCallback) {
      answer('ftruncate', path, cb, () => vfs.ftruncate(fd, size), ok)
    },

    chmod(path: string, mode: number, cb: FuseCallback) {
      answer('chmod', path, cb, () => vfs.chmod(path, mode & 0o7777), ok)
    },

    chown(path: string, uid: number, gid: number, cb: FuseCallback) {
      const u = uid === UNCHANGED_ID ? -1 : uid
      const g = gid === UNCHANGED_ID ? -1 : gid
      answer('chown', path, cb, () => vfs.chown(path, u, g), ok)
    },

    /**
     * fuse-native hands over the access time twice (its binding drops the modification
     * time), so both times are set to it; `UTIME_NOW`/`UTIME_OMIT` mean now.
     */
    utimens(path: string, atime: number, _mtime: number, cb: FuseCallback) {
      const t = atime === UTIME_SPECIAL_MS ? Date.now() : atime
      answer('utimens', path, cb, () => vfs.utimens(path, t, t), ok)
    },

    unlink(path: string, cb: FuseCallback) {
      answer('unlink', path, cb, () => vfs.unlink(path), ok)
    },

    rename(src: string, dest: string, cb: FuseCallback) {
      answer('rename', src, cb, () => vfs.rename(src, dest), ok)
    },

    link(src: string, _dest: string, cb: FuseCallback) {
      answer('link', src, cb, () => {
        throw vfsError('EPERM', 'hard links are not supported')
      }, ok)
    },

    symlink(target: string, path: string, cb: FuseCallback) {
      answer('symlink', path, cb, () => vfs.symlink(target, path), ok)
    },

    mkdir(path: string, mode: number, cb: FuseCallback) {
      answer('mkdir', path, cb, () => vfs.mkdir(path, mode & 0o7777), ok)
    },

    rmdir(path: string, cb: FuseCallback) {
      answer('rmdir', path, cb, () => vfs.rmdir(path), ok)
    },
  }
}

/**
 * Makes fuse-native's `fgetattr` reach the handler with the file handle. fuse-native
 * 2.2.6 routes `fgetattr` to `ops.getattr(path)`, dropping the handle, so a file's
 * unflushed size (and a file unlinked while open) would be looked up by path.
 */
export function patchFgetattr(fuse: FuseInstance, fgetattr: (path: string, fd: number, cb: FuseCallback) => void): void {
  fuse._op_fgetattr = (signal, path, fd) => {
    fgetattr(path, fd, (code, stat) => signal(code, code === 0 ? getStatArray(stat as FuseStat) : undefined))
  }
}

function setDouble(arr: Uint32Array, i: number, n: number): void {
  arr[i] = n % 4294967296
  arr[i + 1] = (n - arr[i]!) / 4294967296
}

/** The same layout as fuse-native's private `getStatArray`. */
function getStatArray(s: FuseStat): Uint32Array {
  const a = new Uint32Array(18)
  a[0] = s.mode
  a[1] = s.uid
  a[2] = s.gid
  setDouble(a, 3, s.size)
  a[6] = s.nlink
  a[9] = s.blksize
  setDouble(a, 10, s.blocks)
  setDouble(a, 12, s.atime)
  setDouble(a, 14, s.mtime)
  setDouble(a, 16, s.ctime)
  return a
}
