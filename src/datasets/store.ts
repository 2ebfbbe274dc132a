import { randomBytes } from '../crypto/primitives.ts'
import type { Identity } from '../crypto/identity.ts'
import { isVfsError } from '../vfs/errors.ts'
import type { Vfs } from '../vfs/vfs.ts'
import { createChunker, DEFAULT_CDC, type CdcOptions, type Chunker } from './cdc.ts'
import { ChunkSealer, ChunkStore, listNames, TEMP_PREFIX } from './chunk-store.ts'
import { openManifest, signManifest, type Manifest, type SignedManifest } from './manifest.ts'
import { Pins } from './pins.ts'
import { checkDatasetName, checkTagName, currentVersion, type TagRecord } from './tags.ts'

/** The format string of a store's `store.json`. */
export const STORE_FORMAT = 'facet-datasets/1'

interface StoreFile {
  format: typeof STORE_FORMAT
  /** The store secret (base64): chunk ids and keys derive from it. */
  secret: string
  /** Chunk sizes every push of this store cuts with. */
  cdc: Required<CdcOptions>
}

/** Options for {@link DatasetStore.open}. */
export interface DatasetStoreOptions {
  /** Signs manifests and names who moved a tag; needed to change the store. */
  identity?: Identity
  /** Make the store (a fresh secret) when the folder holds none. @default false */
  create?: boolean
  /** Chunk sizes of a new store. @default DEFAULT_CDC */
  cdc?: CdcOptions
}

/** Thrown when a dataset, tag or version does not exist. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError'
}

/** What {@link DatasetStore.gc} freed. */
export interface GcReport {
  chunks: number
  bytes: number
  versions: number
  temps: number
  /** Versions no tag points at that were kept: open in this process, or left by a tag within the grace period. */
  kept: number
}

/** The default of {@link GcOptions.graceMs}: one hour. */
export const GC_GRACE_MS = 60 * 60 * 1000

/** Options for {@link DatasetStore.gc}. */
export interface GcOptions {
  /**
   * How long a version stays after the last tag left it (or, never tagged, after its
   * push), so readers in other processes (a mount, a pull) that opened it before finish
   * reading. Readers in this process keep what they opened however long they take.
   * @default GC_GRACE_MS
   */
  graceMs?: number
  /** The time gc takes as now (ms since the epoch). @default Date.now() */
  now?: number
}

/**
 * Datasets kept in a folder of a {@link Vfs}, usually a chain's tree (so every byte is also
 * sealed and every change signed by the chain):
 *
 * - `store.json`: the store secret and chunk sizes;
 * - `chunks/<xx>/<id>`: content-defined chunks, once each, convergently encrypted (see {@link ChunkSealer});
 * - `versions/<dataset>/<id>.json`: immutable signed manifests, named by their hash;
 * - `tags/<dataset>/<tag>.json`: where a tag points, with every earlier move.
 *
 * Every file is written under a temp name and renamed, so a crash leaves none half written.
 */
export class DatasetStore {
  readonly chunks: ChunkStore
  readonly chunker: Chunker
  private readonly manifests = new Map<string, Manifest>()
  private readonly pins = new Pins()
  private tempSeq = 0

  private constructor(
    readonly vfs: Vfs,
    readonly base: string,
    file: StoreFile,
    readonly identity: Identity | undefined,
  ) {
    this.chunks = new ChunkStore(vfs, `${base}/chunks`, new ChunkSealer(Buffer.from(file.secret, 'base64')))
    this.chunker = createChunker(file.cdc)
  }

  /** Opens the store in folder `base` of `vfs` (making it when `create` is set and none is there). */
  static async open(vfs: Vfs, base: string, options: DatasetStoreOptions = {}): Promise<DatasetStore> {
    let file: StoreFile
    try {
      file = JSON.parse((await vfs.readFile(`${base}/store.json`)).toString()) as StoreFile
      if (file.format !== STORE_FORMAT) throw new Error(`${base}/store.json: unknown format ${String(file.format)}`)
    } catch (err) {
      if (!isVfsError(err, 'ENOENT') || !options.create) throw err
      file = { format: STORE_FORMAT, secret: randomBytes(32).toString('base64'), cdc: { ...DEFAULT_CDC, ...options.cdc } }
      for (const d of ['chunks', 'versions', 'tags']) await mkdirp(vfs, `${base}/${d}`)
      const store = new DatasetStore(vfs, base, file, options.identity)
      await store.writeAtomic(`${base}/store.json`, JSON.stringify(file))
      await store.sync()
      return store
    }
    return new DatasetStore(vfs, base, file, options.identity)
  }

  /** Names of the datasets that have (or had) tags. */
  async datasets(): Promise<string[]> {
    return (await listNames(this.vfs, `${this.base}/tags`)).filter(n => !n.startsWith(TEMP_PREFIX)).sort()
  }

  /** Every tag of `dataset`, removed ones too, by name. */
  async tags(dataset: string): Promise<TagRecord[]> {
    const names = (await listNames(this.vfs, `${this.base}/tags/${checkDatasetName(dataset)}`)).filter(n => n.endsWith('.json') && !n.startsWith(TEMP_PREFIX))
    const out: TagRecord[] = []
    for (const n of names.sort()) {
      const r = await this.tag(dataset, n.slice(0, -5))
      if (r) out.push(r)
    }
    return out
  }

  /** The record of one tag, or undefined when it never existed. */
  async tag(dataset: string, tag: string): Promise<TagRecord | undefined> {
    try {
      return JSON.parse((await this.vfs.readFile(this.tagPath(dataset, tag))).toString()) as TagRecord
    } catch (err) {
      if (isVfsError(err, 'ENOENT') || isVfsError(err, 'ENOTDIR')) return undefined
      throw err
    }
  }

  /** The version `dataset:tag` points at now; throws {@link NotFoundError} when none. */
  async resolve(dataset: string, tag: string): Promise<{ id: string; manifest: Manifest }> {
    const record = await this.tag(dataset, tag)
    const id = record && currentVersion(record)
    if (!id) throw new NotFoundError(`no tag ${dataset}:${tag}`)
    return { id, manifest: await this.version(dataset, id) }
  }

  /** Reads and checks (hash, signature, digest) version `id` of `dataset`. */
  async version(dataset: string, id: string): Promise<Manifest> {
    const cached = this.manifests.get(id)
    if (cached) return cached
    let record: SignedManifest
    try {
      record = JSON.parse((await this.vfs.readFile(this.versionPath(dataset, id))).toString()) as SignedManifest
    } catch (err) {
      if (isVfsError(err, 'ENOENT')) throw new NotFoundError(`no version ${id.slice(0, 12)} of ${dataset}`)
      throw err
    }
    const m = openManifest(id, record)
    this.manifests.set(id, m)
    return m
  }

  /** Ids of every stored version of `dataset`. */
  async versions(dataset: string): Promise<string[]> {
    return (await listNames(this.vfs, `${this.base}/versions/${checkDatasetName(dataset)}`)).filter(n => n.endsWith('.json') && !n.startsWith(TEMP_PREFIX)).map(n => n.slice(0, -5))
  }

  /** Signs and stores `manifest`; returns its id (the same id for the same manifest). */
  async writeVersion(manifest: Manifest): Promise<string> {
    const identity = this.needIdentity()
    const { id, record } = signManifest(manifest, identity)
    await mkdirp(this.vfs, `${this.base}/versions/${checkDatasetName(manifest.dataset)}`)
    await this.writeAtomic(this.versionPath(manifest.dataset, id), JSON.stringify(record))
    this.manifests.set(id, manifest)
    return id
  }

  /** Points `dataset:tag` at `version` (or removes it, `null`), keeping the tag's history. */
  async moveTag(dataset: string, tag: string, version: string | null): Promise<TagRecord> {
    const identity = this.needIdentity()
    checkTagName(tag)
    if (version !== null) await this.version(dataset, version)
    const record = (await this.tag(dataset, tag)) ?? { dataset, tag, history: [] }
    if (version === null && !currentVersion(record)) throw new NotFoundError(`no tag ${dataset}:${tag}`)
    if (currentVersion(record) === version) return record
    record.history.push({ version, time: new Date().toISOString(), by: identity.name })
    await mkdirp(this.vfs, `${this.base}/tags/${dataset}`)
    await this.writeAtomic(this.tagPath(dataset, tag), JSON.stringify(record))
    return record
  }

  /**
   * Keeps version `id` (with `manifest`, as read) and its chunks from gc until the returned
   * function is called: readers call it when they open a version and again when done.
   */
  pin(id: string, manifest: Manifest): () => void {
    return this.pins.pin(id, manifest)
  }

  /**
   * Frees what no reader can reach: versions that no tag points at, no reader of this
   * process has open, and that no tag left within `graceMs`; then chunks that no kept
   * version lists; and temp files a crashed writer left.
   */
  async gc(progress?: (done: number, total: number) => void, options: GcOptions = {}): Promise<GcReport> {
    this.needIdentity()
    const graceMs = options.graceMs ?? GC_GRACE_MS
    const now = options.now ?? Date.now()
    const live = new Set<string>()
    const report: GcReport = { chunks: 0, bytes: 0, versions: 0, temps: 0, kept: 0 }
    for (const dataset of await this.datasets()) {
      const pointed = new Set<string>()
      const left = new Map<string, number>()
      for (const t of await this.tags(dataset)) {
        const v = currentVersion(t)
        if (v) pointed.add(v)
        t.history.forEach((move, i) => {
          const next = t.history[i + 1]
          if (move.version && next) left.set(move.version, Math.max(left.get(move.version) ?? 0, Date.parse(next.time)))
        })
      }
      for (const id of await this.versions(dataset)) {
        if (!pointed.has(id) && !this.pins.hasVersion(id)) {
          const since = left.get(id) ?? Date.parse((await this.version(dataset, id)).created)
          if (!(now - since < graceMs)) {
            await this.vfs.unlink(this.versionPath(dataset, id))
            this.manifests.delete(id)
            report.versions++
            continue
          }
        }
        if (!pointed.has(id)) report.kept++
        for (const e of (await this.version(dataset, id)).entries) for (const [c] of e.chunks ?? []) live.add(c)
      }
    }
    this.chunks.refresh()
    const all = [...(await this.chunks.list())]
    let done = 0
    for (const id of all) {
      // a reader may have opened a version since the versions were listed
      if (!live.has(id) && !this.pins.hasChunk(id)) {
        report.bytes += await this.chunks.storedSize(id)
        await this.chunks.remove(id)
        report.chunks++
      }
      progress?.(++done, all.length)
    }
    report.temps = await this.chunks.removeTemps()
    await this.sync()
    return report
  }

  /** Makes every change so far durable (one signed chain block). */
  async sync(): Promise<void> {
    await this.vfs.fsyncdir(this.base)
  }

  /** Writes `data` to `path` under a temp name in the same folder, then renames it over `path`. */
  async writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
    const dir = path.slice(0, path.lastIndexOf('/'))
    const tmp = `${dir}/${TEMP_PREFIX}${process.pid}-m${this.tempSeq++}`
    await this.vfs.writeFile(tmp, data)
    await this.vfs.rename(tmp, path)
  }

  private versionPath(dataset: string, id: string): string {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new NotFoundError(`no version ${id} of ${dataset}`)
    return `${this.base}/versions/${checkDatasetName(dataset)}/${id}.json`
  }

  private tagPath(dataset: string, tag: string): string {
    return `${this.base}/tags/${checkDatasetName(dataset)}/${checkTagName(tag)}.json`
  }

  private needIdentity(): Identity {
    if (!this.identity) throw new Error('the dataset store is open read-only: changing it needs an identity')
    return this.identity
  }
}

async function mkdirp(vfs: Vfs, path: string): Promise<void> {
  let at = ''
  for (const part of path.split('/').filter(Boolean)) {
    at += '/' + part
    await vfs.mkdir(at, 0o700).catch(err => {
      if (!isVfsError(err, 'EEXIST')) throw err
    })
  }
}
