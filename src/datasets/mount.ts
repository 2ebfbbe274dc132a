import { LRUCache } from 'lru-cache'
import type { Mount, ViewContext } from '../vfs/mounts.ts'
import type { Attr, DirEntry, DirPage, FileHandle, NodeGetattr, NodeLookup, NodeOpen, NodeRead, NodeReaddir, NodeReadlink, PageRequest, VNode } from '../vfs/node.ts'
import { datasetsGraphQL } from './graphql.ts'
import type { Manifest, ManifestEntry } from './manifest.ts'
import type { DatasetStore } from './store.ts'
import { currentVersion } from './tags.ts'

/** Options for {@link datasetsMount}. */
export interface DatasetsMountOptions {
  /** The mount's name. @default 'datasets' */
  name?: string
  /** Subscribes to changes of the store made elsewhere (see `OpenDatasetStore.onChange`); moved tags are then announced as change events. */
  onChange?: (listener: () => void) => () => void
  /** Called when the mount closes, e.g. to close the store's chain. */
  close?: () => Promise<void>
}

const uid = process.getuid?.() ?? 0
const gid = process.getgid?.() ?? 0

/** Attributes of a synthetic folder of the mount. */
function dirAttr(mtimeMs: number): Attr {
  return { mode: 0o555, size: 0, uid, gid, atimeMs: mtimeMs, mtimeMs, ctimeMs: mtimeMs }
}

function page<T>(items: readonly T[], request: PageRequest, entry: (item: T) => DirEntry): DirPage {
  const start = request.cursor === undefined ? 0 : Number(request.cursor)
  const slice = items.slice(start, start + request.limit)
  const entries = slice.map(entry)
  return start + slice.length < items.length ? { entries, cursor: String(start + slice.length) } : { entries }
}

/** A version's tree, built once per version id. */
class VersionTree {
  readonly children = new Map<string, Map<string, VNode>>()
  readonly root: EntryDir
  constructor(
    readonly store: DatasetStore,
    readonly id: string,
    readonly manifest: Manifest,
  ) {
    const created = Date.parse(manifest.created)
    this.root = new EntryDir(this, '', { path: '', kind: 'dir', mode: 0o555, size: 0, mtimeMs: created })
    this.children.set('', new Map())
    for (const e of manifest.entries) {
      const slash = e.path.lastIndexOf('/')
      const parent = slash < 0 ? '' : e.path.slice(0, slash)
      const name = e.path.slice(slash + 1)
      const node = e.kind === 'dir' ? new EntryDir(this, e.path, e) : e.kind === 'symlink' ? new EntrySymlink(e) : new EntryFile(this, e)
      if (e.kind === 'dir') this.children.set(e.path, new Map())
      this.children.get(parent)?.set(name, node)
    }
  }
}

function entryAttr(e: ManifestEntry, readOnlyMode: number): Attr {
  return { mode: readOnlyMode, size: e.size, uid, gid, atimeMs: e.mtimeMs, mtimeMs: e.mtimeMs, ctimeMs: e.mtimeMs }
}

class EntryDir implements NodeGetattr, NodeLookup, NodeReaddir {
  readonly kind = 'dir' as const
  constructor(
    private readonly tree: VersionTree,
    private readonly path: string,
    private readonly entry: ManifestEntry,
  ) {}
  getattr(): Attr {
    return entryAttr(this.entry, this.entry.mode & 0o555)
  }
  lookup(name: string): VNode | undefined {
    return this.tree.children.get(this.path)?.get(name)
  }
  readdir(request: PageRequest): DirPage {
    return page([...(this.tree.children.get(this.path) ?? [])], request, ([name, node]) => ({ name, kind: node.kind, node }))
  }
}

class EntrySymlink implements NodeGetattr, NodeReadlink {
  readonly kind = 'symlink' as const
  constructor(private readonly entry: ManifestEntry) {}
  getattr(): Attr {
    return entryAttr(this.entry, 0o777)
  }
  readlink(): string {
    return this.entry.target ?? ''
  }
}

/**
 * A file of a version: reads find the chunks that cover the range and fetch them from the
 * store. An open handle pins its version, so gc keeps its chunks until the handle is released.
 */
class EntryFile implements NodeGetattr, NodeOpen, NodeRead {
  readonly kind = 'file' as const
  private readonly starts: number[] = []
  private readonly store: DatasetStore
  constructor(
    private readonly tree: VersionTree,
    private readonly entry: ManifestEntry,
  ) {
    this.store = tree.store
    let at = 0
    for (const [, n] of entry.chunks ?? []) {
      this.starts.push(at)
      at += n
    }
  }
  getattr(): Attr {
    return entryAttr(this.entry, this.entry.mode & 0o555)
  }
  open(): FileHandle {
    const release = this.store.pin(this.tree.id, this.tree.manifest)
    const cache = new LRUCache<number, Promise<Buffer>>({ max: 8 })
    return { read: (offset, length) => this.readRange(offset, length, cache), release }
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const release = this.store.pin(this.tree.id, this.tree.manifest)
    try {
      return await this.readRange(offset, length, new LRUCache<number, Promise<Buffer>>({ max: 2 }))
    } finally {
      release()
    }
  }
  private async readRange(offset: number, length: number, cache: LRUCache<number, Promise<Buffer>>): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.entry.size)
    if (offset >= end) return new Uint8Array(0)
    const chunks = this.entry.chunks ?? []
    let i = upperBound(this.starts, offset) - 1
    const parts: Buffer[] = []
    for (let at = offset; at < end; i++) {
      let p = cache.get(i)
      if (!p) cache.set(i, (p = this.store.chunks.get(chunks[i]![0])))
      const bytes = await p
      // read ahead: the next chunk is likely next
      if (i + 1 < chunks.length && !cache.has(i + 1)) cache.set(i + 1, this.store.chunks.get(chunks[i + 1]![0]))
      const from = at - this.starts[i]!
      const take = Math.min(bytes.length - from, end - at)
      parts.push(bytes.subarray(from, from + take))
      at += take
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
  }
}

/** The first index whose value is greater than `x`. */
function upperBound(sorted: readonly number[], x: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sorted[mid]! <= x) lo = mid + 1
    else hi = mid
  }
  return lo
}

class TagDir implements NodeGetattr, NodeLookup, NodeReaddir {
  readonly kind = 'dir' as const
  constructor(
    private readonly ctx: Ctx,
    private readonly dataset: string,
  ) {}
  getattr(): Attr {
    return dirAttr(this.ctx.started)
  }
  async lookup(tag: string): Promise<VNode | undefined> {
    const record = await this.ctx.store.tag(this.dataset, tag).catch(() => undefined)
    const id = record && currentVersion(record)
    if (!id) return undefined
    return (await this.ctx.tree(this.dataset, id)).root
  }
  async readdir(request: PageRequest): Promise<DirPage> {
    const tags = (await this.ctx.store.tags(this.dataset)).filter(t => currentVersion(t))
    return page(tags, request, t => ({ name: t.tag, kind: 'dir' }))
  }
}

class RootDir implements NodeGetattr, NodeLookup, NodeReaddir {
  readonly kind = 'dir' as const
  constructor(private readonly ctx: Ctx) {}
  getattr(): Attr {
    return dirAttr(this.ctx.started)
  }
  async lookup(name: string): Promise<VNode | undefined> {
    return (await this.ctx.store.datasets()).includes(name) ? new TagDir(this.ctx, name) : undefined
  }
  async readdir(request: PageRequest): Promise<DirPage> {
    return page(await this.ctx.store.datasets(), request, name => ({ name, kind: 'dir' }))
  }
}

class Ctx {
  readonly started = Date.now()
  private readonly trees = new LRUCache<string, Promise<VersionTree>>({ max: 16 })
  constructor(readonly store: DatasetStore) {}
  tree(dataset: string, id: string): Promise<VersionTree> {
    let t = this.trees.get(id)
    if (!t) {
      t = this.store.version(dataset, id).then(m => new VersionTree(this.store, id, m))
      t.catch(() => this.trees.delete(id))
      this.trees.set(id, t)
    }
    return t
  }
}

/**
 * Mounts a dataset store read-only as `/<dataset>/<tag>/…`: each tag shows the tree of the
 * version it points at when it is looked up, so a moved tag shows its new version on the
 * next open. With `onChange`, every tag that moved, appeared or went is announced as a
 * change event (FUSE drops its cached entries, GraphQL subscribers hear of it). The mount
 * adds `datasets { name tags { name version created } versions }` to GraphQL.
 */
export function datasetsMount(store: DatasetStore, options: DatasetsMountOptions = {}): Mount {
  const ctx = new Ctx(store)
  let host: ViewContext | undefined
  let stop: (() => void) | undefined
  let known = new Map<string, string>()
  let busy: Promise<void> = Promise.resolve()
  const snapshot = async (): Promise<Map<string, string>> => {
    const out = new Map<string, string>()
    for (const d of await store.datasets()) for (const t of await store.tags(d)) if (currentVersion(t)) out.set(`/${d}/${t.tag}`, currentVersion(t)!)
    return out
  }
  const announce = () => {
    busy = busy.then(async () => {
      const now = await snapshot()
      const datasets = new Set<string>()
      for (const [path, v] of now) if (known.get(path) !== v) (host?.changes.emit({ type: known.has(path) ? 'update' : 'create', path, kind: 'dir' }), datasets.add(path.split('/')[1]!))
      for (const path of known.keys()) if (!now.has(path)) (host?.changes.emit({ type: 'delete', path, kind: 'dir' }), datasets.add(path.split('/')[1]!))
      for (const d of datasets) host?.changes.emit({ type: 'update', path: `/${d}`, kind: 'dir' })
      known = now
    }).catch(err => host?.logger.warn({ err }, 'datasets: could not read the moved tags'))
  }
  return {
    name: options.name ?? 'datasets',
    root: new RootDir(ctx),
    graphql: datasetsGraphQL(store),
    setup(ctx) {
      host = ctx
      if (options.onChange) {
        busy = snapshot().then(s => void (known = s)).catch(() => {})
        stop = options.onChange(announce)
      }
    },
    async dispose() {
      stop?.()
      await busy
      await options.close?.()
    },
  }
}
