import { constants as fsc } from 'node:fs'
import { vfsError } from '../vfs/errors.ts'
import type { StatFs } from '../vfs/node.ts'
import type { CallerContext, NodeTimeSpec, SpecialKind, Stat, Vfs } from '../vfs/vfs.ts'
import type { Answer } from './answer.ts'
import type { FuseCallback, FuseRequestContext } from './binding.ts'

/** A time as fuse-napi takes it in a stat and gives it in `utimensWithTimespec`. */
interface Timespec {
  seconds: number | bigint
  nanoseconds: number
}

/** A stat as fuse-napi's `getStatArray` reads it. */
interface FuseStat {
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
  ino: number
  rdev: number
  blksize: number
  blocks: number
  atime: Timespec
  mtime: Timespec
  ctime: Timespec
}

/** Statfs figures as fuse-napi reads them. */
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

/** `(uid_t)-1` as the binding passes it: "leave the owner as it is". */
const UNCHANGED_ID = 0xffff_ffff
/** utimensat's special nanosecond values. */
const UTIME_NOW = (1 << 30) - 1
const UTIME_OMIT = (1 << 30) - 2
/** renameat2 flags. */
const RENAME_NOREPLACE = 1
const RENAME_EXCHANGE = 2
/** The prefix libfuse gives a file it hides instead of unlinking while it is open. */
const HIDDEN_PREFIX = '.fuse_hidden'
const NS = 1_000_000_000n

function timespec(ns: bigint): Timespec {
  const s = ns / NS
  let rem = ns - s * NS
  let sec = s
  if (rem < 0n) {
    rem += NS
    sec -= 1n
  }
  return { seconds: Number(sec), nanoseconds: Number(rem) }
}

function toFuseStat(s: Stat): FuseStat {
  return {
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    nlink: s.nlink,
    ino: s.ino,
    rdev: s.rdev,
    blksize: s.blksize,
    blocks: s.blocks,
    atime: timespec(s.atimeNs),
    mtime: timespec(s.mtimeNs),
    ctime: timespec(s.ctimeNs),
  }
}

/** Statfs figures for the binding; a fragment size equal to the block size. */
export function toFuseStatfs(s: StatFs): FuseStatfs {
  return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, namemax: s.namemax }
}

/** A utimensat time as the binding gives it, for {@link Vfs.setattr}. */
function timeOf(t: Timespec): NodeTimeSpec {
  if (t.nanoseconds === UTIME_NOW) return 'now'
  if (t.nanoseconds === UTIME_OMIT) return 'omit'
  return BigInt(t.seconds) * NS + BigInt(t.nanoseconds)
}

const SPECIAL: Record<number, SpecialKind> = {
  [fsc.S_IFIFO]: 'fifo',
  [fsc.S_IFCHR]: 'chardev',
  [fsc.S_IFBLK]: 'blockdev',
  [fsc.S_IFSOCK]: 'socket',
}

/** Options for {@link createFuseOps}. */
export interface FuseOpsOptions {
  /** Answers each call exactly once (see `answer.ts`). */
  answer: Answer
  /** The caller of the request being handled (fuse-napi's `context()`), `null` outside one. */
  context: () => FuseRequestContext | null
}

/**
 * Builds fuse-napi's handler object over a {@link Vfs}: one handler per op the VFS
 * supports, each answering through `answer` (exactly once, errno-mapped, guarded) on
 * behalf of the request's caller (uid, gid, umask from the kernel).
 *
 * The kernel resolves symlinks and checks permissions itself (`default_permissions`),
 * so every path op here acts on the path's last name as it is (`lchown`, `lutimes`,
 * `lgetxattr`) and calls carry `permissionsChecked`. File-handle numbers are the Vfs's own.
 * Ops left out on purpose: `access` (never sent with `default_permissions`), `lock` and
 * `flock` (the kernel keeps local locks itself when they are absent).
 */
export function createFuseOps(vfs: Vfs, { answer, context }: FuseOpsOptions): Record<string, (...args: never[]) => void> {
  const ok = (): number => 0
  const stat = (s: Stat): [number, FuseStat] => [0, toFuseStat(s)]
  const release = (fh: number): void => {
    vfs.release(fh).catch(() => {})
  }
  /** Names libfuse hid instead of unlinking (a file still open when removed), by path: already gone from the tree. */
  const hidden = new Set<string>()
  const callers = new Map<string, CallerContext>()
  const caller = (): CallerContext | undefined => {
    const c = context()
    if (!c) return undefined
    const key = `${c.uid}:${c.gid}`
    let found = callers.get(key)
    if (!found) {
      if (callers.size > 256) callers.clear()
      found = Object.freeze({ uid: c.uid, gid: c.gid, permissionsChecked: true })
      callers.set(key, found)
    }
    return found
  }
  const nofollow = { follow: false } as const

  return {
    statfs(path: string, cb: FuseCallback) {
      answer('statfs', path, cb, () => vfs.statfs(path, caller()), s => [0, toFuseStatfs(s)])
    },

    getattr(path: string, cb: FuseCallback) {
      answer('getattr', path, cb, () => vfs.lstat(path, caller()), stat)
    },

    fgetattr(path: string, fd: number, cb: FuseCallback) {
      answer('fgetattr', path, cb, () => (fd > 0 ? vfs.fstat(fd, caller()) : vfs.lstat(path, caller())), stat)
    },

    readdir(path: string, cb: FuseCallback) {
      answer('readdir', path, cb, () => vfs.readdirAll(path, caller()), entries => {
        const names = new Array<string>(entries.length + 2)
        names[0] = '.'
        names[1] = '..'
        for (let i = 0; i < entries.length; i++) names[i + 2] = entries[i]!.name
        return [0, names]
      })
    },

    readlink(path: string, cb: FuseCallback) {
      answer('readlink', path, cb, () => vfs.readlink(path, caller()), target => [0, target])
    },

    open(path: string, flags: number, cb: FuseCallback) {
      answer('open', path, cb, () => vfs.open(path, flags, 0, caller()), fh => [0, fh], release)
    },

    createWithFlags(path: string, mode: number, flags: number, cb: FuseCallback) {
      answer('create', path, cb, () => vfs.create(path, mode & 0o7777, flags, caller()), fh => [0, fh], release)
    },

    mknod(path: string, mode: number, dev: number, cb: FuseCallback) {
      answer('mknod', path, cb, async () => {
        const type = mode & fsc.S_IFMT
        if (type === fsc.S_IFREG || type === 0) {
          const fh = await vfs.create(path, mode & 0o7777, fsc.O_WRONLY | fsc.O_EXCL, caller())
          await vfs.release(fh)
          return
        }
        const kind = SPECIAL[type]
        if (!kind) throw vfsError('EINVAL', 'unknown node type')
        await vfs.mknod(path, kind, mode & 0o7777, Number(dev), caller())
      }, ok)
    },

    read(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: FuseCallback) {
      answer('read', path, cb, () => vfs.readInto(fd, pos, len === buf.length ? buf : buf.subarray(0, len), caller()), n => n)
    },

    write(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: FuseCallback) {
      // fuse-napi hands over a copy the request owns: a mount may keep it as it is
      answer('write', path, cb, () => vfs.write(fd, pos, len === buf.length ? buf : buf.subarray(0, len), caller()), n => n)
    },

    flush(path: string, fd: number, cb: FuseCallback) {
      answer('flush', path, cb, () => vfs.flush(fd, caller()), ok)
    },

    fsync(path: string, datasync: number, fd: number, cb: FuseCallback) {
      answer('fsync', path, cb, () => vfs.fsync(fd, datasync !== 0, caller()), ok)
    },

    fsyncdir(path: string, _datasync: number, _fd: number, cb: FuseCallback) {
      answer('fsyncdir', path, cb, () => vfs.fsyncdir(path, caller()), ok)
    },

    release(path: string, fd: number, cb: FuseCallback) {
      // close(2) has already returned: it waits for FLUSH, never for RELEASE, and the kernel
      // drops RELEASE's answer. What a release may still wait for (a chain's group commit)
      // runs on without holding a FUSE worker.
      answer('release', path, cb, () => void release(fd), ok)
    },

    truncate(path: string, size: number, cb: FuseCallback) {
      answer('truncate', path, cb, () => vfs.truncate(path, Number(size), caller()), ok)
    },

    ftruncate(path: string, fd: number, size: number, cb: FuseCallback) {
      answer('ftruncate', path, cb, () => vfs.ftruncate(fd, Number(size), caller()), ok)
    },

    chmod(path: string, mode: number, cb: FuseCallback) {
      answer('chmod', path, cb, () => vfs.setattr(path, { mode: mode & 0o7777 }, nofollow, caller()), ok)
    },

    chown(path: string, uid: number, gid: number, cb: FuseCallback) {
      const changes: { uid?: number; gid?: number } = {}
      if (uid !== UNCHANGED_ID) changes.uid = uid
      if (gid !== UNCHANGED_ID) changes.gid = gid
      answer('chown', path, cb, () => vfs.setattr(path, changes, nofollow, caller()), ok)
    },

    utimensWithTimespec(path: string, atime: Timespec, mtime: Timespec, cb: FuseCallback) {
      answer('utimens', path, cb, () => vfs.setattr(path, { atime: timeOf(atime), mtime: timeOf(mtime) }, nofollow, caller()), ok)
    },

    unlink(path: string, cb: FuseCallback) {
      // libfuse unlinks a name it hid once the last handle closes: the VFS removed it then already
      if (hidden.delete(path)) return cb(0)
      answer('unlink', path, cb, () => vfs.unlink(path, caller()), ok)
    },

    renameWithFlags(src: string, dest: string, flags: number, cb: FuseCallback) {
      const base = dest.slice(dest.lastIndexOf('/') + 1)
      if (flags === 0 && base.startsWith(HIDDEN_PREFIX)) {
        // libfuse hides a file that is still open instead of unlinking it; unlink it for
        // real (open handles keep it readable), so no .fuse_hidden name ever shows
        return answer('unlink', src, cb, async () => {
          await vfs.unlink(src, caller())
          hidden.add(dest)
        }, ok)
      }
      if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) || flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)) return cb(-22)
      const mode = flags & RENAME_EXCHANGE ? 'exchange' : flags & RENAME_NOREPLACE ? 'noreplace' : 'replace'
      answer('rename', src, cb, () => vfs.rename(src, dest, caller(), mode), ok)
    },

    link(src: string, dest: string, cb: FuseCallback) {
      answer('link', src, cb, () => vfs.link(src, dest, caller()), ok)
    },

    symlink(target: string, path: string, cb: FuseCallback) {
      answer('symlink', path, cb, () => vfs.symlink(target, path, caller()), ok)
    },

    mkdir(path: string, mode: number, cb: FuseCallback) {
      answer('mkdir', path, cb, () => vfs.mkdir(path, mode & 0o7777, caller()), ok)
    },

    rmdir(path: string, cb: FuseCallback) {
      answer('rmdir', path, cb, () => vfs.rmdir(path, caller()), ok)
    },

    setxattr(path: string, name: string, value: Buffer, _position: number, flags: number, cb: FuseCallback) {
      answer('setxattr', path, cb, () => vfs.setxattr(path, name, value, flags, nofollow, caller()), ok)
    },

    getxattr(path: string, name: string, _position: number, cb: FuseCallback) {
      answer('getxattr', path, cb, () => vfs.getxattr(path, name, nofollow, caller()), value => [0, Buffer.from(value.buffer, value.byteOffset, value.byteLength)])
    },

    listxattr(path: string, cb: FuseCallback) {
      answer('listxattr', path, cb, () => vfs.listxattr(path, nofollow, caller()), names => [0, names])
    },

    removexattr(path: string, name: string, cb: FuseCallback) {
      answer('removexattr', path, cb, () => vfs.removexattr(path, name, nofollow, caller()), ok)
    },
  }
}
