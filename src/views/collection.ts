import { LRUCache } from 'lru-cache'
import { isVfsError, vfsError } from '../vfs/errors.ts'
import type { MountChange, ViewStats } from '../vfs/mounts.ts'
import type {
  Attr,
  DirEntry,
  DirPage,
  FileHandle,
  MaybePromise,
  NodeContext,
  NodeCreate,
  NodeGetattr,
  NodeLookup,
  NodeMkdir,
  NodeOpen,
  NodeRead,
  NodeReaddir,
  NodeRename,
  NodeSetattr,
  NodeSetup,
  NodeTruncate,
  NodeUnlink,
  NodeWrite,
  OpContext,
  OpenFlags,
  PageRequest,
  VNode,
} from '../vfs/node.ts'
import { ErrorFile, ScratchNode, WholeFile } from './collection-files.ts'
import { formatOf, type Format, type FormatName, type FormatOptions } from './formats.ts'
import { RecordNode, type Rendered, type RecordStore } from './record-file.ts'
import { validate, type StandardSchemaV1 } from './schema.ts'
import { SourcePager, type RecordSource } from './source.ts'

/** A change a collection's source reports; `reset` means "anything may have changed". */
export type RecordChange =
  | {
      /** What happened to the record. */
      type: 'create' | 'update' | 'delete'
      /** The record's key, as `key` gives it. */
      key: string
    }
  | {
      /** The record's key changed. */
      type: 'rename'
      /** The key after the rename. */
      key: string
      /** The key before the rename. */
      oldKey: string
    }
  | {
      /** Anything may have changed: the collection drops its cache and reports its folder updated. */
      type: 'reset'
    }

/** Options for {@link collection}. `R` is the record type. */
export interface CollectionOptions<R> {
  /** The records: an array, or a function returning an array, an (async) iterable, or one page at a time (see {@link RecordSource}). */
  list: RecordSource<R>
  /**
   * The key of a record: its file name without the extension. Either the name of the
   * record field holding it (`'id'`; a written record missing the field gets it from the
   * file name), or a function of the record. Keys are strings.
   */
  key: string | ((record: R) => string)
  /** How a record is rendered and parsed. @default 'json' */
  format?: FormatName | Format
  /** Options of the built-in formats (`md` body field, `csv` columns). */
  formatOptions?: FormatOptions
  /** Finds one record by key, `undefined` when there is none. Lookups call it and never list. Without it a lookup scans the list. */
  get?: (key: string) => MaybePromise<R | undefined>
  /**
   * Stores a written record: a changed one, or a new one (a file created in the folder),
   * as `change.created` says. Without it records are read-only: `EROFS`. To refuse one
   * kind of write, throw `vfsError('EROFS', why)` for it.
   */
  put?: (key: string, record: R, change: PutChange) => MaybePromise<void>
  /** Deletes a record (`rm`). Without it `EROFS`. */
  remove?: (key: string) => MaybePromise<void>
  /**
   * Moves a record into another collection of the same view (`mv friends/ada.vcf work/`),
   * as one change of the store: `target` is the destination, as `collection()` returned
   * it. Without it such a move fails with `EXDEV` (and `mv` copies and deletes).
   */
  move?: (key: string, target: CollectionNode, newKey: string) => MaybePromise<void>
  /** Changes a record's key (`mv a.json b.json`). Without it such a move fails with `EPERM`. */
  rekey?: (oldKey: string, newKey: string) => MaybePromise<void>
  /**
   * Validates written records; any Standard Schema validator (zod, valibot, arktype…). The
   * validator's output is what `put` receives. It is called with
   * `{ libraryOptions: { fileKey } }`, the key of the file written, for a validator of
   * your own that settles a record's key against its file name.
   */
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
  /**
   * Whether the records `list` returns are whole: exactly what `get` returns for their
   * keys. Then the lookups that follow a listing (`ls -l`) are answered from the page
   * just listed instead of a `get` each. Leave it off when `list` returns summaries.
   * @default true when there is no `get`, else false
   */
  listIsComplete?: boolean
  /** How many rendered records are cached. @default 10000 */
  cacheSize?: number
  /** Permission bits of the folder. @default 0o755 when writable, else 0o555 */
  mode?: number
}

/** What kind of write a {@link CollectionOptions.put} stores. */
export interface PutChange {
  /** True for a new record (a file created in the folder), false for a change to one that exists. */
  created: boolean
}

/** A collection folder node, as {@link collection} returns it. */
export type CollectionNode = VNode & NodeGetattr & NodeLookup & NodeReaddir & NodeSetup

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
class Collection<R> implements VNode, NodeGetattr, NodeLookup, NodeReaddir, NodeCreate, NodeUnlink, NodeRename, NodeMkdir, NodeSetattr, NodeSetup, RecordStore<R> {
  readonly kind = 'dir' as const
  readonly format: Format
  readonly ext: string
  readonly maxWrite: number
  private readonly pager: SourcePager<R>
  private readonly cache: LRUCache<string, Rendered<R>>
  private readonly scratch = new Map<string, Scratch>()
  private readonly pending = new Map<string, RecordNode<R>>()
  private readonly errors = new Map<string, string>()
  /**
   * Records the last listing brought, by key, for 5 s: `ls -l` looks up each name it
   * just listed, and these answer those lookups without a `get` per record (one query
   * per page for a SQL table, not per row). A change event of the source drops them.
   */
  private readonly listed = new LRUCache<string, { record: R; generation: number }>({ max: 20_000, ttl: 5000 })
  /** When `.errors` last changed, its files' time. */
  private errorsChangedMs = Date.now()
  private readonly wholeFiles = new Map<string, WholeFile<R>>()
  private readonly startedMs = Date.now()
  private readonly id = ++collectionSeq
  private ctx: NodeContext | undefined
  private path = '/'
  private unwatch: (() => void) | undefined
  generation = 0
  /** Counters behind {@link stats}. */
  readonly counts = { hits: 0, misses: 0, gets: 0, pages: 0, writes: 0, refused: 0 }

  constructor(readonly options: CollectionOptions<R>) {
    if (typeof options.key !== 'string' && typeof options.key !== 'function') throw new TypeError('collection() needs `key`: the name of the key field, or a function of the record')
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
    return Boolean(this.options.put)
  }

  /** Whether listed records may answer lookups (see `CollectionOptions.listIsComplete`). */
  private get listIsComplete(): boolean {
    return this.options.listIsComplete ?? !this.options.get
  }

  /** Whether existing records can change: their files show write bits only then. */
  get canUpdate(): boolean {
    return Boolean(this.options.put)
  }

  keyOf(record: R): string {
    const key = this.options.key
    return typeof key === 'function' ? key(record) : String((record as Record<string, unknown>)[key])
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

  /** Starts watching the source (`watch`), reporting its changes at `ctx.path`. */
  setup(ctx: NodeContext): void {
    this.ctx = ctx
    this.path = ctx.path
    const off = this.options.watch?.(change => this.onChange(change))
    this.unwatch = typeof off === 'function' ? off : undefined
  }

  /** Stops watching and closes a listing still open. */
  async dispose(): Promise<void> {
    this.unwatch?.()
    this.unwatch = undefined
    await this.pager.close()
  }

  /** The collection's figures (cache hits and misses, gets, pages, writes, refusals), keyed by its path. */
  stats(): Record<string, ViewStats> {
    const { hits, misses } = this.counts
    return { [this.path]: { ...this.counts, path: this.path, hitRate: hits + misses === 0 ? 0 : hits / (hits + misses), cached: this.cache.size } }
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

  private emit(change: MountChange): void {
    try {
      this.ctx?.changes.emit(change)
    } catch (err) {
      this.ctx?.logger.error({ err }, 'change listener failed')
    }
  }

  private fullPath(name: string): string {
    const mount = this.ctx?.mountPoint ?? ''
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
    this.counts.gets++
    if (this.options.get) return this.options.get(key)
    for await (const r of this.pager.all()) if (this.keyOf(r) === key) return r
    return undefined
  }

  /** Renders `record` (cached by version, or by identity when there is no version). */
  rendered(key: string, record: R): Rendered<R> {
    const version = this.options.version?.(record)
    const hit = this.cache.get(key)
    if (hit && (version !== undefined ? hit.version === version : hit.record === record)) {
      this.counts.hits++
      return hit
    }
    this.counts.misses++
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
    const seen = this.listed.get(key)
    const r = seen && seen.generation === this.generation ? this.rendered(key, seen.record) : await this.current(key)
    return r && new RecordNode(this, key, false, r)
  }

  private specialFile(name: string): VNode | undefined {
    const changed = (): number => this.errorsChangedMs
    if (name === '.errors') return new ErrorFile(() => [...this.errors].map(([n, e]) => `${n}: ${e}\n`).join(''), changed)
    const m = /^\.(.+)\.error$/.exec(name)
    if (m && this.errors.has(m[1]!)) return new ErrorFile(() => (this.errors.has(m[1]!) ? this.errors.get(m[1]!)! + '\n' : ''), changed)
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
    this.counts.pages++
    const { items, cursor } = await this.pager.page(page.limit, page.cursor)
    const entries: DirEntry[] = page.cursor === undefined ? this.extras() : []
    for (const r of items) {
      const key = this.keyOf(r)
      const name = this.nameOf(key)
      if (this.pending.has(name)) continue
      entries.push({ name, kind: 'file' })
      if (this.listIsComplete) this.listed.set(key, { record: r, generation: this.generation })
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
    this.counts.refused++
    const reason = err.detail ?? err.message
    this.errors.delete(name)
    this.errors.set(name, `${err.code}: ${reason}`)
    if (this.errors.size > MAX_ERRORS) this.errors.delete(this.errors.keys().next().value!)
    this.errorsChangedMs = Date.now()
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
      let parsed: unknown
      try {
        parsed = this.format.parse(text)
      } catch (err) {
        // whatever a format's parse throws is about the content (JSON.parse's SyntaxError too)
        if (isVfsError(err)) throw err
        throw vfsError('EINVAL', `malformed ${this.format.name}: ${err instanceof Error ? err.message : String(err)}`)
      }
      const field = this.options.key
      if (typeof field === 'string' && parsed && typeof parsed === 'object' && !Array.isArray(parsed) && (parsed as Record<string, unknown>)[field] === undefined) {
        parsed = { ...(parsed as object), [field]: key }
      }
      const record = this.options.schema ? await validate(this.options.schema, parsed, { libraryOptions: { fileKey: key } }) : (parsed as R)
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
        if (!this.options.put) throw vfsError('EROFS', 'this view does not accept new records')
        await this.options.put(key, record, { created: true })
      } else {
        if (!this.options.put) throw vfsError('EROFS', 'this view does not accept changes')
        await this.options.put(key, record, { created: false })
      }
      this.counts.writes++
      if (this.errors.delete(name)) this.errorsChangedMs = Date.now()
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

  async unlink(name: string, ctx: OpContext): Promise<void> {
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
    if (m && this.errors.delete(m[1]!)) {
      this.errorsChangedMs = Date.now()
      return
    }
    if (name === '.errors') {
      this.errors.clear()
      this.errorsChangedMs = Date.now()
      return
    }
    const key = this.keyFromName(name)
    if (key === undefined) throw vfsError('ENOENT')
    if (!this.options.remove) throw vfsError('EROFS', 'this view does not remove records')
    try {
      await this.options.remove(key)
    } catch (err) {
      // a refused rm says why where a refused write does: .errors and .NAME.error
      this.refuse(name, err, ctx)
      throw err
    }
    if (this.errors.delete(name)) this.errorsChangedMs = Date.now()
    this.invalidate(key)
  }

  /** A move into another collection of the view, through `move` (see {@link CollectionOptions.move}). */
  private async moveTo(name: string, target: VNode, newName: string, ctx: OpContext): Promise<void> {
    if (!(target instanceof Collection) || !this.options.move) throw vfsError('EXDEV', 'this view does not move records between these folders')
    const oldKey = this.keyFromName(name)
    const newKey = target.keyFromName(newName)
    if (oldKey === undefined || newKey === undefined) throw vfsError('EPERM', 'only records move between collections, to record names')
    try {
      await this.options.move(oldKey, target, newKey)
    } catch (err) {
      this.refuse(name, err, ctx)
      throw err
    }
    this.invalidate(oldKey)
    target.invalidate(newKey)
  }

  async rename(name: string, newParent: VNode, newName: string, ctx: OpContext): Promise<void> {
    if (newParent !== this) return this.moveTo(name, newParent, newName, ctx)
    if (!this.writable && !this.options.rekey) throw vfsError('EROFS')
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

/**
 * A folder of records rendered as files, one per record (`<key>.<ext>`), listed lazily
 * in pages from `list`, looked up one at a time with `get`, written back through
 * `put`/`remove`/`rekey` after parsing and schema validation.
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
