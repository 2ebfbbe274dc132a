import { createHash } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fsyncDir } from './log.ts'

/** The last head of a chain seen on this machine. */
export interface TrustedHead {
  seq: number
  hash: string
}

/** The format tag of a pin file. */
export const PIN_FORMAT = 'facet-trust-pin/1'

/** What the trust store pins for one chain path: the chain that lives there and its owner. */
export interface ChainPin {
  /** The pinned location: the absolute path of a log file, or a store's location as its backend gives it (a PostgreSQL URL and table, see `postgresTrustKey`). */
  path: string
  /** The chain id, hex. */
  chainId: string
  /** The owner named by the genesis block: its name and key id (hex, over both public keys). */
  owner: { name: string; keyId: string }
  /** When the pin was first made (ISO time). */
  pinned: string
  /** When a user last accepted this chain with `facet trust accept` (ISO time). */
  accepted?: string | undefined
}

/** What a chain log says about itself, for the trust checks. */
export interface ChainFacts {
  /** Where it lives, as {@link trustKey} gives it. */
  key: string
  /** The key an older FacetFS pinned this location under, when it differs ({@link legacyTrustKey}); a pin found there counts and is moved to `key`. */
  legacyKey?: string | undefined
  chainId: Uint8Array
  ownerName: string
  ownerKeyId: Uint8Array
  /** The first and last seq the log holds (whole blocks only). */
  baseSeq: number
  headSeq: number
  hashAt(seq: number): Uint8Array | undefined
  /** A damaged last frame that was not cut (yet): where it starts, the seq it would have had, and why. */
  tornTail?: { offset: number; seq: number; reason: string } | undefined
  /** How many blocks after a fresh genesis the identity that opens the chain signed; undefined when no identity opens it (`facet verify`). */
  ownBlocks?: number | undefined
}

/** Thrown when a chain's log is older than, or diverges from, the head this machine has seen, or its last block was damaged after it was seen. */
export class RollbackError extends Error {
  override readonly name = 'RollbackError'
  constructor(
    message: string,
    /** The block the problem is at. */
    readonly seq: number,
    /** `rollback`: the log ends before the head seen; `fork`: the block at that seq differs; `damaged`: the last block, seen whole before, is now damaged. */
    readonly kind: 'rollback' | 'fork' | 'damaged' = 'rollback',
  ) {
    super(message)
  }
}

/**
 * Thrown when the chain at a path is not the one pinned for it (another chain id or
 * owner: `mismatch`), or when nothing is pinned for a chain that this identity has written
 * to (`lost`: the trust store was deleted, so a rollback could not be told). Only an
 * explicit `facet trust accept PATH` (`acceptChain` in verify.ts) lets it open.
 */
export class UntrustedChainError extends Error {
  override readonly name = 'UntrustedChainError'
  constructor(
    message: string,
    readonly reason: 'mismatch' | 'lost',
    /** The pin it was held against, when one exists. */
    readonly pin?: ChainPin | undefined,
  ) {
    super(message)
  }
}

/** Thrown when a trust store file cannot be read as what it should hold: FacetFS does not guess. */
export class TrustStoreError extends Error {
  override readonly name = 'TrustStoreError'
  constructor(
    /** The damaged file. */
    readonly file: string,
    why: string,
  ) {
    super(`the trust store file ${file} is damaged (${why}); FacetFS will not guess what it held: restore it, or remove it and run 'facet trust accept PATH' to trust the chain as it is now`)
  }
}

/** The trust store folder under `home`. */
export function trustDir(home: string): string {
  return join(home, 'trust')
}

/** The head record of a chain under `home`. */
export function trustPath(home: string, chainId: Uint8Array): string {
  return join(trustDir(home), `${hex(chainId)}.json`)
}

/** The pin file of chain location `key` under `home`. */
export function pinPath(home: string, key: string): string {
  return join(trustDir(home), 'paths', `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`)
}

/** The key a chain location is pinned under: the backend's own (the absolute log path of a file, a PostgreSQL store's URL and table), else its kind and name. */
export function trustKey(backend: { kind: string; name: string; trustKey?: string | undefined }): string {
  return backend.trustKey ?? `${backend.kind}:${backend.name}`
}

/**
 * The key FacetFS pinned a PostgreSQL chain under before pins named the store rather than
 * the chain (`postgres:postgres <table> chain <id>`), so that such a pin is still read;
 * undefined for other backends, whose keys did not change.
 */
export function legacyTrustKey(backend: { kind: string; name: string }): string | undefined {
  return backend.kind === 'postgres' ? `${backend.kind}:${backend.name}` : undefined
}

/** The `facet trust accept` command for location `key`, quoted for a shell when it needs to be. */
export function acceptCommand(key: string): string {
  return `facet trust accept ${/^[\w@%+=:,./-]+$/.test(key) ? key : `"${key}"`}`
}

/** Reads the trusted head of a chain, or `undefined` when this machine has never seen it; {@link TrustStoreError} when the record is damaged. */
export async function readTrust(home: string, chainId: Uint8Array): Promise<TrustedHead | undefined> {
  const file = trustPath(home, chainId)
  const t = await readJson(file)
  if (t === undefined) return undefined
  const o = t as Partial<TrustedHead> | null
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new TrustStoreError(file, 'not a JSON object')
  if (!Number.isSafeInteger(o.seq) || o.seq! < 0) throw new TrustStoreError(file, 'no valid seq')
  if (typeof o.hash !== 'string' || !/^[0-9a-f]{64}$/.test(o.hash)) throw new TrustStoreError(file, 'no valid hash')
  return { seq: o.seq!, hash: o.hash }
}

/** Records `head` as the trusted head of a chain, atomically (a temporary file, fsync'd, renamed over it, the folder fsync'd). */
export async function writeTrust(home: string, chainId: Uint8Array, head: TrustedHead): Promise<void> {
  await writeJsonAtomic(trustPath(home, chainId), { seq: head.seq, hash: head.hash, updated: new Date().toISOString() })
}

/** Reads the pin of chain location `key`, or `undefined` when none is kept; {@link TrustStoreError} when the file is damaged. */
export async function readPin(home: string, key: string): Promise<ChainPin | undefined> {
  const file = pinPath(home, key)
  const p = await readJson(file)
  if (p === undefined) return undefined
  const pin = checkPin(p, file)
  if (pin.path !== key) throw new TrustStoreError(file, `it pins ${pin.path}, not ${key}`)
  return pin
}

/** Records a pin, atomically. */
export async function writePin(home: string, pin: ChainPin): Promise<void> {
  await writeJsonAtomic(pinPath(home, pin.path), { format: PIN_FORMAT, ...pin })
}

/** Moves a pin found under an older key ({@link legacyTrustKey}) to `key`, keeping when it was pinned and accepted; returns the pin now kept. */
export async function movePin(home: string, pin: ChainPin, key: string): Promise<ChainPin> {
  const moved = { ...pin, path: key }
  await writePin(home, moved)
  await rm(pinPath(home, pin.path), { force: true })
  await fsyncDir(pinPath(home, pin.path))
  return moved
}

/** Every pin under `home`, by path; damaged pin files are returned as errors. */
export async function listPins(home: string): Promise<(ChainPin | TrustStoreError)[]> {
  const dir = join(trustDir(home), 'paths')
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const out: (ChainPin | TrustStoreError)[] = []
  for (const name of names.filter(n => n.endsWith('.json'))) {
    const file = join(dir, name)
    try {
      out.push(checkPin(await readJson(file), file))
    } catch (err) {
      if (err instanceof TrustStoreError) out.push(err)
      else throw err
    }
  }
  return out.sort((a, b) => ('path' in a ? a.path : a.file).localeCompare('path' in b ? b.path : b.file))
}

/** The pin of a chain as the log names it. */
export function pinOf(facts: Pick<ChainFacts, 'key' | 'chainId' | 'ownerName' | 'ownerKeyId'>, accepted = false): ChainPin {
  const now = new Date().toISOString()
  return { path: facts.key, chainId: hex(facts.chainId), owner: { name: facts.ownerName, keyId: hex(facts.ownerKeyId) }, pinned: now, ...(accepted ? { accepted: now } : {}) }
}

/** Describes a pinned or found chain for people: chain id and owner. */
export function describeChain(c: { chainId: string; owner: { name: string; keyId: string } }): string {
  return `chain ${c.chainId}, owner '${c.owner.name}' (key ${c.owner.keyId.slice(0, 16)})`
}

/** What {@link assessChain} found. */
export interface TrustAssessment {
  /** The pin kept for the location, if any (found under `legacyKey` when `legacy` is set). */
  pin: ChainPin | undefined
  /** True when the pin was found under the location's older key, to be moved with {@link movePin}. */
  legacy?: boolean | undefined
  /** The head last seen of this chain id, if any. */
  head: TrustedHead | undefined
  /** A refusal no override lifts but `facet trust accept` ({@link UntrustedChainError} of kind `mismatch`). */
  untrusted: UntrustedChainError | undefined
  /** A refusal `allowRollback` lifts: a rollback, fork or damaged last block, or a lost trust store. */
  rollback: RollbackError | UntrustedChainError | undefined
}

/**
 * Holds a verified log against the trust store: the pin of its location (chain id and
 * owner), and the last head seen of its chain id (rollback, fork, or a last block damaged
 * after it was seen). Reads only; {@link TrustStoreError} when a record is damaged.
 */
export async function assessChain(home: string, facts: ChainFacts): Promise<TrustAssessment> {
  let pin = await readPin(home, facts.key)
  let legacy: boolean | undefined
  if (!pin && facts.legacyKey !== undefined && facts.legacyKey !== facts.key) {
    pin = await readPin(home, facts.legacyKey)
    if (pin) legacy = true
  }
  const head = await readTrust(home, facts.chainId)
  const found = pinOf(facts)
  let untrusted: UntrustedChainError | undefined
  if (pin && (pin.chainId !== found.chainId || pin.owner.keyId !== found.owner.keyId)) {
    untrusted = new UntrustedChainError(
      `${facts.key} is not the chain pinned for it: pinned ${describeChain(pin)}; found ${describeChain(found)}. ` +
        `If you replaced it on purpose, run '${acceptCommand(facts.key)}'`,
      'mismatch',
      pin,
    )
  }
  let rollback: RollbackError | UntrustedChainError | undefined = checkTrust(head, facts)
  if (!rollback && !pin && !head && (facts.ownBlocks ?? 0) > 0) {
    rollback = new UntrustedChainError(
      `${facts.key} is pinned nowhere in ${trustDir(home)}, yet it holds ${facts.ownBlocks} block(s) signed by the identity opening it: ` +
        `the trust store was deleted or lost, so a rolled-back log could not be told apart. ` +
        `If the chain is as you expect, run '${acceptCommand(facts.key)}' (or open it with --allow-rollback)`,
      'lost',
    )
  }
  return { pin, head, untrusted, rollback, ...(legacy ? { legacy } : {}) }
}

/**
 * Checks a verified log against the trusted head: the log must reach at least the
 * trusted seq, and where it holds that seq the hash must match. A damaged last frame at or
 * before the trusted seq is reported as damage, not as a crash: a head is recorded only
 * once its block is on disk. Returns the problem, or `undefined` when the log continues what was seen.
 */
export function checkTrust(trusted: TrustedHead | undefined, log: Pick<ChainFacts, 'baseSeq' | 'headSeq' | 'hashAt' | 'tornTail'>): RollbackError | undefined {
  if (!trusted) return undefined
  const t = log.tornTail
  if (t && t.seq <= trusted.seq) {
    return new RollbackError(
      `chain damaged: its last block ${t.seq} (at byte ${t.offset}) is damaged (${t.reason}), yet this machine saw the log reach block ${trusted.seq} ` +
        `(hash ${trusted.hash.slice(0, 16)}), so this is not a write cut short by a crash; the log is left as it is`,
      t.seq,
      'damaged',
    )
  }
  if (log.headSeq < trusted.seq) {
    return new RollbackError(
      `chain rolled back: the log ends at block ${log.headSeq} but block ${trusted.seq} was seen before (hash ${trusted.hash.slice(0, 16)})`,
      log.headSeq + 1,
      'rollback',
    )
  }
  if (trusted.seq >= log.baseSeq) {
    const h = log.hashAt(trusted.seq)
    if (!h || hex(h) !== trusted.hash) {
      return new RollbackError(`chain forked: block ${trusted.seq} differs from the one seen before`, trusted.seq, 'fork')
    }
  }
  return undefined
}

function checkPin(value: unknown, file: string): ChainPin {
  const p = value as Partial<ChainPin & { format: string }> | null
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new TrustStoreError(file, 'not a JSON object')
  if (p.format !== PIN_FORMAT) throw new TrustStoreError(file, `not a ${PIN_FORMAT} record`)
  if (typeof p.path !== 'string' || p.path === '') throw new TrustStoreError(file, 'no path')
  if (typeof p.chainId !== 'string' || !/^[0-9a-f]{32}$/.test(p.chainId)) throw new TrustStoreError(file, 'no valid chain id')
  const o = p.owner
  if (typeof o !== 'object' || o === null || typeof o.name !== 'string' || typeof o.keyId !== 'string' || !/^[0-9a-f]{64}$/.test(o.keyId)) throw new TrustStoreError(file, 'no valid owner')
  if (typeof p.pinned !== 'string') throw new TrustStoreError(file, 'no pin time')
  return { path: p.path, chainId: p.chainId, owner: { name: o.name, keyId: o.keyId }, pinned: p.pinned, ...(typeof p.accepted === 'string' ? { accepted: p.accepted } : {}) }
}

async function readJson(file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new TrustStoreError(file, `not JSON: ${(err as Error).message}`)
  }
}

/** Writes `value` as JSON to `file` so that a crash leaves the old file or the new one, whole. */
async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(JSON.stringify(value, null, 2) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(file)
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex')
}
