import { LRUCache } from 'lru-cache'
import { isVfsError, vfsError } from '../vfs/errors.ts'
import type { MountHost } from '../vfs/mounts.ts'
import type {
  Attr,
  DirEntry,
  DirPage,
  FileHandle,
  MaybePromise,
  NodeCreate,
  NodeGetattr,
  NodeLookup,
  NodeMkdir,
  NodeOpen,
  NodeRead,
  NodeReaddir,
  NodeRename,
  NodeSetattr,
  NodeTruncate,
  NodeUnlink,
  NodeWrite,
  OpContext,
  OpenFlags,
  PageRequest,
  VNode,
} from '../vfs/node.ts'
import { formatOf, renderStream, type Format, type FormatName, type FormatOptions } from './formats.ts'
import { validate, type StandardSchemaV1 } from './schema.ts'
import { SourcePager, type RecordSource } from './source.ts'
import { LIFECYCLE, type Lifecycle, type ViewStats } from './lifecycle.ts'

/** A change a collection's source reports; `reset` means "anything may have changed". */
export type RecordChange =
  | { type: 'create' | 'update' | 'delete'; key: string }
  | { type: 'rename'; key: string; oldKey: string }
  | { type: 'reset' }

/** Options for {@link collection}. `R` is the record type. */
export interface CollectionOptions<R> {
  /** The records: an array, or a function returning an array, an (async) iterable, or one page at a time (see {@link RecordSource}). */
  list: RecordSource<R>
  /** The key of a record: its file name without the extension. Keys are strings. */
  key?: (record: R) => string
  /** Shorthand for `key`: the record field holding the key. Written records missing it get it from the file name. */
  keyField?: string
  /** How a record is rendered and parsed. @default 'json' */
  format?: FormatName | Format
  /** Options of the built-in formats (`md` body field, `csv` columns). */
  formatOptions?: FormatOptions
  /** Finds one record by key, `undefined` when there is none. Lookups call it and never list. Without it a lookup scans the list. */
  get?: (key: string) => MaybePromise<R | undefined>
  /** Stores a changed record. Without it (and without `insert`) records are read-only: `EROFS`. */
  put?: (key: string, record: R) => MaybePromise<void>
  /** Stores a new record (a file created in the folder). @default `put` */
  insert?: (key: string, record: R) => MaybePromise<void>
  /** Deletes a record (`rm`). Without it `EROFS`. */
  remove?: (key: string) => MaybePromise<void>
  /** Changes a record's key (`mv a.json b.json`). Without it such a move fails with `EPERM`. */
  rekey?: (oldKey: string, newKey: string) => MaybePromise<void>
  /** Validates written records; any Standard Schema validator (zod, valibot, arktype…). The validator's output is what `put` receives. */
  schema?: StandardSchemaV1<unknown, R>
  /** A value that changes whenever the record does (an `updatedAt`, a row version). Keys the render cache and detects concurrent edits; without it the rendered bytes are compared. */
  version?: (record: R) => string | number
  /** Subscribes to changes of the source; returns the function that unsubscribes. */
  watch?: (emit: (change: RecordChange) => void) => (() => void) | void
  /** Whole-collection files streamed from the same source, e.g. `{ 'users.csv': 'csv' }`. */
  files?: Record<string, FormatName | Format>
  /** A record's modification time in milliseconds; the time its rendering last changed when absent. */
  mtime?: (record: R) => number
  /** The largest record file a write may produce; bigger writes fail with `EFBIG`. @default 8 MiB */
  maxWriteBytes?: number
  /** How many rendered records are cached. @default 10000 */
  cacheSize?: number
  /** Permission bits of the folder. @default 0o755 when writable, else 0o555 */
  mode?: number
}

/** A collection folder node, as {@link collection} returns it. */
export type CollectionNode = VNode & NodeGetattr & NodeLookup & NodeReaddir

interface Rendered<R> {
  record: R
  version: string | number | undefined
  bytes: Buffer
  mtimeMs: number
}

interface Scratch {
  node: ScratchNode
}

const EMPTY = new Uint8Array(0)
const MAX_SCRATCH = 256
const MAX_ERRORS = 1000
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Encodes a record key as a file-name stem: `%`, `/` and NUL are percent-escaped, and so is a leading `.`. */
export function encodeKey(key: string): string {
  let s = key.replace(/[%/\0]/g, c => '%' + c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase())
  if (s.startsWith('.')) s = '%2E' + s.slice(1)
  return s
}

/** Reverses {@link encodeKey}. */
export function decodeKey(stem: string): string {
  return stem.replace(/%(25|2F|00|2E)/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
}

function fnv52(text: string): number {
  let h = 0xcbf29ce484222325n
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i))
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return Number(h & 0xfffffffffffffn) | 0 || Number((h >> 12n) & 0xfffffffffffffn) + 2 ** 40
}

let collectionSeq = 0

/**
 * Core of a collection folder: lists records lazily in pages, renders them with exact
 * sizes, caches renderings by record version, and writes edits back through the
 * source after parsing and validating them.
 */
class Collection<R> implements VNode, NodeGetattr, NodeLookup, NodeReaddir, NodeCreate, NodeUnlink, NodeRename, NodeMkdir, NodeSetattr, Lifecycle {
  readonly kind = 'dir' as const
  readonly format: Format
  readonly ext: string
  readonly maxWrite: number
  private readonly pager: SourcePager<R>
  private readonly cache: LRUCache<string, Rendered<R>>
  private readonly scratch = new Map<string, Scratch>()
  private readonly pending = new Map<string, RecordNode<R>>()
  private readonly errors = new Map<string, string>()
  /** Sizes of unflushed writes by file name: `stat` by path reports them, as it would for a real file being written. */
  readonly writers = new Map<string, number>()
  private readonly wholeFiles = new Map<string, WholeFile<R>>()
  private readonly startedMs = Date.now()
  private readonly id = ++collectionSeq
  private host: MountHost | undefined
  private path = '/'
  private unwatch: (() => void) | undefined
  generation = 0
  readonly stats = { hits: 0, misses: 0, gets: 0, pages: 0, writes: 0, refused: 0 }

  constructor(readonly options: CollectionOptions<R>) {
    if (!options.key && !options.keyField) throw new TypeError('collection() needs `key` or `keyField`')
    this.format = formatOf(options.format ?? 'json', options.formatOptions)
    this.ext = this.format.ext
    this.maxWrite = options.maxWriteBytes ?? 8 * 1024 * 1024
    this.pager = new SourcePager(options.list)
    this.cache = new LRUCache({ max: options.cacheSize ?? 10_000 })
    for (const [name, format] of Object.entries(options.files ?? {})) {
      this.wholeFiles.set(name, new WholeFile(this, formatOf(format, options.formatOptions)))
    }
  }

  get writable(): boolean {
    return Boolean(this.options.put || this.options.insert)
  }

  keyOf(record: R): string {
    if (this.options.key) return this.options.key(record)
    return String((record as Record<string, unknown>)[this.options.keyField!])
  }

  nameOf(key: string): string {
    return `${encodeKey(key)}.${this.ext}`
  }

  /** The key a file name stands for, or undefined when the name is not a record name. */
  keyFromName(name: string): string | undefined {
    if (name.startsWith('.') || !name.endsWith('.' + this.ext) || name.length === this.ext.length + 1) return undefined
    return decodeKey(name.slice(0, -this.ext.length - 1))
  }

  // ---- lifecycle

  [LIFECYCLE] = {
    attach: (host: MountHost, path: string): void => {
      this.host = host
      this.path = path
      const off = this.options.watch?.(change => this.onChange(change))
      this.unwatch = typeof off === 'function' ? off : undefined
    },
    close: async (): Promise<void> => {
      this.unwatch?.()
      this.unwatch = undefined
      await this.pager.close()
    },
    stats: (): ViewStats => {
      const { hits, misses } = this.stats
      return { ...this.stats, path: this.path, hitRate: hits + misses === 0 ? 0 : hits / (hits + misses), cached: this.cache.size }
    },
  }

  private onChange(change: RecordChange): void {
    this.generation++
    if (change.type === 'reset') {
      this.cache.clear()
      this.emit({ type: 'update', path: this.path, kind: 'dir' })
      return
    }
    this.cache.delete(change.key)
    const path = this.childPath(this.nameOf(change.key))
    if (change.type === 'rename') {
      this.cache.delete(change.oldKey)
      this.emit({ type: 'rename', path, oldPath: this.childPath(this.nameOf(change.oldKey)), kind: 'file' })
    } else {
      this.emit({ type: change.type, path, kind: 'file' })
    }
  }

  private emit(change: Parameters<MountHost['emit']>[0]): void {
    try {
      this.host?.emit(change)
    } catch (err) {
      this.host?.logger.error({ err }, 'change listener failed')
    }
  }

  private fullPath(name: string): string {
    const mount = this.host?.mountPoint ?? ''
    return (mount === '/' ? '' : mount) + this.childPath(name)
  }

  private childPath(name: string): string {
    return this.path === '/' ? '/' + name : `${this.path}/${name}`
  }

  /** Forgets the cached rendering of `key` and the whole-collection sizes. */
  invalidate(key: string): void {
    this.cache.delete(key)
    this.generation++
  }

  // ---- reading

  async getRecord(key: string): Promise<R | undefined> {
    this.stats.gets++
    if (this.options.get) return this.options.get(key)
    for await (const r of this.pager.all()) if (this.keyOf(r) === key) return r
    return undefined
  }

  /** Renders `record` (cached by version, or by identity when there is no version). */
  rendered(key: string, record: R): Rendered<R> {
    const version = this.options.version?.(record)
    const hit = this.cache.get(key)
    if (hit && (version !== undefined ? hit.version === version : hit.record === record)) {
      this.stats.hits++
      return hit
    }
    this.stats.misses++
    const bytes = Buffer.from(this.format.render(record))
    const same = hit && hit.bytes.equals(bytes)
    const mtimeMs = this.options.mtime?.(record) ?? (same ? hit.mtimeMs : hit ? Date.now() : Math.max(this.startedMs, Date.now() - 1))
    const entry: Rendered<R> = { record, version, bytes, mtimeMs }
    this.cache.set(key, entry)
    return entry
  }

  /** The current rendering of `key`, or undefined when the record does not exist. */
  async current(key: string): Promise<Rendered<R> | undefined> {
    const record = await this.getRecord(key)
    return record === undefined ? undefined : this.rendered(key, record)
  }

  attr(ctx: OpContext, size: number, mtimeMs: number, writable: boolean, ino?: number): Attr {
    const a: Attr = { mode: writable ? 0o644 : 0o444, size, uid: ctx.uid, gid: ctx.gid, atimeMs: mtimeMs, mtimeMs, ctimeMs: mtimeMs }
    if (ino !== undefined) a.ino = ino
    return a
  }

  inoOf(key: string): number {
    return fnv52(`${this.id}\0${key}`)
  }

  getattr(ctx: OpContext): Attr {
    const mode = this.options.mode ?? (this.writable ? 0o755 : 0o555)
    return { mode, size: 4096, uid: ctx.uid, gid: ctx.gid, atimeMs: this.startedMs, mtimeMs: this.startedMs, ctimeMs: this.startedMs }
  }

  async lookup(name: string): Promise<VNode | undefined> {
    const whole = this.wholeFiles.get(name)
    if (whole) return whole
    const scratch = this.scratch.get(name)
    if (scratch) return scratch.node
    const pending = this.pending.get(name)
    if (pending) return pending
    const key = this.keyFromName(name)
    if (key === undefined) return this.specialFile(name)
    const r = await this.current(key)
    return r && new RecordNode(this, key, false, r)
  }

  private specialFile(name: string): VNode | undefined {
    if (name === '.errors') return new ErrorFile(() => [...this.errors].map(([n, e]) => `${n}: ${e}\n`).join(''))
    const m = /^\.(.+)\.error$/.exec(name)
    if (m && this.errors.has(m[1]!)) return new ErrorFile(() => (this.errors.has(m[1]!) ? this.errors.get(m[1]!)! + '\n' : ''))
    return undefined
  }

  private extras(): DirEntry[] {
    const out: DirEntry[] = []
    for (const name of this.wholeFiles.keys()) out.push({ name, kind: 'file' })
    for (const name of this.pending.keys()) out.push({ name, kind: 'file' })
    for (const name of this.scratch.keys()) out.push({ name, kind: 'file' })
    if (this.errors.size > 0) {
      out.push({ name: '.errors', kind: 'file' })
      for (const name of this.errors.keys()) out.push({ name: `.${name}.error`, kind: 'file' })
    }
    return out
  }

  async readdir(page: PageRequest): Promise<DirPage> {
    this.stats.pages++
    const { items, cursor } = await this.pager.page(page.limit, page.cursor)
    const entries: DirEntry[] = page.cursor === undefined ? this.extras() : []
    for (const r of items) {
      const name = this.nameOf(this.keyOf(r))
      if (!this.pending.has(name)) entries.push({ name, kind: 'file' })
    }
    return cursor === undefined ? { entries } : { entries, cursor }
  }

  async *records(): AsyncGenerator<R> {
    yield* this.pager.all()
  }

  // ---- writing

  /** Records a refused write so the user can read why, and logs it. */
  refuse(name: string, err: unknown, ctx: OpContext): void {
    if (!isVfsError(err)) return
    this.stats.refused++
    const reason = err.detail ?? err.message
    this.errors.delete(name)
    this.errors.set(name, `${err.code}: ${reason}`)
    if (this.errors.size > MAX_ERRORS) this.errors.delete(this.errors.keys().next().value!)
    ctx.logger.warn({ path: this.fullPath(name), code: err.code, reason }, 'write to a view refused')
  }

  /**
   * Parses, validates and stores `bytes` as the record named `name`. `base` is the
   * version the writer started from (`null` for a new file, `undefined` to skip the check).
   */
  async apply(name: string, bytes: Uint8Array, base: string | number | null | undefined, ctx: OpContext): Promise<void> {
    const prev = this.applying.get(name) ?? Promise.resolve()
    const run = prev.then(
      () => this.applyNow(name, bytes, base, ctx),
      () => this.applyNow(name, bytes, base, ctx),
    )
    const settled = run.then(
      () => undefined,
      () => undefined,
    )
    this.applying.set(name, settled)
    void settled.then(() => {
      if (this.applying.get(name) === settled) this.applying.delete(name)
    })
    return run
  }

  /** Writes to one record are applied one at a time, so the concurrent-edit check cannot interleave with another write. */
  private readonly applying = new Map<string, Promise<void>>()

  private async applyNow(name: string, bytes: Uint8Array, base: string | number | null | undefined, ctx: OpContext): Promise<void> {
    try {
      const key = this.keyFromName(name)
      if (key === undefined) throw vfsError('EINVAL', `'${name}' is not a record name (expected <key>.${this.ext})`)
      if (bytes.length > this.maxWrite) throw vfsError('EFBIG', `a record file is limited to ${this.maxWrite} bytes`)
      let text: string
      try {
        text = decoder.decode(bytes)
      } catch {
        throw vfsError('EINVAL', 'the file is not valid UTF-8')
      }
      let parsed = this.format.parse(text)
      const field = this.options.keyField
      if (field && parsed && typeof parsed === 'object' && !Array.isArray(parsed) && (parsed as Record<string, unknown>)[field] === undefined) {
        parsed = { ...(parsed as object), [field]: key }
      }
      const record = this.options.schema ? await validate(this.options.schema, parsed) : (parsed as R)
      const recordKey = this.keyOf(record)
      if (recordKey !== key) throw vfsError('EINVAL', `the record's key is '${recordKey}' but the file is named '${name}'`)
      const now = await this.getRecord(key)
      if (base !== undefined) {
        if (base === null && now !== undefined) throw vfsError('EAGAIN', `'${name}' was created by someone else meanwhile; nothing was written`)
        if (base !== null && now === undefined) throw vfsError('EAGAIN', `'${name}' was removed while open; nothing was written`)
        if (base !== null && now !== undefined && this.versionOf(key, now) !== base) {
          throw vfsError('EAGAIN', `'${name}' changed since it was opened; nothing was written, re-open and edit again`)
        }
      }
      if (now === undefined) {
        const insert = this.options.insert ?? this.options.put
        if (!insert) throw vfsError('EROFS', 'this view does not accept new records')
        await insert(key, record)
      } else {
        if (!this.options.put) throw vfsError('EROFS', 'this view does not accept changes')
        await this.options.put(key, record)
      }
      this.stats.writes++
      this.errors.delete(name)
      this.invalidate(key)
    } catch (err) {
      this.refuse(name, err, ctx)
      throw err
    }
  }

  /** The value that identifies the record's current state for the concurrent-edit check. */
  versionOf(key: string, record: R): string | number {
    const v = this.options.version?.(record)
    if (v !== undefined) return v
    return this.rendered(key, record).bytes.toString('latin1')
  }

  create(name: string, _mode: number, ctx: OpContext): VNode {
    if (this.wholeFiles.has(name)) throw vfsError('EEXIST')
    const key = this.keyFromName(name)
    if (key !== undefined) {
      if (!this.writable) throw vfsError('EROFS', 'this view does not accept new records')
      const node = new RecordNode(this, key, true)
      this.pending.set(name, node)
      return node
    }
    if (!this.writable) throw vfsError('EROFS')
    if (this.scratch.size >= MAX_SCRATCH) throw vfsError('ENOSPC', `at most ${MAX_SCRATCH} temporary files per folder`)
    const node = new ScratchNode(this.maxWrite)
    this.scratch.set(name, { node })
    ctx.logger.debug({ name }, 'temporary file created in a collection')
    return node
  }

  /** Forgets a created file that was never written. */
  dropPending(name: string, node: RecordNode<R>): void {
    if (this.pending.get(name) === node) this.pending.delete(name)
  }

  mkdir(): VNode {
    if (!this.writable) throw vfsError('EROFS')
    throw vfsError('EPERM', 'a collection holds records, not folders')
  }

  setattr(): void {}

  async unlink(name: string): Promise<void> {
    if (!this.writable && !this.options.remove) throw vfsError('EROFS')
    if (this.scratch.delete(name)) return
    const pending = this.pending.get(name)
    if (pending) {
      pending.cancelled = true
      this.pending.delete(name)
      return
    }
    if (this.wholeFiles.has(name)) throw vfsError('EPERM', 'a whole-collection file cannot be removed')
    const m = /^\.(.+)\.error$/.exec(name)
    if (m && this.errors.delete(m[1]!)) return
    if (name === '.errors') {
      this.errors.clear()
      return
    }
    const key = this.keyFromName(name)
    if (key === undefined) throw vfsError('ENOENT')
    if (!this.options.remove) throw vfsError('EROFS', 'this view does not remove records')
    await this.options.remove(key)
    this.errors.delete(name)
    this.invalidate(key)
  }

  async rename(name: string, newParent: VNode, newName: string, ctx: OpContext): Promise<void> {
    if (!this.writable && !this.options.rekey) throw vfsError('EROFS')
    if (newParent !== this) throw vfsError('EXDEV', 'records move only within their collection')
    const newKey = this.keyFromName(newName)
    const scratch = this.scratch.get(name)
    if (scratch) {
      if (newKey === undefined) {
        if (this.wholeFiles.has(newName)) throw vfsError('EPERM')
        this.scratch.delete(name)
        this.scratch.set(newName, scratch)
        return
      }
      await this.apply(newName, scratch.node.content(), undefined, ctx)
      this.scratch.delete(name)
      return
    }
    const oldKey = this.keyFromName(name)
    if (oldKey === undefined || newKey === undefined) {
      throw vfsError('EPERM', 'only records can be renamed to record names')
    }
    if (!this.options.rekey) throw vfsError('EPERM', 'this view does not re-key records')
    await this.options.rekey(oldKey, newKey)
    this.invalidate(oldKey)
    this.invalidate(newKey)
  }
}

/** A record's file: renders on read, buffers writes per handle, and applies them on flush. */
class RecordNode<R> implements VNode, NodeGetattr, NodeOpen, NodeTruncate, NodeSetattr {
  readonly kind = 'file' as const
  cancelled = false
  private handles = 0

  /**
   * A lookup makes a node holding the rendering it just fetched (`snapshot`), so the
   * `getattr` or `open` that follows in the same operation needs no second `get`.
   */
  constructor(
    private readonly coll: Collection<R>,
    private readonly key: string,
    private readonly isNew = false,
    private readonly snapshot?: Rendered<R>,
  ) {}

  private get name(): string {
    return this.coll.nameOf(this.key)
  }

  async getattr(ctx: OpContext): Promise<Attr> {
    const writing = this.coll.writers.get(this.name)
    if (writing !== undefined || this.isNew) return this.coll.attr(ctx, writing ?? 0, Date.now(), true, this.coll.inoOf(this.key))
    const r = this.snapshot ?? (await this.coll.current(this.key))
    if (!r) throw vfsError('ENOENT')
    return this.coll.attr(ctx, r.bytes.length, r.mtimeMs, this.coll.writable, this.coll.inoOf(this.key))
  }

  setattr(): void {}

  async open(flags: OpenFlags, ctx: OpContext): Promise<FileHandle> {
    let bytes: Uint8Array = EMPTY
    let base: string | number | null = null
    if (!this.isNew) {
      const r = this.snapshot ?? (await this.coll.current(this.key))
      if (!r) throw vfsError('ENOENT')
      bytes = r.bytes
      base = this.coll.versionOf(this.key, r.record)
    }
    if (!flags.write) {
      const snapshot = bytes
      return { read: (offset, length) => (offset >= snapshot.length ? EMPTY : snapshot.subarray(offset, offset + length)) }
    }
    if (!this.coll.writable || (!this.isNew && !this.coll.options.put)) throw vfsError('EROFS', 'this view does not accept changes')
    this.handles++
    return new RecordHandle(this.coll, this, this.name, bytes, base, ctx)
  }

  /** `truncate(2)` on the path: applied at once, like a write of the shortened content. */
  async truncate(size: number, ctx: OpContext): Promise<void> {
    const r = await this.coll.current(this.key)
    if (!r) throw vfsError('ENOENT')
    if (size > this.coll.maxWrite) throw vfsError('EFBIG')
    const next = Buffer.alloc(size)
    r.bytes.copy(next, 0, 0, Math.min(size, r.bytes.length))
    await this.coll.apply(this.name, next, this.coll.versionOf(this.key, r.record), ctx)
  }

  noteSize(size: number | undefined): void {
    if (size === undefined) this.coll.writers.delete(this.name)
    else this.coll.writers.set(this.name, size)
  }

  closed(): void {
    if (--this.handles <= 0 && this.isNew) this.coll.dropPending(this.name, this)
  }
}

/** Per-open write buffer of a record; applied once per flush when something was written. */
class RecordHandle<R> implements FileHandle {
  private buf: Buffer
  private len: number
  private dirty = false
  private tooBig = false

  constructor(
    private readonly coll: Collection<R>,
    private readonly node: RecordNode<R>,
    private readonly name: string,
    initial: Uint8Array,
    private base: string | number | null,
    private readonly openCtx: OpContext,
  ) {
    this.buf = Buffer.from(initial)
    this.len = initial.length
  }

  read(offset: number, length: number): Uint8Array {
    if (offset >= this.len) return EMPTY
    return this.buf.subarray(offset, Math.min(this.len, offset + length))
  }

  write(offset: number, data: Uint8Array, ctx: OpContext): number {
    const end = offset + data.length
    if (end > this.coll.maxWrite) {
      this.tooBig = true
      const err = vfsError('EFBIG', `a record file is limited to ${this.coll.maxWrite} bytes`)
      this.coll.refuse(this.name, err, ctx)
      throw err
    }
    this.grow(end)
    this.buf.set(data, offset)
    if (end > this.len) this.len = end
    this.dirty = true
    this.node.noteSize(this.len)
    return data.length
  }

  truncate(size: number, ctx: OpContext): void {
    if (size > this.coll.maxWrite) {
      const err = vfsError('EFBIG', `a record file is limited to ${this.coll.maxWrite} bytes`)
      this.coll.refuse(this.name, err, ctx)
      throw err
    }
    this.grow(size)
    if (size > this.len) this.buf.fill(0, this.len, size)
    this.len = size
    this.dirty = true
    this.node.noteSize(size)
  }

  getattr(ctx: OpContext): Attr {
    return this.coll.attr(ctx, this.len, Date.now(), true)
  }

  async flush(ctx: OpContext): Promise<void> {
    if (this.tooBig) throw vfsError('EFBIG', `a record file is limited to ${this.coll.maxWrite} bytes; nothing was written`)
    if (!this.dirty || this.node.cancelled) return
    try {
      await this.coll.apply(this.name, this.buf.subarray(0, this.len), this.base, ctx)
    } catch (err) {
      if (this.base === null) this.coll.dropPending(this.name, this.node)
      throw err
    }
    this.dirty = false
    this.node.noteSize(undefined)
    const key = this.coll.keyFromName(this.name)!
    const now = await this.coll.getRecord(key)
    this.base = now === undefined ? null : this.coll.versionOf(key, now)
  }

  release(): void {
    void this.openCtx
    if (this.dirty || this.tooBig) this.node.noteSize(undefined)
    this.node.closed()
  }

  private grow(size: number): void {
    if (size <= this.buf.length) return
    const next = Buffer.alloc(Math.min(this.coll.maxWrite, Math.max(size, this.buf.length * 2, 4096)))
    this.buf.copy(next, 0, 0, this.len)
    this.buf = next
  }
}

/** A plain temporary file in a collection (an editor's or `sed -i`'s), kept in memory until renamed onto a record or removed. */
class ScratchNode implements VNode, NodeGetattr, NodeRead, NodeWrite, NodeTruncate, NodeSetattr {
  readonly kind = 'file' as const
  private buf = Buffer.alloc(0)
  private len = 0
  private mtimeMs = Date.now()

  constructor(private readonly max: number) {}

  content(): Uint8Array {
    return this.buf.subarray(0, this.len)
  }

  getattr(ctx: OpContext): Attr {
    return { mode: 0o644, size: this.len, uid: ctx.uid, gid: ctx.gid, atimeMs: this.mtimeMs, mtimeMs: this.mtimeMs, ctimeMs: this.mtimeMs }
  }

  setattr(): void {}

  read(offset: number, length: number): Uint8Array {
    return offset >= this.len ? EMPTY : this.buf.subarray(offset, Math.min(this.len, offset + length))
  }

  write(offset: number, data: Uint8Array): number {
    const end = offset + data.length
    if (end > this.max) throw vfsError('EFBIG', `a temporary file is limited to ${this.max} bytes`)
    this.resize(Math.max(end, this.len))
    this.buf.set(data, offset)
    this.mtimeMs = Date.now()
    return data.length
  }

  truncate(size: number): void {
    if (size > this.max) throw vfsError('EFBIG')
    this.resize(size)
    this.mtimeMs = Date.now()
  }

  private resize(size: number): void {
    if (size > this.buf.length) {
      const next = Buffer.alloc(Math.min(this.max, Math.max(size, this.buf.length * 2, 4096)))
      this.buf.copy(next, 0, 0, this.len)
      this.buf = next
    } else if (size < this.len) {
      this.buf.fill(0, size, this.len)
    }
    this.len = size
  }
}

/** A small read-only text file whose content is rendered on each stat and open. */
class ErrorFile implements VNode, NodeGetattr, NodeOpen {
  readonly kind = 'file' as const
  constructor(private readonly text: () => string) {}

  getattr(ctx: OpContext): Attr {
    const t = Date.now()
    return { mode: 0o444, size: Buffer.byteLength(this.text()), uid: ctx.uid, gid: ctx.gid, atimeMs: t, mtimeMs: t, ctimeMs: t }
  }

  open(flags: OpenFlags): FileHandle {
    if (flags.write) throw vfsError('EROFS', 'remove the error file to clear it')
    const bytes = Buffer.from(this.text())
    return { read: (o, l) => (o >= bytes.length ? EMPTY : bytes.subarray(o, o + l)) }
  }
}

/** A whole-collection file (`users.csv`), streamed from the source; its size is counted by a full pass and cached until the next change. */
class WholeFile<R> implements VNode, NodeGetattr, NodeOpen {
  readonly kind = 'file' as const
  private sized: { generation: number; size: number; mtimeMs: number } | undefined

  constructor(
    private readonly coll: Collection<R>,
    private readonly format: Format,
  ) {}

  private chunks(): AsyncGenerator<string> {
    return renderStream(this.format, this.coll.records())
  }

  async getattr(ctx: OpContext): Promise<Attr> {
    const gen = this.coll.generation
    if (!this.sized || this.sized.generation !== gen) {
      let size = 0
      for await (const chunk of this.chunks()) size += Buffer.byteLength(chunk)
      this.sized = { generation: gen, size, mtimeMs: Date.now() }
    }
    return this.coll.attr(ctx, this.sized.size, this.sized.mtimeMs, false)
  }

  open(flags: OpenFlags): FileHandle {
    if (flags.write) throw vfsError('EROFS', 'a whole-collection file is read-only; edit the record files')
    let stream: AsyncGenerator<string> | undefined
    let pos = 0
    let pending: Buffer = Buffer.alloc(0)
    const restart = () => {
      void stream?.return(undefined)
      stream = this.chunks()
      pos = 0
      pending = Buffer.alloc(0)
    }
    return {
      read: async (offset, length) => {
        if (!stream || offset < pos) restart()
        const out: Buffer[] = []
        let need = length
        while (need > 0) {
          if (pending.length === 0) {
            const step = await stream!.next()
            if (step.done) break
            pending = Buffer.from(step.value)
          }
          if (pos < offset) {
            const skip = Math.min(offset - pos, pending.length)
            pending = pending.subarray(skip)
            pos += skip
            continue
          }
          const take = pending.subarray(0, need)
          out.push(take)
          pending = pending.subarray(take.length)
          pos += take.length
          need -= take.length
        }
        return out.length === 1 ? out[0]! : Buffer.concat(out)
      },
      release: () => {
        void stream?.return(undefined)
      },
    }
  }
}

/**
 * A folder of records rendered as files, one per record (`<key>.<ext>`), listed lazily
 * in pages from `list`, looked up one at a time with `get`, written back through
 * `put`/`insert`/`remove`/`rekey` after parsing and schema validation.
 *
 * ```ts
 * collection({
 *   list: () => db.users(),
 *   key: u => u.id,
 *   format: 'yaml',
 *   schema: UserSchema,
 *   get: id => db.user(id),
 *   put: (id, user) => db.save(id, user),
 *   files: { 'users.csv': 'csv' },
 * })
 * ```
 *
 * Besides the records the folder shows its whole-collection `files`, temporary files
 * being written (editors, `sed -i`), and `.errors` / `.<name>.error` files naming why
 * the last write of a record was refused.
 */
export function collection<R>(options: CollectionOptions<R>): CollectionNode {
  return new Collection(options)
}
