import { vfsError } from '../vfs/errors.ts'
import type { Attr, AttrChanges, FileHandle, NodeGetattr, NodeOpen, NodeSetattr, NodeTruncate, OpContext, OpenFlags, VNode } from '../vfs/node.ts'

const EMPTY = new Uint8Array(0)

/** One rendering of a record: the bytes `stat` counts and `cat` reads, for one version of it. */
export interface Rendered<R> {
  record: R
  version: string | number | undefined
  bytes: Buffer
  mtimeMs: number
}

/** What a record file needs of its collection. */
export interface RecordStore<R> {
  readonly maxWrite: number
  readonly writable: boolean
  readonly canUpdate: boolean
  nameOf(key: string): string
  keyFromName(name: string): string | undefined
  current(key: string): Promise<Rendered<R> | undefined>
  getRecord(key: string): Promise<R | undefined>
  versionOf(key: string, record: R): string | number
  attr(ctx: OpContext, size: number, mtimeMs: number, writable: boolean, ino?: number): Attr
  inoOf(key: string): number
  /** Parses, validates and stores `bytes` as record `name`, once; refusals are recorded and rethrown. */
  apply(name: string, bytes: Uint8Array, base: string | number | null | undefined, ctx: OpContext): Promise<void>
  refuse(name: string, err: unknown, ctx: OpContext): void
  dropPending(name: string, node: RecordNode<R>): void
}

/**
 * A record's file. `stat` and readers always see the last committed rendering: a
 * writer's buffer is its own until it is applied whole. Handles bypass the kernel's
 * page cache, so a reader gets the one rendering it opened even while a new one commits.
 */
export class RecordNode<R> implements VNode, NodeGetattr, NodeOpen, NodeTruncate, NodeSetattr {
  readonly kind = 'file' as const
  cancelled = false
  private handles = 0

  /**
   * A lookup makes a node holding the rendering it just fetched (`snapshot`), so the
   * `getattr` or `open` that follows in the same operation needs no second `get`.
   */
  constructor(
    private readonly store: RecordStore<R>,
    private readonly key: string,
    private readonly isNew = false,
    private readonly snapshot?: Rendered<R>,
  ) {}

  private get name(): string {
    return this.store.nameOf(this.key)
  }

  async getattr(ctx: OpContext): Promise<Attr> {
    if (this.isNew) return this.store.attr(ctx, 0, Date.now(), true, this.store.inoOf(this.key))
    const r = this.snapshot ?? (await this.store.current(this.key))
    if (!r) throw vfsError('ENOENT')
    return this.store.attr(ctx, r.bytes.length, r.mtimeMs, this.store.canUpdate, this.store.inoOf(this.key))
  }

  /**
   * Modes and owners of a record are the view's: a chmod or chown that would change them
   * is refused with `EPERM` rather than ignored; one that changes nothing (`cp -p`, an
   * editor restoring the mode) succeeds, and times (`touch`) are accepted and left to the view.
   */
  async setattr(changes: AttrChanges, ctx: OpContext): Promise<void> {
    if (changes.mode === undefined && changes.uid === undefined && changes.gid === undefined) return
    const a = await this.getattr(ctx)
    if (changes.mode !== undefined && (changes.mode & 0o7777) !== (a.mode & 0o7777)) throw vfsError('EPERM', "a record's mode comes from its view")
    if ((changes.uid !== undefined && changes.uid !== a.uid) || (changes.gid !== undefined && changes.gid !== a.gid)) throw vfsError('EPERM', "a record's owner comes from its view")
  }

  async open(flags: OpenFlags, ctx: OpContext): Promise<FileHandle> {
    let bytes: Uint8Array = EMPTY
    let base: string | number | null = null
    if (!this.isNew) {
      const r = this.snapshot ?? (await this.store.current(this.key))
      if (!r) throw vfsError('ENOENT')
      bytes = r.bytes
      base = this.store.versionOf(this.key, r.record)
    }
    if (!flags.write) {
      const snapshot = bytes
      return { directIo: true, read: (offset, length) => (offset >= snapshot.length ? EMPTY : snapshot.subarray(offset, offset + length)) }
    }
    if (!this.store.writable || (!this.isNew && !this.store.canUpdate)) throw vfsError('EROFS', 'this view does not accept changes')
    this.handles++
    return new RecordHandle(this.store, this, this.name, flags.truncate ? EMPTY : bytes, base, flags.truncate && !this.isNew)
  }

  /** `truncate(2)` on the path: applied at once, like a write of the shortened content. */
  async truncate(size: number, ctx: OpContext): Promise<void> {
    const r = await this.store.current(this.key)
    if (!r) throw vfsError('ENOENT')
    if (size > this.store.maxWrite) throw vfsError('EFBIG')
    const next = Buffer.alloc(size)
    r.bytes.copy(next, 0, 0, Math.min(size, r.bytes.length))
    await this.store.apply(this.name, next, this.store.versionOf(this.key, r.record), ctx)
  }

  closed(): void {
    if (--this.handles <= 0 && this.isNew) this.store.dropPending(this.name, this)
  }
}

/**
 * One write transaction on a record: the handle's buffer, applied exactly once.
 *
 * - A flush applies the buffer when something was written since the last apply; a
 *   shell's `>` (open with `O_TRUNC`, a flush when it moves the descriptor, then the
 *   writes and the last flush) therefore stores the record once, never the empty file.
 * - `O_TRUNC` alone is content, not an edit: a handle closed with nothing written
 *   after it applies the empty file at release (`: > rec`).
 * - A refused apply is reported once (to that `close`, in `.errors`, in the log) and
 *   forgotten: the record stays as it was and nothing retries it.
 * - `fsync` applies what is pending and reports its result.
 */
export class RecordHandle<R> implements FileHandle {
  readonly directIo = true
  private buf: Buffer
  private len: number
  /** Written since the last apply: the next flush applies. */
  private written = false
  /** The buffer differs from what was committed, with or without writes (an `O_TRUNC` open): release applies it. */
  private changed: boolean
  private tooBig = false

  constructor(
    private readonly store: RecordStore<R>,
    private readonly node: RecordNode<R>,
    private readonly name: string,
    initial: Uint8Array,
    private base: string | number | null,
    truncatedAtOpen: boolean,
  ) {
    this.buf = Buffer.from(initial)
    this.len = initial.length
    this.changed = truncatedAtOpen
  }

  read(offset: number, length: number): Uint8Array {
    if (offset >= this.len) return EMPTY
    return this.buf.subarray(offset, Math.min(this.len, offset + length))
  }

  write(offset: number, data: Uint8Array, ctx: OpContext): number {
    const end = offset + data.length
    if (end > this.store.maxWrite) {
      this.tooBig = true
      const err = vfsError('EFBIG', `a record file is limited to ${this.store.maxWrite} bytes`)
      this.store.refuse(this.name, err, ctx)
      throw err
    }
    this.grow(end)
    this.buf.set(data, offset)
    if (end > this.len) this.len = end
    this.written = this.changed = true
    return data.length
  }

  truncate(size: number, ctx: OpContext): void {
    if (size > this.store.maxWrite) {
      const err = vfsError('EFBIG', `a record file is limited to ${this.store.maxWrite} bytes`)
      this.store.refuse(this.name, err, ctx)
      throw err
    }
    // the router's truncate of an O_TRUNC open finds the buffer empty already: not an edit
    if (size === this.len) return
    this.grow(size)
    if (size > this.len) this.buf.fill(0, this.len, size)
    this.len = size
    this.written = this.changed = true
  }

  getattr(ctx: OpContext): Attr {
    return this.store.attr(ctx, this.len, Date.now(), true)
  }

  async flush(ctx: OpContext): Promise<void> {
    if (this.tooBig) {
      this.tooBig = false
      this.written = this.changed = false
      throw vfsError('EFBIG', `a record file is limited to ${this.store.maxWrite} bytes; nothing was written`)
    }
    if (this.written) await this.applyOnce(ctx)
  }

  async fsync(_datasync: boolean, ctx: OpContext): Promise<void> {
    await this.flush(ctx)
  }

  async release(ctx: OpContext): Promise<void> {
    try {
      if (this.changed && !this.tooBig) await this.applyOnce(ctx).catch(() => {})
    } finally {
      this.node.closed()
    }
  }

  private async applyOnce(ctx: OpContext): Promise<void> {
    this.written = this.changed = false
    if (this.node.cancelled) return
    try {
      await this.store.apply(this.name, this.buf.subarray(0, this.len), this.base, ctx)
    } catch (err) {
      if (this.base === null) this.store.dropPending(this.name, this.node)
      throw err
    }
    const key = this.store.keyFromName(this.name)!
    const now = await this.store.getRecord(key)
    this.base = now === undefined ? null : this.store.versionOf(key, now)
  }

  private grow(size: number): void {
    if (size <= this.buf.length) return
    const next = Buffer.alloc(Math.min(this.store.maxWrite, Math.max(size, this.buf.length * 2, 4096)))
    this.buf.copy(next, 0, 0, this.len)
    this.buf = next
  }
}
