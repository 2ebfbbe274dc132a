import { constants } from 'node:os'

/** A tree served by a bare handler: folders are plain objects, files are bytes. */
export interface BareTree {
  [name: string]: BareTree | Uint8Array
}

/** A `stat` answer of a bare handler, in the shape both bindings take. */
export interface BareStat {
  mode: number
  size: number
  uid: number
  gid: number
  nlink: number
  atime: Date
  mtime: Date
  ctime: Date
}

/** How a bare handler answers, beyond the minimum. */
export interface BareHandlerOptions {
  /** `readdir` answers each name's attributes along with the names. @default false */
  readdirStats?: boolean
  /** `open` answers `{ fd, keepCache: true }`, so the kernel keeps a file's pages across opens (fuse-napi only). @default false */
  keepCache?: boolean
  /** Answers reads with `readBuffer` (a slice of the file, copied once by the binding) instead of `read` filling the binding's buffer (fuse-napi only). @default false */
  readBuffer?: boolean
  /** Adds `create`, `write`, `mkdir` and a no-op `utimens`, so files can be made (the create floor). @default false */
  writable?: boolean
}

/** How many times each operation reached the handler since mount. */
export type BareCounts = Record<'getattr' | 'readdir' | 'open' | 'read' | 'release' | 'create' | 'write' | 'mkdir', number>

interface Entry {
  stat: BareStat
  names?: string[]
  stats?: BareStat[]
  data?: Uint8Array
  fd?: number
}

type Cb = (code: number, ...values: unknown[]) => void

const ENOENT = -constants.errno.ENOENT
const ENOTDIR = -constants.errno.ENOTDIR
const EISDIR = -constants.errno.EISDIR
const EEXIST = -constants.errno.EEXIST
const EBADF = -constants.errno.EBADF
const EMPTY = Buffer.alloc(0)

const childPath = (parent: string, name: string): string => (parent === '/' ? '/' + name : parent + '/' + name)

function parentOf(path: string): [string, string] {
  const i = path.lastIndexOf('/')
  return [i === 0 ? '/' : path.slice(0, i), path.slice(i + 1)]
}

/**
 * The operations of a bare handler serving `tree` from memory, for either binding (both
 * take the same callbacks and negative errnos): `getattr` (and `fgetattr`, counted as
 * `getattr`), `readdir`, `open`, `read`,
 * `release` (plus `create`, `write`, `mkdir`, `utimens` when writable), each answered
 * straight from a path-keyed `Map` built here, and `read`/`write` from a handle-indexed
 * array (so a null path, as `nullPathOk` sends, is fine). It is the floor of a binding:
 * no router, no VFS, no allocation beyond what the binding does itself.
 */
export function bareHandlers(tree: BareTree, options: BareHandlerOptions = {}): { ops: Record<string, unknown>; counts: BareCounts } {
  const now = new Date()
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  const writable = options.writable ?? false
  const fileMode = writable ? 0o100644 : 0o100444
  const dirMode = writable ? 0o40755 : 0o40555
  const entries = new Map<string, Entry>()
  const files: Entry[] = [] // handle n is files[n - 1]
  const counts: BareCounts = { getattr: 0, readdir: 0, open: 0, read: 0, release: 0, create: 0, write: 0, mkdir: 0 }

  const fileEntry = (data: Uint8Array): Entry => {
    const e: Entry = { stat: { mode: fileMode, size: data.length, uid, gid, nlink: 1, atime: now, mtime: now, ctime: now }, data }
    files.push(e)
    e.fd = files.length
    return e
  }
  const dirEntry = (names: string[]): Entry => ({ stat: { mode: dirMode, size: 4096, uid, gid, nlink: 2, atime: now, mtime: now, ctime: now }, names })
  const link = (parent: Entry, name: string, child: Entry): void => {
    parent.names!.push(name)
    parent.stats?.push(child.stat)
  }
  const add = (path: string, node: BareTree | Uint8Array): Entry => {
    if (node instanceof Uint8Array) {
      const e = fileEntry(node)
      entries.set(path, e)
      return e
    }
    const names = Object.keys(node)
    const e = dirEntry(names)
    entries.set(path, e)
    const children = names.map(name => add(childPath(path, name), node[name]!))
    if (options.readdirStats) e.stats = children.map(c => c.stat)
    return e
  }
  add('/', tree)

  const ops: Record<string, unknown> = {
    getattr(path: string | null, cb: Cb): void {
      counts.getattr++
      const e = path === null ? undefined : entries.get(path)
      if (e === undefined) return cb(ENOENT)
      cb(0, e.stat)
    },
    fgetattr(path: string | null, fd: number, cb: Cb): void {
      counts.getattr++
      const e = fd > 0 ? files[fd - 1] : path === null ? undefined : entries.get(path)
      if (e === undefined) return cb(ENOENT)
      cb(0, e.stat)
    },
    readdir(path: string | null, cb: Cb): void {
      counts.readdir++
      const e = path === null ? undefined : entries.get(path)
      if (e === undefined) return cb(ENOENT)
      if (e.names === undefined) return cb(ENOTDIR)
      if (e.stats) cb(0, e.names, e.stats)
      else cb(0, e.names)
    },
    open(path: string, _flags: number, cb: Cb): void {
      counts.open++
      const e = entries.get(path)
      if (e === undefined) return cb(ENOENT)
      if (e.data === undefined) return cb(EISDIR)
      if (options.keepCache) cb(0, { fd: e.fd, keepCache: true })
      else cb(0, e.fd)
    },
    read(_path: string | null, fd: number, buffer: Buffer, length: number, position: number, cb: (bytes: number) => void): void {
      counts.read++
      const e = files[fd - 1]
      if (e === undefined) return cb(EBADF)
      const size = e.stat.size
      if (position >= size) return cb(0)
      const end = Math.min(size, position + length)
      buffer.set(e.data!.subarray(position, end))
      cb(end - position)
    },
    release(_path: string | null, _fd: number, cb: Cb): void {
      counts.release++
      cb(0)
    },
  }

  if (options.readBuffer) {
    delete ops.read
    ops.readBuffer = (_path: string | null, fd: number, length: number, position: number, cb: Cb): void => {
      counts.read++
      const e = files[fd - 1]
      if (e === undefined) return cb(EBADF)
      const size = e.stat.size
      if (position >= size) return cb(0, EMPTY)
      const data = e.data!
      cb(0, Buffer.from(data.buffer, data.byteOffset + position, Math.min(length, size - position)))
    }
  }

  if (writable) {
    Object.assign(ops, {
      create(path: string, _mode: number, cb: Cb): void {
        counts.create++
        const [parentPath, name] = parentOf(path)
        const parent = entries.get(parentPath)
        if (parent?.names === undefined) return cb(ENOENT)
        if (entries.has(path)) return cb(EEXIST)
        const e = fileEntry(new Uint8Array(0))
        entries.set(path, e)
        link(parent, name, e)
        cb(0, e.fd)
      },
      write(_path: string | null, fd: number, buffer: Buffer, length: number, position: number, cb: (bytes: number) => void): void {
        counts.write++
        const e = files[fd - 1]
        if (e === undefined) return cb(EBADF)
        const end = position + length
        if (end > e.data!.length) {
          const grown = new Uint8Array(Math.max(end, e.data!.length * 2))
          grown.set(e.data!.subarray(0, e.stat.size))
          e.data = grown
        }
        e.data!.set(buffer.subarray(0, length), position)
        if (end > e.stat.size) e.stat.size = end
        cb(length)
      },
      // a writeback-cache mount sets times on flush; the floor keeps its mount-time ones
      utimens(_path: string | null, _atime: unknown, _mtime: unknown, cb: Cb): void {
        cb(0)
      },
      mkdir(path: string, _mode: number, cb: Cb): void {
        counts.mkdir++
        const [parentPath, name] = parentOf(path)
        const parent = entries.get(parentPath)
        if (parent?.names === undefined) return cb(ENOENT)
        if (entries.has(path)) return cb(EEXIST)
        const e = dirEntry([])
        if (options.readdirStats) e.stats = []
        entries.set(path, e)
        link(parent, name, e)
        cb(0)
      },
    })
  }
  return { ops, counts }
}
