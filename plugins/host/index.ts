import { constants as fsc, type Stats } from 'node:fs'
import { chmod, lchown, lstat, mkdir, open, readdir, readlink, rename, rmdir, symlink, truncate, unlink, utimes, type FileHandle as FsHandle } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import { vfsError } from '../../src/vfs/errors.ts'
import type { ViewContext } from '../../src/vfs/mounts.ts'
import type { Attr, AttrChanges, FileHandle, OpenFlags, VNode } from '../../src/vfs/node.ts'
import { defineView, type View } from '../../src/views/view.ts'
import { dirFrom, fileFrom, symlinkFrom, type DirCapabilities } from '../../src/views/writable.ts'

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
  readonly readOnly: boolean
  readonly stats: { opens: number; reads: number; writes: number; events: number }
  /** The host path of each folder's capabilities, for renames between folders of this view. */
  readonly paths: WeakMap<DirCapabilities, string>
}

function nodeFor(c: Ctx, path: string, st: Stats): VNode | undefined {
  if (st.isDirectory()) return hostDir(c, path)
  if (st.isSymbolicLink()) return hostLink(c, path)
  if (st.isFile()) return hostFile(c, path)
  return undefined
}

/** What every host node can do: report the host's attributes and change them. */
function common(c: Ctx, path: string) {
  return {
    attributes: async () => attrOf(await host(() => lstat(path))),
    async setattr(changes: AttrChanges): Promise<void> {
      if (c.readOnly) throw vfsError('EROFS')
      if (changes.mode !== undefined) await chmod(path, changes.mode)
      if (changes.uid !== undefined || changes.gid !== undefined) {
        const st = await lstat(path)
        await lchown(path, changes.uid ?? st.uid, changes.gid ?? st.gid)
      }
      if (changes.atimeMs !== undefined || changes.mtimeMs !== undefined) {
        const st = await lstat(path)
        await utimes(path, (changes.atimeMs ?? st.atimeMs) / 1000, (changes.mtimeMs ?? st.mtimeMs) / 1000)
      }
    },
  }
}

function hostFile(c: Ctx, path: string): VNode {
  return fileFrom({
    ...common(c, path),
    async open(flags: OpenFlags): Promise<FileHandle> {
      if (flags.write && c.readOnly) throw vfsError('EROFS')
      const mode = flags.read && flags.write ? fsc.O_RDWR : flags.write ? fsc.O_WRONLY : fsc.O_RDONLY
      const fh: FsHandle = await host(() => open(path, mode | fsc.O_NOFOLLOW))
      c.stats.opens++
      const stats = c.stats
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
    },
    async truncate(size: number): Promise<void> {
      if (c.readOnly) throw vfsError('EROFS')
      const st = await lstat(path)
      if (!st.isFile()) throw vfsError('EINVAL')
      await truncate(path, size)
    },
  })
}

function hostLink(c: Ctx, path: string): VNode {
  return symlinkFrom({ ...common(c, path), readlink: () => host(() => readlink(path)) })
}

function hostDir(c: Ctx, path: string): VNode {
  const child = (name: string) => join(path, name)
  const writable = () => {
    if (c.readOnly) throw vfsError('EROFS')
  }
  const caps: DirCapabilities = {
    ...common(c, path),
    async lookup(name) {
      let st: Stats
      try {
        st = await lstat(child(name))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
        throw err
      }
      return nodeFor(c, child(name), st)
    },
    async readdir() {
      return (await host(() => readdir(path, { withFileTypes: true })))
        .filter(d => d.isFile() || d.isDirectory() || d.isSymbolicLink())
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .map(d => ({ name: d.name, kind: d.isDirectory() ? ('dir' as const) : d.isSymbolicLink() ? ('symlink' as const) : ('file' as const) }))
    },
    async create(name, mode) {
      writable()
      const fh = await open(child(name), fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY | fsc.O_NOFOLLOW, mode)
      await fh.close()
      return hostFile(c, child(name))
    },
    async mkdir(name, mode) {
      writable()
      await mkdir(child(name), mode)
      return hostDir(c, child(name))
    },
    async symlink(name, target) {
      writable()
      await symlink(target, child(name))
      return hostLink(c, child(name))
    },
    async unlink(name) {
      writable()
      await unlink(child(name))
    },
    async rmdir(name) {
      writable()
      await rmdir(child(name))
    },
    async rename(name, to, newName) {
      writable()
      const dest = c.paths.get(to)
      if (dest === undefined) throw vfsError('EXDEV')
      await rename(child(name), join(dest, newName))
    },
  }
  c.paths.set(caps, path)
  return dirFrom(caps)
}

/**
 * A host folder mirrored as a view: read-only by default, read-write with
 * `readOnly: false`. Changes made outside FacetFS show up live: chokidar watches the
 * folder and each change is reported on the VFS change bus. Host symlinks are shown as
 * symlinks and never followed on the host, so nothing outside `dir` is reachable.
 */
export const hostView = defineView((options: HostOptions): View => {
  const c: Ctx = { paths: new WeakMap(), readOnly: options.readOnly ?? true, stats: { opens: 0, reads: 0, writes: 0, events: 0 } }
  let watcher: FSWatcher | undefined
  let ready: Promise<void> | undefined
  return {
    name: 'host',
    root: hostDir(c, options.dir),
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
