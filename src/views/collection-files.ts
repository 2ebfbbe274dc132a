import { vfsError } from '../vfs/errors.ts'
import type { Attr, FileHandle, NodeGetattr, NodeOpen, NodeRead, NodeSetattr, NodeTruncate, NodeWrite, OpContext, OpenFlags, VNode } from '../vfs/node.ts'
import { renderStream, type Format } from './formats.ts'

const EMPTY = new Uint8Array(0)

/** What a whole-collection file needs of its collection. */
export interface WholeSource<R> {
  readonly generation: number
  records(): AsyncGenerator<R>
  attr(ctx: OpContext, size: number, mtimeMs: number, writable: boolean, ino?: number): Attr
}

/** A plain temporary file in a collection (an editor's or `sed -i`'s), kept in memory until renamed onto a record or removed. */
export class ScratchNode implements VNode, NodeGetattr, NodeRead, NodeWrite, NodeTruncate, NodeSetattr {
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

/**
 * A small read-only text file rendered on each stat and open (`.errors`). Its time is
 * the time its text last changed (`changedMs`), so `tar` of a view never sees it change
 * while reading, and its handles bypass the page cache.
 */
export class ErrorFile implements VNode, NodeGetattr, NodeOpen {
  readonly kind = 'file' as const
  constructor(
    private readonly text: () => string,
    private readonly changedMs: () => number,
  ) {}

  getattr(ctx: OpContext): Attr {
    const t = this.changedMs()
    return { mode: 0o444, size: Buffer.byteLength(this.text()), uid: ctx.uid, gid: ctx.gid, atimeMs: t, mtimeMs: t, ctimeMs: t }
  }

  open(flags: OpenFlags): FileHandle {
    if (flags.write) throw vfsError('EROFS', 'remove the error file to clear it')
    const bytes = Buffer.from(this.text())
    return { directIo: true, read: (o, l) => (o >= bytes.length ? EMPTY : bytes.subarray(o, o + l)) }
  }
}

/** A whole-collection file (`users.csv`), streamed from the source; its size is counted by a full pass and cached until the next change. */
export class WholeFile<R> implements VNode, NodeGetattr, NodeOpen {
  readonly kind = 'file' as const
  private sized: { generation: number; size: number; mtimeMs: number } | undefined

  constructor(
    private readonly coll: WholeSource<R>,
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
    const restart = (): void => {
      void stream?.return(undefined)
      stream = this.chunks()
      pos = 0
      pending = Buffer.alloc(0)
    }
    return {
      directIo: true,
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
