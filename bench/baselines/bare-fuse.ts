import { createRequire } from 'node:module'

/** The part of a fuse-native `Fuse` instance this baseline uses. */
interface FuseInstance {
  opts: Record<string, unknown>
  mount(cb: (err: Error | null) => void): void
  unmount(cb: (err: Error | null) => void): void
  _fuseOptions(): string
}

/** fuse-native's `Fuse` class, as far as the bench uses it. */
export interface FuseClass {
  new (mountpoint: string, ops: Record<string, unknown>, opts?: Record<string, unknown>): FuseInstance
  prototype: FuseInstance
  ENOENT: number
  ENOTDIR: number
  EISDIR: number
}

const require = createRequire(import.meta.url)

/** Loads fuse-native (the same module instance the adapter loads); throws when libfuse2 is missing. */
export function loadFuse(): FuseClass {
  return require('fuse-native') as FuseClass
}

/** The mount options fuse-native received for one mount, and the `-o` string it built from them. */
export interface CapturedMount {
  mountpoint: string
  opts: Record<string, unknown>
  optionString: string
}

/**
 * Records the options of every fuse-native mount made while `fn` runs (by watching
 * `Fuse.prototype._fuseOptions`), so the bare baseline can be mounted exactly as the
 * adapter mounted. Observes only; the adapter's options are passed through unchanged.
 */
export async function captureMountOptions<T>(fn: () => Promise<T>): Promise<{ result: T; mounts: CapturedMount[] }> {
  const Fuse = loadFuse()
  const original = Object.getOwnPropertyDescriptor(Fuse.prototype, '_fuseOptions')!
  const mounts: CapturedMount[] = []
  const originalFn = Fuse.prototype._fuseOptions
  Fuse.prototype._fuseOptions = function (this: FuseInstance & { mnt: string }): string {
    const optionString = originalFn.call(this)
    mounts.push({ mountpoint: this.mnt, opts: { ...this.opts }, optionString })
    return optionString
  }
  try {
    return { result: await fn(), mounts }
  } finally {
    Object.defineProperty(Fuse.prototype, '_fuseOptions', original)
  }
}

/** A tree served by the bare handler: folders are plain objects, files are bytes. */
export interface BareTree {
  [name: string]: BareTree | Uint8Array
}

interface BareStat {
  mode: number
  size: number
  uid: number
  gid: number
  nlink: number
  atime: Date
  mtime: Date
  ctime: Date
}

interface Entry {
  stat: BareStat
  names?: string[]
  data?: Uint8Array
}

/** A mounted bare handler. */
export interface BareMount {
  readonly mountpoint: string
  unmount(): Promise<void>
}

/**
 * Mounts a minimal fuse-native handler serving `tree` from memory: `getattr`, `readdir`,
 * `open`, `read` and nothing else, each answered straight from a path-keyed `Map` built
 * at mount time. It is the floor of the binding: no router, no VFS, no allocation beyond
 * what fuse-native itself does. `opts` are fuse-native options (pass the adapter's own,
 * see {@link captureMountOptions}, so both sides run with the same mount options).
 */
export async function mountBareFuse(mountpoint: string, tree: BareTree, opts: Record<string, unknown> = {}): Promise<BareMount> {
  const Fuse = loadFuse()
  const now = new Date()
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  const entries = new Map<string, Entry>()
  const add = (path: string, node: BareTree | Uint8Array): void => {
    if (node instanceof Uint8Array) {
      entries.set(path, { stat: { mode: 0o100444, size: node.length, uid, gid, nlink: 1, atime: now, mtime: now, ctime: now }, data: node })
      return
    }
    const names = Object.keys(node)
    entries.set(path, { stat: { mode: 0o40555, size: 4096, uid, gid, nlink: 2, atime: now, mtime: now, ctime: now }, names })
    for (const name of names) add(path === '/' ? '/' + name : path + '/' + name, node[name]!)
  }
  add('/', tree)

  const ops = {
    getattr(path: string, cb: (err: number, stat?: BareStat) => void): void {
      const e = entries.get(path)
      if (e === undefined) return cb(Fuse.ENOENT)
      cb(0, e.stat)
    },
    readdir(path: string, cb: (err: number, names?: string[]) => void): void {
      const e = entries.get(path)
      if (e === undefined) return cb(Fuse.ENOENT)
      if (e.names === undefined) return cb(Fuse.ENOTDIR)
      cb(0, e.names)
    },
    open(path: string, _flags: number, cb: (err: number, fd?: number) => void): void {
      const e = entries.get(path)
      if (e === undefined) return cb(Fuse.ENOENT)
      if (e.data === undefined) return cb(Fuse.EISDIR)
      cb(0, 1)
    },
    read(path: string, _fd: number, buffer: Buffer, length: number, position: number, cb: (bytes: number) => void): void {
      const data = entries.get(path)?.data
      if (data === undefined || position >= data.length) return cb(0)
      const end = Math.min(data.length, position + length)
      buffer.set(data.subarray(position, end))
      cb(end - position)
    },
  }

  const fuse = new Fuse(mountpoint, ops, opts)
  await new Promise<void>((resolve, reject) => fuse.mount(err => (err ? reject(err) : resolve())))
  let mounted = true
  return {
    mountpoint,
    unmount: () => {
      if (!mounted) return Promise.resolve()
      mounted = false
      return new Promise<void>((resolve, reject) => fuse.unmount(err => (err ? reject(err) : resolve())))
    },
  }
}
