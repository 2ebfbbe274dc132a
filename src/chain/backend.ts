import { readSync } from 'node:fs'
import { open as fsOpen, stat, statfs as fsStatfs, type FileHandle } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { watch } from 'chokidar'
import type { LockTable } from '../vfs/locks/table.ts'
import type { Logger } from '../vfs/log.ts'
import type { WriteLease } from './shared-writing.ts'
import type { StatFs } from '../vfs/node.ts'
import { readsWaitOnlyForDisk } from './fd-filesystem.ts'
import { fileHeader, frame, FRAME_HEADER_BYTES } from './format.ts'
import { exists, fsyncDir, lockLog, LogReplacedError, type LogReader } from './log.ts'

/**
 * Where a chain's blocks are stored. The chain sees one byte sequence, the log: a
 * 16-byte file header and then the frames of its blocks in `seq` order (FORMAT.md).
 * Offsets into it (chunk positions, block offsets) mean the same in every backend.
 */
export interface ChainBackend {
  /** The kind of store, `file` or `postgres`. */
  readonly kind: string
  /** Where the chain lives, for messages (a path, or a table and chain id). */
  readonly name: string
  /** Where the trust store pins this chain: the store's location, never the chain found there (the absolute path of a log file; a PostgreSQL store's URL without password, search_path and table). @default `<kind>:<name>` */
  readonly trustKey?: string | undefined
  /** True when a damaged last frame may be a write cut short by a crash (cut on open); when false any damage is an integrity error. */
  readonly tornTails: boolean
  /** True when the log holds a chain. */
  exists(): Promise<boolean>
  /** Stores a new log holding only the genesis block (a signed body); fails when one exists. */
  create(genesis: { chainId: Uint8Array; seq: number; body: Buffer }): Promise<void>
  /** Takes the writer lock; throws `ChainLockedError` when another writer holds it. Returns its release. */
  lock(): Promise<() => Promise<void>>
  /** Opens the log for reading (and appending, unless `readOnly`). */
  open(readOnly: boolean): Promise<ChainLog>
  /**
   * A table for the `flock` and POSIX locks on the chain's files that every machine
   * mounting the chain sees (PostgreSQL). Without it a mount's locks are kept by the
   * process serving it, for that machine alone.
   */
  locks?(chainId: Uint8Array, logger?: Logger): LockTable
  /**
   * The write lease of a chain that several nodes write at once (PostgreSQL with
   * `sharedWriters`): `lock` then takes a lock shared by those writers, and each commit
   * and namespace change holds the lease (see shared-writing.ts). Absent: one writer.
   */
  lease?(chainId: Uint8Array, logger: Logger): WriteLease
}

/** An open log of a {@link ChainBackend}. */
export interface ChainLog extends LogReader {
  /** The log file's descriptor, when it is one: the chunk worker then reads sealed chunks itself. */
  readonly fd?: number
  /**
   * Reads like `read`, synchronously: present only where that waits for a disk at most (a log
   * file on a local filesystem, see {@link readsWaitOnlyForDisk}). A small chunk is read
   * so in 6 µs where a thread's round trip costs 40 to 180.
   */
  readSync?(buffer: Buffer, offset: number, length: number, position: number): number
  /** The log's size in bytes now, including blocks other processes appended since the last look. */
  size(): Promise<number>
  /** Appends the frame of block `seq` (`head` + `body`) at offset `at`; resolves once it is durable, and only if the store still holds this log. */
  append(head: Buffer, body: Buffer, at: number, seq: number): Promise<void>
  /** Cuts the log at `at` (a torn tail) durably. */
  truncate(at: number): Promise<void>
  /** True when the store now holds another log than the one open (a compaction renamed a new log over it). */
  replaced?(): Promise<boolean>
  /**
   * The lowest seq the store held at the last {@link size} (a store compacted in place,
   * PostgreSQL): above the chain's base seq, a compaction deleted the rows this log indexed,
   * and the log must be {@link reindex}ed and the chain rebuilt from the new rows.
   */
  readonly firstSeq?: number | undefined
  /** Forgets the rows indexed so far and indexes the rows the store holds now, from the file header on. */
  reindex?(): Promise<void>
  /**
   * Compacts the store in place, in one transaction: adds the frames of the compacted
   * blocks (seq `firstSeq` on, `firstSeq` being the old head + 1) and deletes every row
   * below them, then announces it; a failure leaves the old rows whole. The log is then
   * indexed afresh (the new rows from the file header on).
   */
  compactInPlace?(frames: Buffer[], firstSeq: number): Promise<void>
  /** Calls `onChange` when another process may have appended blocks; returns the stop. */
  watch(onChange: () => void): () => Promise<void>
  /** Filesystem figures for the store. */
  statfs(): Promise<StatFs>
  /** Closes the log. */
  close(): Promise<void>
}

/** The file backend: one log file at `path`, a `<path>.lock` writer lock, chokidar for followers. */
export function fileBackend(path: string): ChainBackend {
  return {
    kind: 'file',
    name: path,
    trustKey: resolve(path),
    tornTails: true,
    exists: () => exists(path),
    async create({ body }) {
      const fh = await fsOpen(path, 'wx', 0o600)
      try {
        await fh.write(Buffer.concat([fileHeader(), frame(body)]), 0, undefined, 0)
        await fh.sync()
      } finally {
        await fh.close()
      }
      await fsyncDir(path)
    },
    lock: () => lockLog(path),
    async open(readOnly) {
      return fileLog(await fsOpen(path, readOnly ? 'r' : 'r+'), path)
    },
  }
}

/** Wraps an open log file as a {@link ChainLog}. */
export function fileLog(fh: FileHandle, path: string): ChainLog & { readonly fh: FileHandle } {
  // a writer that appended to a log moved away or replaced under it would ack blocks nobody reads again
  const stillHere = async (seq: number): Promise<void> => {
    const [open, now] = await Promise.all([fh.stat(), stat(path).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)))])
    if (!now) throw new LogReplacedError(`the log ${path} was moved or deleted while open for writing; block ${seq} is not acknowledged and nothing more is written (reopen the chain)`)
    if (open.ino !== now.ino || open.dev !== now.dev) throw new LogReplacedError(`the log ${path} was replaced by another file while open for writing; block ${seq} is not acknowledged and nothing more is written (reopen the chain)`)
  }
  const fd = fh.fd
  return {
    fh,
    fd,
    read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
    ...(readsWaitOnlyForDisk(fd) ? { readSync: (buffer: Buffer, offset: number, length: number, position: number) => readSync(fd, buffer, offset, length, position) } : {}),
    async size() {
      return (await fh.stat()).size
    },
    async append(head, body, at, seq) {
      await stillHere(seq)
      const bodyPos = at + FRAME_HEADER_BYTES
      const { bytesWritten } = await fh.writev([head, body], at)
      for (let done = bytesWritten - FRAME_HEADER_BYTES; done < body.length; ) {
        if (done < 0) throw new Error(`short write of the frame header of block ${seq}`)
        const { bytesWritten: n } = await fh.write(body, done, body.length - done, bodyPos + done)
        if (n <= 0) throw new Error(`could not write block ${seq}`)
        done += n
      }
      await fh.datasync()
      await stillHere(seq)
    },
    async truncate(at) {
      await fh.truncate(at)
      await fh.sync()
    },
    async replaced() {
      try {
        const [open, now] = await Promise.all([fh.stat(), stat(path)])
        return open.ino !== now.ino || open.dev !== now.dev
      } catch {
        // gone for a moment (between unlink and rename): look again on the next event
        return false
      }
    },
    watch(onChange) {
      const watcher = watch(path, { persistent: false, awaitWriteFinish: false })
      watcher.on('change', onChange)
      // a log renamed over the watched one (compaction) may show up as a new file
      watcher.on('add', onChange)
      return () => watcher.close()
    },
    async statfs() {
      const s = await fsStatfs(dirname(path))
      return { bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, namemax: 255 }
    },
    close: () => fh.close(),
  }
}
