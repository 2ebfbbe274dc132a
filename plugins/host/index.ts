import { constants as fsc, type Stats } from 'node:fs'
import { chmod, lchown, lstat, mkdir, open, readdir, readlink, rename, rmdir, symlink, truncate, unlink, utimes, type FileHandle as FsHandle } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import { vfsError } from '../../src/vfs/errors.ts'
import type { ViewContext } from '../../src/vfs/mounts.ts'
import type {
  Attr,
  AttrChanges,
  DirPage,
  FileHandle,
  NodeCreate,
  NodeGetattr,
  NodeLookup,
  NodeMkdir,
  NodeOpen,
  NodeReaddir,
  NodeReadlink,
  NodeRename,
  NodeRmdir,
  NodeSetattr,
  NodeSymlink,
  NodeTruncate,
  NodeUnlink,
  OpContext,
  OpenFlags,
  PageRequest,
  VNode,
} from '../../src/vfs/node.ts'
import { defineView, type View } from '../../src/views/view.ts'

/** Options for {@link hostView}. */
export interface HostOptions {
  /** The host folder to mirror. */
  dir: string
  /** Whether writes are refused with `EROFS`. @default true */
  readOnly?: boolean
  /** Whether changes made outside FacetFS are watched (chokidar) and reported on the change bus. @default true */
  watch?: boolean
}

const EMPTY = new Uint8Array(0)

function attrOf(st: Stats): Attr {
  return {
    mode: st.mode & 0o7777,
    size: st.size,
    uid: st.uid,
    gid: st.gid,
    atimeMs: st.atimeMs,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    nlink: st.nlink,
  }
}

/** Runs a host call, turning a missing file into a bare `ENOENT` and other system errors into their own code. */
async function host<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ELOOP') throw vfsError('ELOOP', 'the host path is a symlink')
    throw err
  }
}

interface Ctx {
  readonly root: string
  readonly readOnly: boolean
  readonly stats: { opens: number; reads: number; writes: number; events: number }
}

function nodeFor(c: Ctx, path: string, st: Stats): VNode | undefined {
  if (st.isDirectory()) return new HostDir(c, path)
  if (st.isSymbolicLink()) return new HostLink(c, path)
  if (st.isFile()) return new HostFile(c, path)
  return undefined
}

class HostNode implements NodeGetattr, NodeSetattr {
  constructor(
    protected readonly c: Ctx,
    readonly path: string,
  ) {}

  async getattr(): Promise<Attr> {
    return attrOf(await host(() => lstat(this.path)))
  }

  async setattr(changes: AttrChanges): Promise<void> {
    if (this.c.readOnly) throw vfsError('EROFS')
    if (changes.mode !== undefined) await chmod(this.path, changes.mode)
    if (changes.uid !== undefined || changes.gid !== undefined) {
      const st = await lstat(this.path)
      await lchown(this.path, changes.uid ?? st.uid, changes.gid ?? st.gid)
    }
    if (changes.atimeMs !== undefined || changes.mtimeMs !== undefined) {
      const st = await lstat(this.path)
      await utimes(this.path, (changes.atimeMs ?? st.atimeMs) / 1000, (changes.mtimeMs ?? st.mtimeMs) / 1000)
    }
  }
}

class HostFile extends HostNode implements VNode, NodeOpen, NodeTruncate {
  readonly kind = 'file' as const

  async open(flags: OpenFlags): Promise<FileHandle> {
    if (flags.write && this.c.readOnly) throw vfsError('EROFS')
    const mode = flags.read && flags.write ? fsc.O_RDWR : flags.write ? fsc.O_WRONLY : fsc.O_RDONLY
    const fh: FsHandle = await host(() => open(this.path, mode | fsc.O_NOFOLLOW))
    this.c.stats.opens++
    const stats = this.c.stats
    return {
      async read(offset, length) {
        stats.reads++
        const buf = Buffer.allocUnsafe(length)
        const { bytesRead } = await fh.read(buf, 0, length, offset)
        return bytesRead === 0 ? EMPTY : buf.subarray(0, bytesRead)
      },
      async write(offset, data) {
        stats.writes++
        const { bytesWritten } = await fh.write(data, 0, data.length, offset)
        return bytesWritten
      },
      truncate: size => fh.truncate(size),
      getattr: async () => attrOf(await fh.stat()),
      fsync: datasync => (datasync ? fh.datasync() : fh.sync()),
      release: () => fh.close(),
    }
  }

  async truncate(size: number): Promise<void> {
    if (this.c.readOnly) throw vfsError('EROFS')
    const st = await lstat(this.path)
    if (!st.isFile()) throw vfsError('EINVAL')
    await truncate(this.path, size)
  }
}

class HostLink extends HostNode implements VNode, NodeReadlink {
  readonly kind = 'symlink' as const
  readlink(): Promise<string> {
    return host(() => readlink(this.path))
  }
}

class HostDir extends HostNode implements VNode, NodeLookup, NodeReaddir, NodeCreate, NodeMkdir, NodeUnlink, NodeRmdir, NodeRename, NodeSymlink {
  readonly kind = 'dir' as const

  private child(name: string): string {
    return join(this.path, name)
  }

  private writable(): void {
    if (this.c.readOnly) throw vfsError('EROFS')
  }

  async lookup(name: string): Promise<VNode | undefined> {
    let st: Stats
    try {
      st = await lstat(this.child(name))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
      throw err
    }
    return nodeFor(this.c, this.child(name), st)
  }

  async readdir(req: PageRequest): Promise<DirPage> {
    const start = req.cursor === undefined ? 0 : Number(req.cursor)
    if (!Number.isSafeInteger(start) || start < 0) throw vfsError('EINVAL', 'bad cursor')
    const all = (await host(() => readdir(this.path, { withFileTypes: true })))
      .filter(d => d.isFile() || d.isDirectory() || d.isSymbolicLink())
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const slice = all.slice(start, start + req.limit).map(d => ({ name: d.name, kind: d.isDirectory() ? ('dir' as const) : d.isSymbolicLink() ? ('symlink' as const) : ('file' as const) }))
    const next = start + slice.length
    return next < all.length ? { entries: slice, cursor: String(next) } : { entries: slice }
  }

  async create(name: string, mode: number): Promise<VNode> {
    this.writable()
    const fh = await open(this.child(name), fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY | fsc.O_NOFOLLOW, mode)
    await fh.close()
    return new HostFile(this.c, this.child(name))
  }

  async mkdir(name: string, mode: number): Promise<VNode> {
    this.writable()
    await mkdir(this.child(name), mode)
    return new HostDir(this.c, this.child(name))
  }

  async symlink(name: string, target: string): Promise<VNode> {
    this.writable()
    await symlink(target, this.child(name))
    return new HostLink(this.c, this.child(name))
  }

  async unlink(name: string): Promise<void> {
    this.writable()
    await unlink(this.child(name))
  }

  async rmdir(name: string): Promise<void> {
    this.writable()
    await rmdir(this.child(name))
  }

  async rename(name: string, newParent: VNode, newName: string): Promise<void> {
    this.writable()
    if (!(newParent instanceof HostDir) || newParent.c !== this.c) throw vfsError('EXDEV')
    await rename(this.child(name), newParent.child(newName))
  }
}

/**
 * A host folder mirrored as a view: read-only by default, read-write with
 * `readOnly: false`. Changes made outside FacetFS show up live: chokidar watches the
 * folder and each change is reported on the VFS change bus. Host symlinks are shown as
 * symlinks and never followed on the host, so nothing outside `dir` is reachable.
 */
export const hostView = defineView((options: HostOptions): View => {
  const c: Ctx = { root: options.dir, readOnly: options.readOnly ?? true, stats: { opens: 0, reads: 0, writes: 0, events: 0 } }
  let watcher: FSWatcher | undefined
  let ready: Promise<void> | undefined
  return {
    name: 'host',
    root: new HostDir(c, options.dir),
    setup(ctx: ViewContext) {
      if (options.watch === false) return
      watcher = watch(options.dir, { ignoreInitial: true, followSymlinks: false, atomic: false })
      ready = new Promise(done => watcher!.once('ready', () => done()))
      const rel = (p: string) => '/' + relative(options.dir, p).split(sep).join('/')
      const report = (type: 'create' | 'update' | 'delete', kind: 'file' | 'dir') => (p: string) => {
        c.stats.events++
        ctx.changes.emit({ type, path: rel(p), kind })
      }
      watcher
        .on('add', report('create', 'file'))
        .on('change', report('update', 'file'))
        .on('unlink', report('delete', 'file'))
        .on('addDir', report('create', 'dir'))
        .on('unlinkDir', report('delete', 'dir'))
        .on('error', err => ctx.logger.warn({ err, dir: options.dir }, 'host folder watcher failed'))
    },
    async dispose() {
      await watcher?.close()
      watcher = undefined
    },
    stats: () => ({ '/': { ...c.stats, watching: watcher ? 1 : 0 } }),
    /** Resolves once the watcher has scanned the folder (for tests). */
    whenWatching: () => ready ?? Promise.resolve(),
  } as View & { whenWatching(): Promise<void> }
})

export default hostView
