import { constants as fsc } from 'node:fs'
import { vfsError } from '../vfs/errors.ts'
import type { StatFs } from '../vfs/node.ts'
import type { CallerContext, NodeTimeSpec, SetattrRequest, SpecialKind, Stat, Vfs } from '../vfs/vfs.ts'
import type { Answer } from './answer.ts'
import type { FuseCallback, FuseRequestContext } from './binding.ts'
import type { KeptPages } from './kept-pages.ts'
import type { LinkedNames } from './links.ts'
import type { FuseLocks } from './locks.ts'
import { KEPT_REPLY_BYTES, ReplyBuffers } from './reply-buffers.ts'
import { routerCaller } from './caller.ts'

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
/** What calls on a handle are logged under: with `nullpath_ok` libfuse passes no path for them. */
const UNLINKED = '(handle)'
/** How a RELEASE reaches the router: close(2) has returned, and the kernel drops the answer. */
const UNAWAITED: CallerContext = { unawaited: true }
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
  /** The `lock` and `flock` handlers; without them the kernel keeps locks for this machine alone. */
  locks?: FuseLocks
  /** Told of every attribute answer by path, so a change through one name of a hard-linked file can invalidate the others. */
  links?: LinkedNames
  /** Says which opens may keep the kernel's cached pages (`keep_cache`); without it every open drops them. */
  pages?: KeptPages
  /** The kernel checks permissions (`default_permissions`), so calls carry `permissionsChecked`; else the router checks each. @default false */
  kernelChecks?: boolean
}

/**
 * Builds fuse-napi's handler object over a {@link Vfs}: one handler per op the VFS
 * supports, each answering through `answer` (exactly once, errno-mapped, guarded) on
 * behalf of the request's caller (uid, gid, umask from the kernel).
 *
 * The kernel resolves symlinks, so every path op here acts on the path's last name as it
 * is (`lchown`, `lutimes`, `lgetxattr`). The router checks the caller's rights on each
 * call (`access` and `opendir` included; supplementary groups from `/proc`, see
 * `caller.ts`), or, with `kernelChecks` (`default_permissions`), the kernel has and calls
 * carry `permissionsChecked`. File-handle numbers are the Vfs's
 * own; calls on a handle come with a `null` path (`nullpath_ok`) and act on the handle.
 * `lock` and `flock` come from `locks` (see `locks.ts`), so a chain shared through
 * PostgreSQL holds its locks where every machine sees them.
 */
export function createFuseOps(vfs: Vfs, { answer, context, locks, links, pages, kernelChecks = false }: FuseOpsOptions): Record<string, (...args: never[]) => void> {
  const ok = (): number => 0
  const replies = new ReplyBuffers()
  const stat = (s: Stat): [number, FuseStat] => [0, toFuseStat(s)]
  const opened = (fh: number): [number, number | { fd: number; directIO: true }] => [0, vfs.wantsDirectIo(fh) ? { fd: fh, directIO: true } : fh]
  /** An open by `path`: kept pages when {@link KeptPages} says the file is unchanged since its last open. */
  const openedAt = (path: string, flags: number) => (fh: number): [number, number | { fd: number; directIO?: true; keepCache?: true }] => {
    if (vfs.wantsDirectIo(fh)) return [0, { fd: fh, directIO: true }]
    return [0, pages?.opened(path, flags, links?.linked(path) ?? false) ? { fd: fh, keepCache: true } : fh]
  }
  const release = (fh: number): void => {
    vfs.release(fh, UNAWAITED).catch(() => {})
  }
  const callers = new Map<string, CallerContext>()
  const caller = (): CallerContext | undefined => {
    const c = context()
    if (!c) return undefined
    if (!kernelChecks) return routerCaller(c)
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
  const listings = new Listings(vfs)
  /**
   * Names libfuse hid instead of unlinking (a file still open when removed), already gone
   * from the tree, each with a handle of the router's own that keeps the file at hand:
   * the kernel still asks for its attributes by that name (`fstat` sends no handle).
   */
  const hidden = new Map<string, number | undefined>()
  /** A setattr by name (the link itself, never its target) or, for a file with no name left, by handle. */
  const setattr = (op: string, path: string | null, fd: number | bigint | null | undefined, changes: SetattrRequest, cb: FuseCallback): void => {
    const kept = path === null ? undefined : hidden.get(path)
    if (kept !== undefined) answer(op, path!, cb, () => vfs.fsetattr(kept, changes, caller()), ok)
    else if (path === null) answer(op, UNLINKED, cb, () => vfs.fsetattr(Number(fd), changes, caller()), ok)
    else answer(op, path, cb, () => vfs.setattr(path, changes, nofollow, caller()), ok)
  }

  return {
    statfs(path: string, cb: FuseCallback) {
      answer('statfs', path, cb, () => vfs.statfs(path, caller()), s => [0, toFuseStatfs(s)])
    },

    getattr(path: string, cb: FuseCallback) {
      const kept = hidden.get(path)
      if (kept !== undefined) return answer('getattr', path, cb, () => vfs.fstat(kept, caller()), stat)
      answer('getattr', path, cb, () => vfs.lstat(path, caller()), links ? s => (links.seen(path, s), stat(s)) : stat)
    },

    fgetattr(path: string | null, fd: number, cb: FuseCallback) {
      answer('fgetattr', path ?? UNLINKED, cb, () => (fd > 0 || path === null ? vfs.fstat(fd, caller()) : vfs.lstat(path, caller())), stat)
    },

    opendir(path: string, _flags: number, cb: FuseCallback) {
      answer('opendir', path, cb, () => vfs.access(path, kernelChecks ? fsc.F_OK : fsc.R_OK, caller()), () => [0, listings.open(path)])
    },

    // sent only without default_permissions: access(2), and chdir's search check
    access(path: string, mode: number, cb: FuseCallback) {
      answer('access', path, cb, () => vfs.access(path, mode, caller()), ok)
    },

    releasedir(_path: string | null, fd: number, cb: FuseCallback) {
      listings.close(Number(fd))
      cb(0)
    },

    readdirPaged(path: string | null, fd: number, offset: number | bigint, cb: FuseCallback) {
      const listing = listings.get(Number(fd), path)
      if (!listing) return cb(-9)
      answer('readdir', listing.path, cb, () => listing.page(Number(offset), caller()), page => [0, page.names, [], page.offsets])
    },

    readlink(path: string, cb: FuseCallback) {
      answer('readlink', path, cb, () => vfs.readlink(path, caller()), target => [0, target])
    },

    open(path: string, flags: number, cb: FuseCallback) {
      answer('open', path, cb, () => vfs.open(path, flags, 0, caller()), openedAt(path, flags), release)
    },

    createWithFlags(path: string, mode: number, flags: number, cb: FuseCallback) {
      answer('create', path, cb, () => vfs.create(path, mode & 0o7777, flags, caller()), opened, release)
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

    readBuffer(path: string | null, fd: number, len: number, pos: number, cb: FuseCallback) {
      // answering with a buffer of our own spares fuse-napi's read path a fresh buffer and two
      // copies per request (measured: 256 MiB read at 1,365 MB/s against 161 through read)
      if (len < KEPT_REPLY_BYTES) {
        const small = Buffer.allocUnsafe(len)
        return answer('read', path ?? UNLINKED, cb, () => vfs.readInto(fd, Number(pos), small, caller()), n => [0, n === len ? small : small.subarray(0, n)])
      }
      // a big one from the kept buffers, back once both the read into it and the answer are done:
      // fuse-napi copies the reply's bytes on the tick after the callback, so the buffer goes back on a tick queued after that
      const whole = replies.take(len)
      const buf = whole.subarray(0, len)
      let busy = 2
      const done = () => void (--busy === 0 && process.nextTick(() => replies.give(whole)))
      const reply: FuseCallback = (...args) => {
        try {
          cb(...args)
        } finally {
          done()
        }
      }
      answer('read', path ?? UNLINKED, reply, () => vfs.readInto(fd, Number(pos), buf, caller()).finally(done), n => [0, n === len ? buf : buf.subarray(0, n)])
    },

    write(path: string | null, fd: number, buf: Buffer, len: number, pos: number, cb: FuseCallback) {
      // fuse-napi hands over a copy the request owns: a mount may keep it as it is
      answer('write', path ?? UNLINKED, cb, () => vfs.write(fd, pos, len === buf.length ? buf : buf.subarray(0, len), caller()), n => n)
    },

    flush(path: string | null, fd: number, cb: FuseCallback) {
      answer('flush', path ?? UNLINKED, cb, () => vfs.flush(fd, caller()), ok)
    },

    fsync(path: string | null, datasync: number, fd: number, cb: FuseCallback) {
      answer('fsync', path ?? UNLINKED, cb, () => vfs.fsync(fd, datasync !== 0, caller()), ok)
    },

    fsyncdir(path: string | null, _datasync: number, fd: number, cb: FuseCallback) {
      const at = path ?? listings.get(Number(fd), null)?.path
      if (at === undefined) return cb(-9)
      answer('fsyncdir', at, cb, () => vfs.fsyncdir(at, caller()), ok)
    },

    release(path: string | null, fd: number, cb: FuseCallback) {
      // close(2) has already returned: it waits for FLUSH, never for RELEASE, and the kernel
      // drops RELEASE's answer. What a release may still wait for (a chain's group commit)
      // runs on without holding a FUSE worker.
      if (!locks) return answer('release', path ?? UNLINKED, cb, () => void release(fd), ok)
      const unlocked = locks.released(fd)
      answer('release', path ?? UNLINKED, cb, () => void unlocked.catch(() => {}).finally(() => release(fd)), ok)
    },

    truncate(path: string, size: number, cb: FuseCallback) {
      answer('truncate', path, cb, () => vfs.truncate(path, Number(size), caller()), ok)
    },

    ftruncate(path: string | null, fd: number, size: number, cb: FuseCallback) {
      answer('ftruncate', path ?? UNLINKED, cb, () => vfs.ftruncate(fd, Number(size), caller()), ok)
    },

    chmodWithHandle(path: string | null, fd: number, mode: number, cb: FuseCallback) {
      setattr('chmod', path, fd, { mode: mode & 0o7777 }, cb)
    },

    chownWithHandle(path: string | null, fd: number, uid: number, gid: number, cb: FuseCallback) {
      const changes: { uid?: number; gid?: number } = {}
      if (uid !== UNCHANGED_ID) changes.uid = uid
      if (gid !== UNCHANGED_ID) changes.gid = gid
      setattr('chown', path, fd, changes, cb)
    },

    utimensWithHandle(path: string | null, fd: number, atime: Timespec, mtime: Timespec, cb: FuseCallback) {
      setattr('utimens', path, fd, { atime: timeOf(atime), mtime: timeOf(mtime) }, cb)
    },

    unlink(path: string, cb: FuseCallback) {
      // libfuse unlinks a name it hid once the last handle closes: the VFS removed it then already
      if (hidden.has(path)) {
        const kept = hidden.get(path)
        hidden.delete(path)
        if (kept !== undefined) release(kept)
        return cb(0)
      }
      answer('unlink', path, cb, () => vfs.unlink(path, caller()), ok)
    },

    renameWithFlags(src: string, dest: string, flags: number, cb: FuseCallback) {
      if (flags === 0 && dest.slice(dest.lastIndexOf('/') + 1).startsWith(HIDDEN_PREFIX)) {
        // libfuse hides a file that is still open instead of unlinking it (fuse-napi gives
        // no way to set hard_remove); unlink it for real, so open handles keep reading it
        // and no .fuse_hidden name ever shows in a listing
        return answer('unlink', src, cb, async () => {
          const kept = await vfs.open(src, fsc.O_RDONLY).catch(() => undefined)
          try {
            await vfs.unlink(src, caller())
          } catch (err) {
            if (kept !== undefined) release(kept)
            throw err
          }
          hidden.set(dest, kept)
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

    ...(locks ? { lock: locks.lock, flock: locks.flock } : {}),
  }
}

/** How many entries one readdir reply offers the kernel (it takes what fits in its buffer). */
const READDIR_PAGE = 512

/** A page of a listing as the binding takes it: names and, for each, the offset to resume after it. */
interface ListingPage {
  names: string[]
  offsets: number[]
}

/**
 * One open folder being listed (`opendir` to `releasedir`): it reads the folder from the
 * router a page at a time and hands the kernel entries by offset (entry i resumes at
 * i + 1), keeping only the page in hand, so listing a folder of a million records holds
 * a few hundred names at once. A kernel that seeks back (rewinddir, or a buffer that
 * took fewer entries than offered) gets the listing read again from the start.
 */
class Listing {
  /** Offset of `buffer[0]`. */
  private base = 0
  private buffer: string[] = ['.', '..']
  private cursor: string | undefined
  private started = false
  private done = false

  constructor(
    private readonly vfs: Vfs,
    readonly path: string,
  ) {}

  async page(offset: number, caller: CallerContext | undefined): Promise<ListingPage> {
    if (offset < this.base) this.restart()
    while (!this.done && this.base + this.buffer.length < offset + READDIR_PAGE) await this.fetch(caller)
    const skip = Math.min(offset - this.base, this.buffer.length)
    this.buffer = this.buffer.slice(skip)
    this.base += skip
    const names = this.buffer.slice(0, READDIR_PAGE)
    const offsets = names.map((_, i) => this.base + i + 1)
    return { names, offsets }
  }

  private restart(): void {
    this.base = 0
    this.buffer = ['.', '..']
    this.cursor = undefined
    this.started = false
    this.done = false
  }

  private async fetch(caller: CallerContext | undefined): Promise<void> {
    const page = await this.vfs.readdir(this.path, { limit: READDIR_PAGE, ...(this.started ? { cursor: this.cursor! } : {}) }, caller)
    this.started = true
    for (const e of page.entries) this.buffer.push(e.name)
    this.cursor = page.cursor
    if (page.cursor === undefined) this.done = true
  }
}

/** The folders open for listing, by the handle number given the kernel at `opendir`. */
class Listings {
  private readonly byFd = new Map<number, Listing>()
  private next = 1

  constructor(private readonly vfs: Vfs) {}

  open(path: string): number {
    const fd = this.next++
    this.byFd.set(fd, new Listing(this.vfs, path))
    return fd
  }

  /** The listing of handle `fd`; one made afresh for `path` when the kernel lists without an `opendir` the adapter saw. */
  get(fd: number, path: string | null): Listing | undefined {
    const found = this.byFd.get(fd)
    if (found || path === null) return found
    return new Listing(this.vfs, path)
  }

  close(fd: number): void {
    this.byFd.delete(fd)
  }
}
