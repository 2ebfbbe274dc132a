import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto'
import { hkdf, KEY_BYTES, IV_BYTES, TAG_BYTES, equalBytes } from '../crypto/primitives.ts'
import { isVfsError } from '../vfs/errors.ts'
import type { Vfs } from '../vfs/vfs.ts'

const ID_INFO = 'facet-dataset-chunk-id/1'
const KEY_INFO = 'facet-dataset-chunk-key/1'
const AAD = Buffer.from('facet-dataset-chunk/1')

/** Names a temp file while it is written: readers and listings skip these, gc removes them. */
export const TEMP_PREFIX = '.tmp-'

/** Thrown when a stored chunk does not decrypt or does not hash to its id. */
export class ChunkIntegrityError extends Error {
  override readonly name = 'ChunkIntegrityError'
}

/**
 * Convergent encryption of chunks under a store secret: a chunk's id is
 * HMAC-SHA256(secret, content), its key and nonce are derived from the secret and that id,
 * so equal content seals to equal bytes under one store (and is stored once), while
 * whoever lacks the secret learns neither the content nor its plain hash.
 */
export class ChunkSealer {
  constructor(private readonly secret: Uint8Array) {}

  /** The chunk's id: HMAC-SHA256(secret, content), 32 bytes. */
  id(plain: Uint8Array): Buffer {
    return createHmac('sha256', this.secret).update(ID_INFO).update(plain).digest()
  }

  /** AES-256-GCM of `plain` under the key and nonce derived from its id: `ciphertext ‖ tag`. */
  seal(id: Uint8Array, plain: Uint8Array): Buffer {
    const { key, iv } = this.keyOf(id)
    const c = createCipheriv('aes-256-gcm', key, iv)
    c.setAAD(Buffer.concat([AAD, id]))
    const out = Buffer.allocUnsafe(plain.length + TAG_BYTES)
    const n = c.update(plain).copy(out, 0)
    c.final()
    c.getAuthTag().copy(out, n)
    return out
  }

  /** Opens a sealed chunk and checks that it hashes to `id`; throws {@link ChunkIntegrityError} otherwise. */
  open(id: Uint8Array, sealed: Uint8Array): Buffer {
    if (sealed.length < TAG_BYTES) throw new ChunkIntegrityError(`chunk ${hex(id)} is cut short`)
    const { key, iv } = this.keyOf(id)
    const d = createDecipheriv('aes-256-gcm', key, iv)
    d.setAAD(Buffer.concat([AAD, id]))
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
    const plain = d.update(sealed.subarray(0, sealed.length - TAG_BYTES))
    try {
      d.final()
    } catch {
      throw new ChunkIntegrityError(`chunk ${hex(id)} does not decrypt: damaged or forged`)
    }
    if (!equalBytes(this.id(plain), id)) throw new ChunkIntegrityError(`chunk ${hex(id)} does not hash to its id`)
    return plain
  }

  private keyOf(id: Uint8Array): { key: Buffer; iv: Buffer } {
    const okm = hkdf(this.secret, id, KEY_INFO, KEY_BYTES + IV_BYTES)
    return { key: okm.subarray(0, KEY_BYTES), iv: okm.subarray(KEY_BYTES) }
  }
}

function hex(id: Uint8Array): string {
  return Buffer.from(id).toString('hex')
}

/**
 * Sealed chunks in a folder of a {@link Vfs} (a chain's tree), one file each at
 * `chunks/<first two hex digits>/<id hex>`, written under a temp name and renamed, so a
 * chunk file is whole or absent.
 */
export class ChunkStore {
  private ids: Promise<Set<string>> | undefined
  private readonly dirs = new Map<string, Promise<void>>()
  private tempSeq = 0

  constructor(
    private readonly vfs: Vfs,
    /** The folder holding the fan-out folders, e.g. `/chunks`. */
    readonly base: string,
    readonly sealer: ChunkSealer,
  ) {}

  /** Every stored chunk id (hex); listed once, then kept up to date by this store's own puts and removes. */
  list(): Promise<Set<string>> {
    this.ids ??= this.load()
    return this.ids
  }

  private async load(): Promise<Set<string>> {
    const ids = new Set<string>()
    for (const fan of await listNames(this.vfs, this.base)) {
      this.dirs.set(fan, Promise.resolve())
      for (const name of await listNames(this.vfs, `${this.base}/${fan}`)) if (!name.startsWith(TEMP_PREFIX)) ids.add(name)
    }
    return ids
  }

  /** Forgets the cached listing (after another process changed the store). */
  refresh(): void {
    this.ids = undefined
    this.dirs.clear()
  }

  async has(id: string): Promise<boolean> {
    return (await this.list()).has(id)
  }

  /** Stores `plain` under id `id` (from {@link ChunkSealer.id}) unless it is there; returns true when it was new. */
  async put(id: string, plain: Uint8Array): Promise<boolean> {
    const ids = await this.list()
    if (ids.has(id)) return false
    ids.add(id)
    try {
      const fan = id.slice(0, 2)
      let made = this.dirs.get(fan)
      if (!made) {
        made = this.vfs.mkdir(`${this.base}/${fan}`, 0o700).catch(err => {
          if (!isVfsError(err, 'EEXIST')) throw err
        })
        this.dirs.set(fan, made)
      }
      await made
      const tmp = `${this.base}/${fan}/${TEMP_PREFIX}${process.pid}-${this.tempSeq++}`
      await this.vfs.writeFile(tmp, this.sealer.seal(Buffer.from(id, 'hex'), plain))
      await this.vfs.rename(tmp, `${this.base}/${fan}/${id}`)
    } catch (err) {
      ids.delete(id)
      throw err
    }
    return true
  }

  /** Reads, decrypts and checks the chunk `id`. */
  async get(id: string): Promise<Buffer> {
    const sealed = await this.vfs.readFile(`${this.base}/${id.slice(0, 2)}/${id}`)
    return this.sealer.open(Buffer.from(id, 'hex'), sealed)
  }

  /** The stored (sealed) size of chunk `id`. */
  async storedSize(id: string): Promise<number> {
    return (await this.vfs.stat(`${this.base}/${id.slice(0, 2)}/${id}`)).size
  }

  /** Removes chunk `id`. */
  async remove(id: string): Promise<void> {
    await this.vfs.unlink(`${this.base}/${id.slice(0, 2)}/${id}`)
    const ids = await this.ids
    ids?.delete(id)
  }

  /** Removes temp files a crashed writer left; returns how many. */
  async removeTemps(): Promise<number> {
    let n = 0
    for (const fan of await listNames(this.vfs, this.base)) {
      for (const name of await listNames(this.vfs, `${this.base}/${fan}`)) {
        if (name.startsWith(TEMP_PREFIX)) {
          await this.vfs.unlink(`${this.base}/${fan}/${name}`)
          n++
        }
      }
    }
    return n
  }
}

/** Every name in folder `path` of `vfs`, or none when it does not exist. */
export async function listNames(vfs: Vfs, path: string): Promise<string[]> {
  const names: string[] = []
  let cursor: string | undefined
  try {
    do {
      const page = await vfs.readdir(path, cursor === undefined ? {} : { cursor })
      for (const e of page.entries) names.push(e.name)
      cursor = page.cursor
    } while (cursor !== undefined)
  } catch (err) {
    if (isVfsError(err, 'ENOENT')) return []
    throw err
  }
  return names
}

