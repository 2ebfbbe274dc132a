import { open as fsOpen, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { verify } from '../crypto/pq.ts'
import type { PqPool } from '../crypto/pq-pool.ts'
import { keyIdOf } from '../crypto/identity.ts'
import {
  bodyCrc,
  checkFileHeader,
  decodeBlock,
  FILE_HEADER_BYTES,
  FORMAT_VERSION,
  FRAME_HEADER_BYTES,
  MIN_FORMAT_VERSION,
  FRAME_MAGIC,
  MAX_BLOCK_BYTES,
  type Block,
  type GenesisEvent,
} from './format.ts'
import { blockDigest, blockHash } from './keys.ts'
import { scopeOf, scopeViolation, Writers } from './write-scope.ts'

/** Thrown when a log fails verification; names the first bad block and where it starts. */
export class ChainIntegrityError extends Error {
  override readonly name = 'ChainIntegrityError'
  constructor(
    /** The reason, without the block. */
    readonly reason: string,
    /** The sequence number the bad block has or should have. */
    readonly seq: number,
    /** Byte offset of the bad block's frame in the log file. */
    readonly offset: number,
  ) {
    super(`block ${seq} (at byte ${offset}): ${reason}`)
  }
}

/** A writer the chain accepts blocks from. */
export interface ChainWriter {
  keyId: Uint8Array
  name: string
  signingKey: Uint8Array
  kemKey: Uint8Array
  owner: boolean
  /** The folders (inodes) whose subtrees it may write, when an owner-signed write scope limits it (write-scope.ts); undefined: the whole chain. */
  scope?: ReadonlySet<number> | undefined
}

/** A verified block with where it lies in the file. */
export interface VerifiedBlock {
  block: Block
  hash: Buffer
  /** Offset of the frame in the file. */
  frameOffset: number
  /** Offset of the block body in the file. */
  bodyOffset: number
  /** Bytes of the whole frame. */
  frameBytes: number
}

interface PendingSignature {
  seq: number
  offset: number
  ok: Promise<boolean>
}

/** How many blocks a {@link BlockVerifier} checks on the JS thread before it hands signatures to its pool. */
export const INLINE_SIGNATURE_BLOCKS = 16
const MAX_PENDING_SIGNATURES = 256
const WARM_POOL_AT_BLOCK = 4

/**
 * Checks blocks in log order: chain id, sequence, `prevHash`, author authorisation and
 * the ML-DSA-65 signature. Keeps the writer set as the log authorises writers.
 *
 * With a `pool`, signatures after the first `inlineBlocks` blocks are
 * checked on worker threads while the caller goes on decoding and hashing; {@link settle}
 * waits for them and throws for the first bad one in log order. Until it returns, blocks
 * passed to the caller are unauthenticated: nothing may be written or shown from them.
 */
export class BlockVerifier {
  /** Gives the worker pool for signature checks, called on the first block that needs it. */
  pool: (() => PqPool) | undefined
  /** How many blocks are checked on the JS thread before signatures go to the pool. @default INLINE_SIGNATURE_BLOCKS */
  inlineBlocks = INLINE_SIGNATURE_BLOCKS
  private pending: PendingSignature[] = []
  private checked = 0
  chainId: Uint8Array | undefined
  genesis: GenesisEvent | undefined
  baseSeq = 0
  headSeq = -1
  headHash: Buffer = Buffer.alloc(32)
  /** The format version of the last block; a later block never has a lower one. */
  formatVersion = MIN_FORMAT_VERSION
  /** The writers, with the tree's clear shape their write scopes are checked against. */
  readonly writers = new Writers()
  /** Hashes by seq, for the trust store's fork check. */
  readonly hashes: Buffer[] = []

  /** Verifies one block body read at `frameOffset`; throws {@link ChainIntegrityError}. */
  check(body: Buffer, frameOffset: number): VerifiedBlock {
    const expectSeq = this.headSeq + 1
    let decoded
    try {
      decoded = decodeBlock(body)
    } catch (err) {
      throw new ChainIntegrityError(`undecodable block: ${(err as Error).message}`, expectSeq, frameOffset)
    }
    const { block, signedLength } = decoded
    const fail = (reason: string) => new ChainIntegrityError(reason, this.genesis ? expectSeq : block.seq, frameOffset)
    if (!this.genesis) {
      const g = block.events[0]
      if (!g || g.type !== 'genesis') throw fail('the first block does not start with a genesis event')
      if (g.formatVersion < MIN_FORMAT_VERSION || g.formatVersion > FORMAT_VERSION) throw fail(`unsupported format version ${g.formatVersion}`)
      if (g.formatVersion !== block.formatVersion) throw fail(`genesis of format version ${g.formatVersion} in a block of version ${block.formatVersion}`)
      if (g.compactedFrom) {
        if (block.seq !== g.compactedFrom.seq + 1) throw fail('compacted genesis has the wrong sequence number')
        if (!Buffer.from(block.prevHash).equals(Buffer.from(g.compactedFrom.hash))) throw fail('compacted genesis does not link to the head it replaced')
      } else if (block.seq !== 0 || block.prevHash.some(b => b !== 0)) throw fail('genesis block must have seq 0 and a zero prevHash')
      this.genesis = g
      this.chainId = Buffer.from(block.chainId)
      this.baseSeq = block.seq
      const keyId = keyIdOf(g.ownerSigningKey, g.ownerKemKey)
      this.writers.set(keyId.toString('hex'), { keyId, name: g.ownerName, signingKey: g.ownerSigningKey, kemKey: g.ownerKemKey, owner: true })
    } else {
      if (!Buffer.from(block.chainId).equals(Buffer.from(this.chainId!))) throw fail('block belongs to another chain')
      if (block.seq !== expectSeq) throw fail(`sequence number ${block.seq} where ${expectSeq} was expected (blocks reordered, dropped or replayed)`)
      if (!Buffer.from(block.prevHash).equals(this.headHash)) throw fail('prevHash does not match the previous block (hash chain broken)')
      if (block.events.some(e => e.type === 'genesis')) throw fail('a genesis event after the first block')
      if (block.formatVersion < this.formatVersion) throw fail(`format version ${block.formatVersion} after a block of version ${this.formatVersion}`)
    }
    const author = this.writers.get(Buffer.from(block.author).toString('hex'))
    if (!author) throw fail('signed by an identity that is not an authorised writer')
    const digest = blockDigest(body.subarray(0, signedLength))
    if (this.pool && this.checked === WARM_POOL_AT_BLOCK) this.pool().warm()
    if (this.pool && this.checked >= this.inlineBlocks) {
      const ok = this.pool().verify(block.signature, digest, author.signingKey)
      ok.catch(() => {})
      this.pending.push({ seq: block.seq, offset: frameOffset, ok })
    } else if (!verify(block.signature, digest, author.signingKey)) throw fail('bad signature')
    this.checked++
    const outside = author.scope && scopeViolation(block.events, author.scope, this.writers.shape)
    if (outside) throw fail(`${outside}, by writer '${author.name}' (key ${Buffer.from(author.keyId).toString('hex').slice(0, 16)}) limited to folders ${[...author.scope!].join(', ')}`)
    for (const e of block.events) {
      if (e.type === 'keyGrantDrop' && !author.owner) throw fail('a key grant withdrawn by an identity other than the owner')
      if (e.type === 'group' && !author.owner) throw fail('a group written by an identity other than the owner')
      if (e.type === 'writeScope') {
        if (!author.owner) throw fail('a write scope by an identity other than the owner')
        const w = this.writers.get(Buffer.from(e.keyId).toString('hex'))
        if (!w || w.owner) throw fail('a write scope for an identity that is not an authorised writer other than the owner')
        this.writers.set(Buffer.from(e.keyId).toString('hex'), { ...w, scope: scopeOf(e.inos) })
      }
      if (e.type !== 'writerAuth') continue
      if (!author.owner) throw fail('writer authorisation by an identity other than the owner')
      const hex = Buffer.from(e.keyId).toString('hex')
      if (!keyIdOf(e.signingKey, e.kemKey).equals(Buffer.from(e.keyId))) throw fail('writer authorisation with a key id that does not match its keys')
      if (e.action === 'authorise') this.writers.set(hex, { keyId: e.keyId, name: e.name, signingKey: e.signingKey, kemKey: e.kemKey, owner: false })
      else if (!this.writers.get(hex)?.owner) this.writers.delete(hex)
    }
    this.writers.shape.apply(block.events)
    const hash = blockHash(digest, block.signature)
    this.headSeq = block.seq
    this.headHash = hash
    this.formatVersion = block.formatVersion
    this.hashes.push(hash)
    return { block, hash, frameOffset, bodyOffset: frameOffset + FRAME_HEADER_BYTES, frameBytes: FRAME_HEADER_BYTES + body.length }
  }

  /** The hash of block `seq`, when the log holds it. */
  hashAt(seq: number): Buffer | undefined {
    return this.hashes[seq - this.baseSeq]
  }

  /** True when so many signature checks are waiting that the caller should {@link settle} some first. */
  get backlogged(): boolean {
    return this.pending.length >= MAX_PENDING_SIGNATURES
  }

  /**
   * Waits for the signature checks handed to the pool (all of them, or the older half when
   * `some`); throws {@link ChainIntegrityError} for the first bad signature in log order.
   */
  async settle(some = false): Promise<void> {
    const take = some ? this.pending.splice(0, Math.ceil(this.pending.length / 2)) : this.pending.splice(0)
    const results = await Promise.allSettled(take.map(p => p.ok))
    for (let i = 0; i < take.length; i++) {
      const r = results[i]!
      const p = take[i]!
      if (r.status === 'rejected') throw new ChainIntegrityError(`signature could not be checked: ${(r.reason as Error).message}`, p.seq, p.offset)
      if (!r.value) throw new ChainIntegrityError('bad signature', p.seq, p.offset)
    }
  }
}

/** A torn tail found at the end of a log: an incomplete or damaged last frame. */
export interface TornTail {
  /** Offset where the last valid block ends and the torn bytes begin. */
  offset: number
  /** How many bytes follow it. */
  bytes: number
  /** The sequence number the torn block would have had. */
  seq: number
  /** What is wrong with the frame (e.g. `checksum mismatch`). */
  reason: string
}

/** What {@link scanLog} found. */
export interface ScanResult {
  /** Offset just after the last valid frame. */
  end: number
  /** Present when the file ends in a torn frame. */
  tornTail?: TornTail | undefined
  blocks: number
  events: number
}

const WINDOW = 8 * 1024 * 1024

/** Random-access reads of a log's bytes; an open `FileHandle` is one, so is every backend's log. */
export interface LogReader {
  /** Reads up to `length` bytes at `position` into `buffer` at `offset` (fewer at the end of the log). */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
}

/**
 * Reads and verifies every frame of an open log from `start` (after the file header) and
 * calls `onBlock` for each. A torn last frame is reported, not thrown; any other damage
 * throws {@link ChainIntegrityError} naming the block. When the verifier checks signatures
 * on a pool, `onBlock` may see a block before its signature is checked; the scan returns
 * only once every signature is, and throws for the first bad block in log order.
 */
export async function scanLog(fh: LogReader & { stat?(): Promise<{ size: number }> }, verifier: BlockVerifier, onBlock: (v: VerifiedBlock) => void, start = FILE_HEADER_BYTES, size?: number): Promise<ScanResult> {
  const total = size ?? (await fh.stat!()).size
  if (start === FILE_HEADER_BYTES) {
    const header = Buffer.alloc(FILE_HEADER_BYTES)
    const { bytesRead } = await fh.read(header, 0, FILE_HEADER_BYTES, 0)
    try {
      checkFileHeader(header.subarray(0, bytesRead))
    } catch (err) {
      throw new ChainIntegrityError((err as Error).message, 0, 0)
    }
  }
  try {
    return await scanFrames(fh, verifier, onBlock, start, total)
  } catch (err) {
    await verifier.settle()
    throw err
  }
}

async function scanFrames(fh: LogReader, verifier: BlockVerifier, onBlock: (v: VerifiedBlock) => void, start: number, total: number): Promise<ScanResult> {
  let window = Buffer.alloc(0)
  let windowAt = start
  const read = async (pos: number, len: number): Promise<Buffer> => {
    if (pos >= windowAt && pos + len <= windowAt + window.length) return window.subarray(pos - windowAt, pos - windowAt + len)
    if (len > WINDOW) {
      const b = Buffer.allocUnsafe(len)
      const { bytesRead } = await fh.read(b, 0, len, pos)
      return b.subarray(0, bytesRead)
    }
    const n = Math.min(WINDOW, total - pos)
    window = Buffer.allocUnsafe(Math.max(n, 0))
    windowAt = pos
    const { bytesRead } = await fh.read(window, 0, window.length, pos)
    window = window.subarray(0, bytesRead)
    return window.subarray(0, Math.min(len, bytesRead))
  }
  let pos = start
  let blocks = 0
  let events = 0
  while (pos < total) {
    const seq = verifier.headSeq + 1
    const torn = async (why: string): Promise<ScanResult> => {
      if (await laterFrameExists(read, pos + 1, total)) throw new ChainIntegrityError(`damaged frame (${why}) followed by further blocks`, seq, pos)
      await verifier.settle()
      return { end: pos, tornTail: { offset: pos, bytes: total - pos, seq, reason: why }, blocks, events }
    }
    if (total - pos < FRAME_HEADER_BYTES) return torn('incomplete frame header')
    const head = await read(pos, FRAME_HEADER_BYTES)
    if (head.readUInt32LE(0) !== FRAME_MAGIC) return torn('bad frame magic')
    const len = head.readUInt32LE(4)
    const crc = head.readUInt32LE(8)
    if (len > MAX_BLOCK_BYTES) return torn('frame length out of range')
    if (pos + FRAME_HEADER_BYTES + len > total) return torn('frame runs past the end of the file')
    const body = await read(pos + FRAME_HEADER_BYTES, len)
    if (bodyCrc(body) !== crc) return torn('checksum mismatch')
    const v = verifier.check(body, pos)
    blocks++
    events += v.block.events.length
    onBlock(v)
    pos += FRAME_HEADER_BYTES + len
    if (verifier.backlogged) await verifier.settle(true)
  }
  await verifier.settle()
  return { end: pos, blocks, events }
}

async function laterFrameExists(read: (pos: number, len: number) => Promise<Buffer>, from: number, total: number): Promise<boolean> {
  const magic = Buffer.alloc(4)
  magic.writeUInt32LE(FRAME_MAGIC)
  for (let at = from; at + FRAME_HEADER_BYTES <= total; ) {
    const span = Math.min(WINDOW, total - at)
    const buf = Buffer.from(await read(at, span))
    let i = buf.indexOf(magic)
    while (i !== -1) {
      const p = at + i
      if (p + FRAME_HEADER_BYTES <= total) {
        const h = await read(p, FRAME_HEADER_BYTES)
        const len = h.readUInt32LE(4)
        if (len <= MAX_BLOCK_BYTES && p + FRAME_HEADER_BYTES + len <= total) {
          const crc = h.readUInt32LE(8)
          if (bodyCrc(await read(p + FRAME_HEADER_BYTES, len)) === crc) return true
        }
      }
      i = buf.indexOf(magic, i + 1)
    }
    if (span <= 3) break
    at += span - 3
  }
  return false
}

/** Thrown when the file at a log's path is no longer the one a writer has open (moved, deleted or replaced): nothing more is written to it. */
export class LogReplacedError extends Error {
  override readonly name = 'LogReplacedError'
}

/** Thrown when a block's `seq` is already taken in the store: another writer appended first. */
export class ChainConflictError extends Error {
  override readonly name = 'ChainConflictError'
}

/** Thrown when another live process holds a chain open for writing. */
export class ChainLockedError extends Error {
  override readonly name = 'ChainLockedError'
}

/** Takes the writer lock `<log>.lock`; a lock left by a dead process is taken over. Returns its release. */
export async function lockLog(path: string): Promise<() => Promise<void>> {
  const lock = `${path}.lock`
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await fsOpen(lock, 'wx', 0o600)
      await fh.writeFile(String(process.pid))
      await fh.close()
      return async () => {
        await rm(lock, { force: true })
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let pid = NaN
      try {
        pid = Number((await import('node:fs/promises').then(f => f.readFile(lock, 'utf8'))).trim())
      } catch {
        continue
      }
      if (pid === process.pid) throw new ChainLockedError(`chain ${path} is already open in this process`)
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) throw new ChainLockedError(`chain ${path} is open for writing by process ${pid}`)
      await rm(lock, { force: true })
    }
  }
  throw new ChainLockedError(`could not lock chain ${path}`)
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Fsyncs a folder so a rename or create in it is durable. */
export async function fsyncDir(path: string): Promise<void> {
  const fh = await fsOpen(dirname(path), 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** True when a file exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
