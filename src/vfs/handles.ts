import { constants as fsc } from 'node:fs'
import { vfsError } from './errors.ts'
import type { MountEntry } from './mounts.ts'
import type { FileHandle, OpenFlags, VNode } from './node.ts'

/** The largest single read or write the router accepts, in bytes. */
export const MAX_IO = 16 * 1024 * 1024

/** Decodes POSIX open flags. */
export function decodeFlags(raw: number): OpenFlags {
  const access = raw & 3
  return {
    raw,
    read: access === fsc.O_RDONLY || access === fsc.O_RDWR,
    write: access === fsc.O_WRONLY || access === fsc.O_RDWR,
    append: (raw & fsc.O_APPEND) !== 0,
    truncate: (raw & fsc.O_TRUNC) !== 0,
    create: (raw & fsc.O_CREAT) !== 0,
    exclusive: (raw & fsc.O_EXCL) !== 0,
  }
}

/** One open file of the router. */
export interface OpenFile {
  path: string
  node: VNode
  handle: FileHandle
  flags: OpenFlags
  entry: MountEntry | undefined
  dirty: boolean
}

/** The router's open files by handle number. */
export class HandleTable {
  private readonly files = new Map<number, OpenFile>()
  private next = 1

  /** Registers `f` and returns its new handle number. */
  add(f: OpenFile): number {
    const fh = this.next++
    this.files.set(fh, f)
    return fh
  }

  get(fh: number): OpenFile | undefined {
    return this.files.get(fh)
  }

  delete(fh: number): void {
    this.files.delete(fh)
  }

  clear(): void {
    this.files.clear()
  }

  get size(): number {
    return this.files.size
  }

  values(): IterableIterator<OpenFile> {
    return this.files.values()
  }
}

/** Checks a transfer's offset and length: whole, not negative, at most {@link MAX_IO}. Throws `EINVAL`. */
export function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw vfsError('EINVAL', `bad offset ${offset}`)
  if (!Number.isSafeInteger(length) || length < 0) throw vfsError('EINVAL', `bad length ${length}`)
  if (length > MAX_IO) throw vfsError('EINVAL', `a single transfer is limited to ${MAX_IO} bytes`)
}

/** Checks a file size: whole and not negative (`EINVAL`); within JavaScript's exact integers (`EFBIG`). */
export function checkSize(size: number): void {
  if (!Number.isFinite(size) || size < 0 || !Number.isInteger(size)) throw vfsError('EINVAL', `bad size ${size}`)
  if (!Number.isSafeInteger(size)) throw vfsError('EFBIG')
}
