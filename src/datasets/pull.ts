import { createHash } from 'node:crypto'
import { chmod, lstat, mkdir, open, readFile, rename, rm, symlink, utimes, writeFile, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { fileChunks } from './files.ts'
import type { Manifest, ManifestEntry } from './manifest.ts'
import { STATE_FILE, walk } from './push.ts'
import type { DatasetStore } from './store.ts'

/** What a pulled folder remembers in its {@link STATE_FILE}. */
export interface PullState {
  dataset: string
  tag: string
  version: string
  /** Size and mtime of every file as pulled: a file that differs was edited here. */
  files: Record<string, { size: number; mtimeMs: number }>
}

/** Thrown when a pull would overwrite what was changed in the folder; `--force` overrides. */
export class PullRefusedError extends Error {
  override readonly name = 'PullRefusedError'
}

/** Thrown when pulled content does not match its manifest. */
export class DigestError extends Error {
  override readonly name = 'DigestError'
}

/** Options for {@link pull}. */
export interface PullOptions {
  /** Replace the folder even when it has local edits or was not pulled here. @default false */
  force?: boolean
  /** Called as bytes are written. */
  progress?: (bytesDone: number, bytesTotal: number) => void
  /** Chunk reads from the store in flight at once. @default 16 */
  concurrency?: number
}

/** What a pull did. */
export interface PullReport {
  version: string
  files: number
  bytes: number
  /** Chunks read from the store (the folder lacked them). */
  chunksFetched: number
  bytesFetched: number
  /** Chunks copied from the folder's old files. */
  chunksLocal: number
  bytesLocal: number
}

interface LocalChunk {
  path: string
  offset: number
  length: number
}

/** The sibling folders a pull stages in: the new tree while it is written, the old one while it is swapped out. */
export function stagingOf(dir: string): { fresh: string; old: string } {
  const target = resolve(dir)
  const base = basename(target)
  return { fresh: join(dirname(target), `.${base}.facet-new`), old: join(dirname(target), `.${base}.facet-old`) }
}

/**
 * Finishes or undoes a pull into `dir` that a crash cut short: a whole staged tree
 * (its state file is written last) replaces a missing folder, an old tree comes back
 * when nothing replaced it, and leftovers go. Returns what it did, or undefined.
 */
export async function recoverPull(dir: string): Promise<string | undefined> {
  const target = resolve(dir)
  const { fresh, old } = stagingOf(target)
  const [hasTarget, hasFresh, hasOld] = await Promise.all([exists(target), exists(fresh), exists(old)])
  if (!hasTarget && hasFresh && (await exists(join(fresh, STATE_FILE)))) {
    await rename(fresh, target)
    if (hasOld) await rm(old, { recursive: true, force: true })
    return 'finished an interrupted pull'
  }
  if (!hasTarget && hasOld) {
    await rename(old, target)
    if (hasFresh) await rm(fresh, { recursive: true, force: true })
    return 'restored the folder an interrupted pull had moved aside'
  }
  if (hasFresh) await rm(fresh, { recursive: true, force: true })
  if (hasOld) await rm(old, { recursive: true, force: true })
  return hasFresh || hasOld ? 'removed what an interrupted pull left' : undefined
}

/**
 * Writes version `dataset:tag` to folder `dir`, reading from the store only the chunks
 * `dir` does not already hold, checking every file's size and SHA-256, and swapping the
 * new tree in whole: a crash leaves the old tree or the new one (a next pull, or
 * {@link recoverPull}, finishes the swap if it was cut between its two renames).
 */
export async function pull(store: DatasetStore, dataset: string, tag: string, dir: string, options: PullOptions = {}): Promise<PullReport> {
  const target = resolve(dir)
  await recoverPull(target)
  const { id, manifest } = await store.resolve(dataset, tag)
  const release = store.pin(id, manifest)
  try {
    return await pullVersion(store, dataset, tag, target, id, manifest, options)
  } finally {
    release()
  }
}

async function pullVersion(store: DatasetStore, dataset: string, tag: string, target: string, id: string, manifest: Manifest, options: PullOptions): Promise<PullReport> {
  const { fresh, old } = stagingOf(target)
  const local = (await exists(target)) ? await localChunks(store, target, options.force === true) : new Map<string, LocalChunk>()
  const report: PullReport = { version: id, files: 0, bytes: 0, chunksFetched: 0, bytesFetched: 0, chunksLocal: 0, bytesLocal: 0 }
  const total = manifest.entries.reduce((n, e) => n + (e.kind === 'file' ? e.size : 0), 0)
  await mkdir(fresh, { recursive: true })
  const state: PullState = { dataset, tag, version: id, files: {} }
  const handles = new Map<string, Promise<FileHandle>>()
  const window = options.concurrency ?? 16
  let done = 0
  try {
    for (const e of manifest.entries) {
      const at = join(fresh, e.path)
      if (e.kind === 'dir') await mkdir(at)
      else if (e.kind === 'symlink') await symlink(e.target ?? '', at)
      else {
        await writeEntry(e, at)
        await chmod(at, e.mode)
        await utimes(at, e.mtimeMs / 1000, e.mtimeMs / 1000)
        const st = await lstat(at)
        state.files[e.path] = { size: st.size, mtimeMs: Math.floor(st.mtimeMs) }
        report.files++
        report.bytes += e.size
      }
    }
    for (const e of [...manifest.entries].reverse()) if (e.kind === 'dir') await chmod(join(fresh, e.path), e.mode)
  } finally {
    for (const fh of handles.values()) await (await fh.catch(() => undefined))?.close()
  }
  // the state file last: its presence marks the staged tree whole
  await writeFile(join(fresh, STATE_FILE), JSON.stringify(state))
  await fsyncPath(join(fresh, STATE_FILE))
  await fsyncPath(fresh)
  if (await exists(target)) {
    await rename(target, old)
    await rename(fresh, target)
    await rm(old, { recursive: true, force: true })
  } else {
    await rename(fresh, target)
  }
  await fsyncPath(dirname(target))
  return report

  async function writeEntry(e: ManifestEntry, at: string): Promise<void> {
    const chunks = e.chunks ?? []
    const out = await open(at, 'wx', 0o600)
    try {
      const hash = createHash('sha256')
      const reads: Promise<Buffer>[] = []
      const start = (i: number) => {
        if (i < chunks.length && !reads[i]) reads[i] = chunkBytes(chunks[i]![0], chunks[i]![1])
      }
      let offset = 0
      for (let i = 0; i < chunks.length; i++) {
        for (let j = i; j < i + window; j++) start(j)
        const bytes = await reads[i]!
        delete reads[i]
        hash.update(bytes)
        await out.write(bytes, 0, bytes.length, offset)
        offset += bytes.length
        done += bytes.length
        options.progress?.(done, total)
      }
      if (offset !== e.size || hash.digest('hex') !== e.sha256) throw new DigestError(`${e.path}: pulled content does not match version ${id.slice(0, 12)} (size or SHA-256)`)
      await out.sync()
    } finally {
      await out.close()
    }
  }

  async function chunkBytes(chunkId: string, length: number): Promise<Buffer> {
    const l = local.get(chunkId)
    if (l && l.length === length) {
      let opening = handles.get(l.path)
      if (!opening) handles.set(l.path, (opening = open(join(target, l.path), 'r')))
      const fh = await opening
      const buf = Buffer.allocUnsafe(length)
      const { bytesRead } = await fh.read(buf, 0, length, l.offset)
      if (bytesRead === length && store.chunks.sealer.id(buf).toString('hex') === chunkId) {
        report.chunksLocal++
        report.bytesLocal += length
        return buf
      }
    }
    const bytes = await store.chunks.get(chunkId)
    if (bytes.length !== length) throw new DigestError(`chunk ${chunkId.slice(0, 12)} has ${bytes.length} bytes, the manifest says ${length}`)
    report.chunksFetched++
    report.bytesFetched += length
    return bytes
  }
}

/**
 * Indexes the chunks folder `dir` already holds. Files unchanged since the last pull are
 * taken from that version's manifest; others are cut and hashed anew. Refuses (unless
 * `force`) a folder with local edits, or a non-empty one no pull made.
 */
async function localChunks(store: DatasetStore, dir: string, force: boolean): Promise<Map<string, LocalChunk>> {
  const index = new Map<string, LocalChunk>()
  const st = await lstat(dir)
  if (!st.isDirectory()) throw new PullRefusedError(`${dir} is not a folder`)
  let state: PullState | undefined
  try {
    state = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as PullState
  } catch {
    state = undefined
  }
  const found = await walk(dir)
  let previous: Manifest | undefined
  if (state) previous = await store.version(state.dataset, state.version).catch(() => undefined)
  if (!state && found.entries.length > 0 && !force) throw new PullRefusedError(`${dir} holds files no pull put there: --force replaces them`)
  const edits: string[] = []
  const before = new Map((previous?.entries ?? []).map(e => [e.path, e]))
  const now = new Set<string>()
  for (const e of found.entries) {
    now.add(e.path)
    const was = before.get(e.path)
    const pulled = state?.files[e.path]
    if (!was || was.kind !== e.kind) edits.push(`${e.path} added`)
    else if (e.kind === 'file' && (!pulled || pulled.size !== e.size || pulled.mtimeMs !== e.mtimeMs)) edits.push(`${e.path} changed`)
    else if (e.kind === 'symlink' && was.target !== e.target) edits.push(`${e.path} changed`)
    if (e.kind !== 'file') continue
    if (was?.chunks && pulled && pulled.size === e.size && pulled.mtimeMs === e.mtimeMs) {
      let offset = 0
      for (const [c, n] of was.chunks) {
        index.set(c, { path: e.path, offset, length: n })
        offset += n
      }
    } else if (force) {
      let offset = 0
      for await (const chunk of fileChunks(join(dir, e.path), store.chunker)) {
        index.set(store.chunks.sealer.id(chunk).toString('hex'), { path: e.path, offset, length: chunk.length })
        offset += chunk.length
      }
    }
  }
  for (const p of before.keys()) if (!now.has(p)) edits.push(`${p} removed`)
  if (state && !previous && !force) throw new PullRefusedError(`${dir} was pulled from a version the store no longer has: --force replaces it`)
  if (edits.length > 0 && !force) {
    const shown = edits.slice(0, 5).join(', ') + (edits.length > 5 ? `, and ${edits.length - 5} more` : '')
    throw new PullRefusedError(`${dir} has local edits (${shown}): --force discards them`)
  }
  return index
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch {
    return false
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
