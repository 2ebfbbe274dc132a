import { createHash } from 'node:crypto'
import { lstat, readdir, readlink, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileChunks } from './files.ts'
import { MANIFEST_FORMAT, treeDigest, type ManifestEntry } from './manifest.ts'
import type { DatasetStore } from './store.ts'
import { checkDatasetName, checkTagName } from './tags.ts'

/** The file a pulled folder keeps at its root to know what it holds; never pushed. */
export const STATE_FILE = '.facet-dataset'

/** A part of a pushed folder that cannot go into a version: named, with why. */
export interface PushProblem {
  path: string
  reason: string
}

/** Thrown when a push meets problems and was not told to skip them; no version was made. */
export class PushError extends Error {
  override readonly name = 'PushError'
  constructor(readonly problems: PushProblem[]) {
    super(`cannot push: ${problems.map(p => `${p.path}: ${p.reason}`).join('; ')}${problems.length > 1 ? '' : ''} (--skip-errors leaves them out)`)
  }
}

/** Options for {@link push}. */
export interface PushOptions {
  /** Leave out unreadable files, special files and looping symlinks instead of failing. @default false */
  skipErrors?: boolean
  /** Called as bytes are read. */
  progress?: (bytesDone: number, bytesTotal: number) => void
  /** Chunk writes in flight at once (they share one signed block). @default 32 */
  concurrency?: number
}

/** What a push made. */
export interface PushReport {
  version: string
  files: number
  bytes: number
  /** Bytes of chunks the store did not have. */
  bytesNew: number
  /** Bytes of chunks it already had. */
  bytesReused: number
  chunksNew: number
  chunksReused: number
  skipped: PushProblem[]
}

interface Found {
  entries: ManifestEntry[]
  sizes: number
  problems: PushProblem[]
}

/** Lists `root` as manifest entries (without chunks yet), noting what cannot be pushed. */
export async function walk(root: string): Promise<Found> {
  const found: Found = { entries: [], sizes: 0, problems: [] }
  const visit = async (rel: string): Promise<void> => {
    let names: string[]
    try {
      names = await readdir(join(root, rel))
    } catch (err) {
      found.problems.push({ path: rel || '.', reason: `cannot read folder (${(err as NodeJS.ErrnoException).code})` })
      return
    }
    for (const name of names.sort()) {
      if (rel === '' && name === STATE_FILE) continue
      const path = rel ? `${rel}/${name}` : name
      const full = join(root, path)
      const st = await lstat(full)
      const base = { path, mode: st.mode & 0o7777, mtimeMs: Math.floor(st.mtimeMs) }
      if (st.isDirectory()) {
        found.entries.push({ ...base, kind: 'dir', size: 0 })
        await visit(path)
      } else if (st.isFile()) {
        found.entries.push({ ...base, kind: 'file', size: st.size })
        found.sizes += st.size
      } else if (st.isSymbolicLink()) {
        const target = await readlink(full)
        try {
          await stat(full)
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code
          if (code === 'ELOOP') {
            found.problems.push({ path, reason: `symlink loop (-> ${target})` })
            continue
          }
        }
        found.entries.push({ ...base, kind: 'symlink', size: Buffer.byteLength(target), target })
      } else {
        const what = st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'character device' : 'block device'
        found.problems.push({ path, reason: `special file (${what}) cannot be pushed` })
      }
    }
  }
  await visit('')
  return found
}

/**
 * Pushes folder `dir` as a new version of `dataset` and points `tag` at it: every file is
 * cut into content-defined chunks, only chunks the store lacks are written, and the
 * signed manifest and the tag are written last, so a push that fails or is killed leaves
 * no version (only chunks nothing reaches, which gc frees).
 */
export async function push(store: DatasetStore, dir: string, dataset: string, tag: string, options: PushOptions = {}): Promise<PushReport> {
  checkDatasetName(dataset)
  checkTagName(tag)
  const root = await realpath(dir)
  const found = await walk(root)
  const problems = found.problems
  if (problems.length > 0 && !options.skipErrors) throw new PushError(problems)
  const report: PushReport = { version: '', files: 0, bytes: 0, bytesNew: 0, bytesReused: 0, chunksNew: 0, chunksReused: 0, skipped: problems }
  const limit = options.concurrency ?? 32
  const inFlight = new Set<Promise<void>>()
  let failure: unknown
  const entries: ManifestEntry[] = []
  let done = 0
  for (const e of found.entries) {
    if (e.kind !== 'file') {
      entries.push(e)
      continue
    }
    const hash = createHash('sha256')
    const chunks: [string, number][] = []
    let size = 0
    try {
      for await (const chunk of fileChunks(join(root, e.path), store.chunker)) {
        if (failure) throw failure
        hash.update(chunk)
        const id = store.chunks.sealer.id(chunk).toString('hex')
        chunks.push([id, chunk.length])
        size += chunk.length
        done += chunk.length
        const p: Promise<void> = store.chunks.put(id, chunk).then(
          isNew => {
            if (isNew) (report.chunksNew++, (report.bytesNew += chunk.length))
            else (report.chunksReused++, (report.bytesReused += chunk.length))
            inFlight.delete(p)
          },
          err => {
            failure ??= err
            inFlight.delete(p)
          },
        )
        inFlight.add(p)
        if (inFlight.size >= limit) await Promise.race(inFlight)
        options.progress?.(done, found.sizes)
      }
    } catch (err) {
      if (err === failure) throw err
      const problem = { path: e.path, reason: `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` }
      if (!options.skipErrors) {
        await Promise.allSettled(inFlight)
        throw new PushError([problem])
      }
      problems.push(problem)
      continue
    }
    entries.push({ ...e, size, chunks, sha256: hash.digest('hex') })
    report.files++
    report.bytes += size
  }
  await Promise.allSettled(inFlight)
  if (failure) throw failure
  // chunks first: the manifest must never reach the log before the chunks it lists
  await store.sync()
  report.version = await store.writeVersion({ format: MANIFEST_FORMAT, dataset, created: new Date().toISOString(), entries, digest: treeDigest(entries) })
  await store.moveTag(dataset, tag, report.version)
  await store.sync()
  return report
}
