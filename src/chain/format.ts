import { crc32 } from 'node:zlib'
import { MLDSA65, MLKEM768 } from '../crypto/pq.ts'
import { copyBytes } from './copy-bytes.ts'

/** The log format version this code writes: 2 adds hard links, special files, extended attributes and nanosecond times. */
export const FORMAT_VERSION = 2
/** The oldest log format version this code reads (and appends version 2 blocks to). */
export const MIN_FORMAT_VERSION = 1
/** The 16-byte file header: `FACETLOG`, the format version (u32 LE), four zero bytes. */
export const FILE_MAGIC = Buffer.from('FACETLOG')
/** Length of the file header. */
export const FILE_HEADER_BYTES = 16
/** The 4 bytes that open every frame. */
export const FRAME_MAGIC = 0x31424346 // 'FCB1' little-endian
/** Length of a frame header: magic, body length, CRC-32 of the body. */
export const FRAME_HEADER_BYTES = 12
/** The largest block body accepted, in bytes. */
export const MAX_BLOCK_BYTES = 256 * 1024 * 1024
/** Default content chunk size. */
export const DEFAULT_CHUNK_SIZE = 128 * 1024
/** The inode number of a chain's root directory. */
export const ROOT_INO = 1
/** Length of a chain id. */
export const CHAIN_ID_BYTES = 16

/** Event type numbers, as stored. */
export const EventType = {
  genesis: 1,
  writerAuth: 2,
  keyGrant: 3,
  inodePut: 4,
  chunkPut: 5,
  chunksCut: 6,
  tombstone: 7,
  linkPut: 8,
  linkDrop: 9,
  xattrPut: 10,
  keyGrantDrop: 11,
  group: 12,
  writeScope: 13,
  fileMeta: 14,
} as const

/** The first event type of format version 2; a version 1 block skips such types as unknown. */
const FIRST_V2_EVENT = EventType.linkPut

/** The first event of a chain: its owner and parameters. */
export interface GenesisEvent {
  type: 'genesis'
  formatVersion: number
  chunkSize: number
  ownerName: string
  ownerSigningKey: Uint8Array
  ownerKemKey: Uint8Array
  /** Set in the first block of a compacted log: the head of the log it replaced. */
  compactedFrom?: { seq: number; hash: Uint8Array } | undefined
}

/** Authorises (or revokes) another identity to write blocks; only the owner may issue it. */
export interface WriterAuthEvent {
  type: 'writerAuth'
  action: 'authorise' | 'revoke'
  keyId: Uint8Array
  name: string
  signingKey: Uint8Array
  kemKey: Uint8Array
}

/** Wraps inode `ino`'s key for one reader with ML-KEM-768 + HKDF. */
export interface KeyGrantEvent {
  type: 'keyGrant'
  ino: number
  reader: Uint8Array
  kemCipherText: Uint8Array
  /** AES-GCM of the inode key under the HKDF of the shared secret. */
  wrappedKey: Uint8Array
}

/** Withdraws the key grants of inode `ino` to one reader (owner-signed only). The reader keeps any key it unwrapped before: this stops an honest reader using the grant, it revokes nothing. */
export interface KeyGrantDropEvent {
  type: 'keyGrantDrop'
  ino: number
  reader: Uint8Array
}

/** One copy of a group's secret key seed, wrapped for one identity's ML-KEM key (see groups.ts). */
export interface GroupKeyWrap {
  /** The key id of the identity it is wrapped for. */
  keyId: Uint8Array
  /** Its name, as the owner knew it when adding it. */
  name: string
  /** True for a member; false for the owner's own copy when the owner is not a member (kept so it can add members later). */
  member: boolean
  /** Its ML-KEM-768 public key (so the owner can wrap the next key for it when the group's key rotates). */
  kemKey: Uint8Array
  kemCipherText: Uint8Array
  /** AES-GCM of the group's 64-byte ML-KEM-768 seed. */
  wrappedSeed: Uint8Array
}

/** The whole state of group `name` at key `epoch` (owner-signed only; the latest of a name wins): its ML-KEM-768 public key and its secret seed wrapped for the owner and each member. Format version 2 readers that predate it skip it as unknown. */
export interface GroupEvent {
  type: 'group'
  name: string
  /** 1 when made; one more each time the key pair is rotated (a member removed). */
  epoch: number
  kemKey: Uint8Array
  wraps: GroupKeyWrap[]
}

/** Limits writer `keyId` to the subtrees of folders `inos` (owner-signed only; the latest for a writer wins, a `writerAuth` revoke ends it). A list holding the root puts the writer back to the whole chain; a writer with none writes everywhere. Readers that predate it skip it as unknown (they hold the writer to no scope). */
export interface WriteScopeEvent {
  type: 'writeScope'
  keyId: Uint8Array
  inos: number[]
}

/** An inode's metadata, encrypted under the key of inode `keyParent`. */
export interface InodePutEvent {
  type: 'inodePut'
  ino: number
  keyParent: number
  version: number
  sealedMeta: Uint8Array
}

/** One content chunk of an inode, encrypted under the inode's chunk key. */
export interface ChunkPutEvent {
  type: 'chunkPut'
  ino: number
  index: number
  version: number
  sealed: Uint8Array
  /** Where `sealed` starts in the block body (set by the decoder). */
  bodyOffset?: number
}

/** Drops all chunks of `ino` at `from` and beyond (a truncation). */
export interface ChunksCutEvent {
  type: 'chunksCut'
  ino: number
  from: number
}

/** Removes inode `ino` and its chunks. Inode numbers are never reused. */
export interface TombstoneEvent {
  type: 'tombstone'
  ino: number
}

/** An extra name (hard link) of an inode: the directory it lies in (`dir`) in clear; the name and the inode it names sealed under `dir`'s metadata key. A later put of the same `link` replaces it (a rename). */
export interface LinkPutEvent {
  type: 'linkPut'
  link: number
  dir: number
  version: number
  sealed: Uint8Array
}

/** Removes extra name `link`. Link ids are never reused. */
export interface LinkDropEvent {
  type: 'linkDrop'
  link: number
}

/** The extended attributes of inode `ino`, all of them, sealed under a key of the inode's own; replaces the previous version. */
export interface XattrPutEvent {
  type: 'xattrPut'
  ino: number
  version: number
  sealed: Uint8Array
}

/** A file's metadata (version `version`, as its latest inode put) sealed under the file's own key, for readers granted the file alone (sharing.ts). Readers that predate it skip it as unknown. */
export interface FileMetaEvent {
  type: 'fileMeta'
  ino: number
  version: number
  sealed: Uint8Array
}

/** Any event of a block. */
export type ChainEvent = GenesisEvent | WriterAuthEvent | KeyGrantEvent | KeyGrantDropEvent | InodePutEvent | ChunkPutEvent | ChunksCutEvent | TombstoneEvent | LinkPutEvent | LinkDropEvent | XattrPutEvent | GroupEvent | WriteScopeEvent | FileMetaEvent

/** A block as stored: header, events, and one ML-DSA-65 signature by `author`. */
export interface Block {
  formatVersion: number
  chainId: Uint8Array
  seq: number
  prevHash: Uint8Array
  /** Milliseconds since the epoch. */
  time: number
  /** Key id of the signing identity. */
  author: Uint8Array
  events: ChainEvent[]
  signature: Uint8Array
}

/** A block header and events without the signature, as it is built before signing. */
export type UnsignedBlock = Omit<Block, 'signature'>

/** Thrown for bytes that do not decode as the format describes. */
export class FormatError extends Error {
  override readonly name = 'FormatError'
}

const HEADER_BYTES = 1 + CHAIN_ID_BYTES + 8 + 32 + 8 + 32 + 4

class Writer {
  buf: Buffer
  pos = 0
  constructor(size: number, into?: Buffer) {
    this.buf = into && into.length >= size ? into : Buffer.allocUnsafe(size)
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n))
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }
  u8(v: number): void {
    this.ensure(1)
    this.buf[this.pos++] = v
  }
  u16(v: number): void {
    this.ensure(2)
    this.buf.writeUInt16LE(v, this.pos)
    this.pos += 2
  }
  u32(v: number): void {
    this.ensure(4)
    this.buf.writeUInt32LE(v >>> 0, this.pos)
    this.pos += 4
  }
  u64(v: number): void {
    this.ensure(8)
    this.buf.writeUIntLE(v, this.pos, 6)
    this.buf.writeUInt16LE(0, this.pos + 6)
    this.pos += 8
  }
  f64(v: number): void {
    this.ensure(8)
    this.buf.writeDoubleLE(v, this.pos)
    this.pos += 8
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length)
    // sealed chunks come from the seal slots, shared memory
    copyBytes(this.buf, this.pos, b)
    this.pos += b.length
  }
  fixed(b: Uint8Array, n: number): void {
    if (b.length !== n) throw new FormatError(`expected ${n} bytes, got ${b.length}`)
    this.bytes(b)
  }
  str16(s: string): void {
    const b = Buffer.from(s)
    if (b.length > 0xffff) throw new FormatError('string too long')
    this.u16(b.length)
    this.bytes(b)
  }
}

class Reader {
  pos: number
  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start
  }
  need(n: number): void {
    if (this.pos + n > this.end) throw new FormatError('unexpected end of block')
  }
  u8(): number {
    this.need(1)
    return this.buf[this.pos++]!
  }
  u16(): number {
    this.need(2)
    const v = this.buf.readUInt16LE(this.pos)
    this.pos += 2
    return v
  }
  u32(): number {
    this.need(4)
    const v = this.buf.readUInt32LE(this.pos)
    this.pos += 4
    return v
  }
  u64(): number {
    this.need(8)
    if (this.buf.readUInt16LE(this.pos + 6) !== 0) throw new FormatError('integer out of range')
    const v = this.buf.readUIntLE(this.pos, 6)
    this.pos += 8
    return v
  }
  f64(): number {
    this.need(8)
    const v = this.buf.readDoubleLE(this.pos)
    this.pos += 8
    return v
  }
  bytes(n: number): Buffer {
    this.need(n)
    const b = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return b
  }
  str16(): string {
    return this.bytes(this.u16()).toString('utf8')
  }
}

function encodeEvent(w: Writer, e: ChainEvent): void {
  w.u8(EventType[e.type])
  const lenAt = w.pos
  w.u32(0)
  const start = w.pos
  switch (e.type) {
    case 'genesis':
      w.u8(e.formatVersion)
      w.u32(e.chunkSize)
      w.str16(e.ownerName)
      w.fixed(e.ownerSigningKey, MLDSA65.publicKey)
      w.fixed(e.ownerKemKey, MLKEM768.publicKey)
      if (e.compactedFrom) {
        w.u8(1)
        w.u64(e.compactedFrom.seq)
        w.fixed(e.compactedFrom.hash, 32)
      } else w.u8(0)
      break
    case 'writerAuth':
      w.u8(e.action === 'authorise' ? 1 : 0)
      w.fixed(e.keyId, 32)
      w.str16(e.name)
      w.fixed(e.signingKey, MLDSA65.publicKey)
      w.fixed(e.kemKey, MLKEM768.publicKey)
      break
    case 'keyGrant':
      w.u64(e.ino)
      w.fixed(e.reader, 32)
      w.fixed(e.kemCipherText, MLKEM768.cipherText)
      w.u16(e.wrappedKey.length)
      w.bytes(e.wrappedKey)
      break
    case 'keyGrantDrop':
      w.u64(e.ino)
      w.fixed(e.reader, 32)
      break
    case 'inodePut':
      w.u64(e.ino)
      w.u64(e.keyParent)
      w.u32(e.version)
      w.bytes(e.sealedMeta)
      break
    case 'chunkPut':
      w.u64(e.ino)
      w.u64(e.index)
      w.u32(e.version)
      e.bodyOffset = w.pos
      w.bytes(e.sealed)
      break
    case 'chunksCut':
      w.u64(e.ino)
      w.u64(e.from)
      break
    case 'tombstone':
      w.u64(e.ino)
      break
    case 'linkPut':
      w.u64(e.link)
      w.u64(e.dir)
      w.u32(e.version)
      w.bytes(e.sealed)
      break
    case 'linkDrop':
      w.u64(e.link)
      break
    case 'xattrPut':
    case 'fileMeta':
      w.u64(e.ino)
      w.u32(e.version)
      w.bytes(e.sealed)
      break
    case 'group':
      w.str16(e.name)
      w.u32(e.epoch)
      w.fixed(e.kemKey, MLKEM768.publicKey)
      w.u16(e.wraps.length)
      for (const x of e.wraps) {
        w.fixed(x.keyId, 32)
        w.str16(x.name)
        w.u8(x.member ? 1 : 0)
        w.fixed(x.kemKey, MLKEM768.publicKey)
        w.fixed(x.kemCipherText, MLKEM768.cipherText)
        w.u16(x.wrappedSeed.length)
        w.bytes(x.wrappedSeed)
      }
      break
    case 'writeScope':
      w.fixed(e.keyId, 32)
      w.u16(e.inos.length)
      for (const ino of e.inos) w.u64(ino)
      break
  }
  w.buf.writeUInt32LE(w.pos - start, lenAt)
}

function decodeEvent(r: Reader, version: number): ChainEvent | undefined {
  const type = r.u8()
  const len = r.u32()
  r.need(len)
  const end = r.pos + len
  const e = new Reader(r.buf, r.pos, end)
  r.pos = end
  // a version 1 block knew no such type: skipped, as a version 1 reader did
  if (version < 2 && type >= FIRST_V2_EVENT) return undefined
  let out: ChainEvent | undefined
  switch (type) {
    case EventType.genesis: {
      const formatVersion = e.u8()
      const chunkSize = e.u32()
      const ownerName = e.str16()
      const ownerSigningKey = e.bytes(MLDSA65.publicKey)
      const ownerKemKey = e.bytes(MLKEM768.publicKey)
      const compacted = e.u8() === 1 ? { seq: e.u64(), hash: e.bytes(32) } : undefined
      out = { type: 'genesis', formatVersion, chunkSize, ownerName, ownerSigningKey, ownerKemKey, compactedFrom: compacted }
      break
    }
    case EventType.writerAuth:
      out = {
        type: 'writerAuth',
        action: e.u8() === 1 ? 'authorise' : 'revoke',
        keyId: e.bytes(32),
        name: e.str16(),
        signingKey: e.bytes(MLDSA65.publicKey),
        kemKey: e.bytes(MLKEM768.publicKey),
      }
      break
    case EventType.keyGrant:
      out = { type: 'keyGrant', ino: e.u64(), reader: e.bytes(32), kemCipherText: e.bytes(MLKEM768.cipherText), wrappedKey: e.bytes(e.u16()) }
      break
    case EventType.keyGrantDrop:
      out = { type: 'keyGrantDrop', ino: e.u64(), reader: e.bytes(32) }
      break
    case EventType.inodePut:
      out = { type: 'inodePut', ino: e.u64(), keyParent: e.u64(), version: e.u32(), sealedMeta: e.bytes(end - e.pos) }
      break
    case EventType.chunkPut: {
      const ino = e.u64()
      const index = e.u64()
      const version = e.u32()
      const bodyOffset = e.pos
      out = { type: 'chunkPut', ino, index, version, bodyOffset, sealed: e.bytes(end - e.pos) }
      break
    }
    case EventType.chunksCut:
      out = { type: 'chunksCut', ino: e.u64(), from: e.u64() }
      break
    case EventType.tombstone:
      out = { type: 'tombstone', ino: e.u64() }
      break
    case EventType.linkPut:
      out = { type: 'linkPut', link: e.u64(), dir: e.u64(), version: e.u32(), sealed: e.bytes(end - e.pos) }
      break
    case EventType.linkDrop:
      out = { type: 'linkDrop', link: e.u64() }
      break
    case EventType.xattrPut:
    case EventType.fileMeta:
      out = { type: type === EventType.xattrPut ? 'xattrPut' : 'fileMeta', ino: e.u64(), version: e.u32(), sealed: e.bytes(end - e.pos) }
      break
    case EventType.group: {
      const name = e.str16()
      const epoch = e.u32()
      const kemKey = e.bytes(MLKEM768.publicKey)
      const wraps: GroupKeyWrap[] = []
      for (let i = e.u16(); i > 0; i--) {
        wraps.push({ keyId: e.bytes(32), name: e.str16(), member: e.u8() === 1, kemKey: e.bytes(MLKEM768.publicKey), kemCipherText: e.bytes(MLKEM768.cipherText), wrappedSeed: e.bytes(e.u16()) })
      }
      out = { type: 'group', name, epoch, kemKey, wraps }
      break
    }
    case EventType.writeScope: {
      const keyId = e.bytes(32)
      const inos: number[] = []
      for (let i = e.u16(); i > 0; i--) inos.push(e.u64())
      out = { type: 'writeScope', keyId, inos }
      break
    }
    default:
      return undefined // an event type from a newer minor format: skipped, still covered by the signature
  }
  if (e.pos !== end) throw new FormatError(`event type ${type} has ${end - e.pos} stray bytes`)
  return out
}

/**
 * Encodes the unsigned part of a block. The result's first `length` bytes are what the
 * signature digest covers; `encodeSigned` appends the signature. `into` is a buffer to
 * encode into when it is big enough (so a writer can reuse one), else a new one is made.
 */
export function encodeUnsigned(block: UnsignedBlock, sizeHint = 4096, into?: Buffer): { buf: Buffer; length: number } {
  const w = new Writer(sizeHint + HEADER_BYTES + 2 + MLDSA65.signature, into)
  w.u8(block.formatVersion)
  w.fixed(block.chainId, CHAIN_ID_BYTES)
  w.u64(block.seq)
  w.fixed(block.prevHash, 32)
  w.f64(block.time)
  w.fixed(block.author, 32)
  w.u32(block.events.length)
  for (const e of block.events) encodeEvent(w, e)
  return { buf: w.buf, length: w.pos }
}

/** Appends `signature` to an unsigned encoding, returning the full block body. */
export function appendSignature(unsigned: { buf: Buffer; length: number }, signature: Uint8Array): Buffer {
  const total = unsigned.length + 2 + signature.length
  let buf = unsigned.buf
  if (buf.length < total) {
    buf = Buffer.allocUnsafe(total)
    unsigned.buf.copy(buf, 0, 0, unsigned.length)
  }
  buf.writeUInt16LE(signature.length, unsigned.length)
  buf.set(signature, unsigned.length + 2)
  return buf.subarray(0, total)
}

/** Decodes a block body; `signedLength` is how many leading bytes the signature covers. */
export function decodeBlock(body: Buffer): { block: Block; signedLength: number } {
  const r = new Reader(body)
  const formatVersion = r.u8()
  if (formatVersion < MIN_FORMAT_VERSION || formatVersion > FORMAT_VERSION) throw new FormatError(`unknown block format version ${formatVersion}`)
  const chainId = r.bytes(CHAIN_ID_BYTES)
  const seq = r.u64()
  const prevHash = r.bytes(32)
  const time = r.f64()
  const author = r.bytes(32)
  const count = r.u32()
  const events: ChainEvent[] = []
  for (let i = 0; i < count; i++) {
    const e = decodeEvent(r, formatVersion)
    if (e) events.push(e)
  }
  const signedLength = r.pos
  const sigLen = r.u16()
  const signature = r.bytes(sigLen)
  if (r.pos !== body.length) throw new FormatError(`${body.length - r.pos} stray bytes after the signature`)
  return { block: { formatVersion, chainId, seq, prevHash, time, author, events, signature }, signedLength }
}

/** The 12-byte frame header of `body`: magic, length, CRC-32 (written before the body without copying it). */
export function frameHeader(body: Uint8Array, crc: number = crc32(body)): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
  out.writeUInt32LE(FRAME_MAGIC, 0)
  out.writeUInt32LE(body.length, 4)
  out.writeUInt32LE(crc, 8)
  return out
}

/** Wraps a block body in a frame: magic, length, CRC-32, body. */
export function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length)
  out.writeUInt32LE(FRAME_MAGIC, 0)
  out.writeUInt32LE(body.length, 4)
  out.writeUInt32LE(crc32(body), 8)
  out.set(body, FRAME_HEADER_BYTES)
  return out
}

/** The 16-byte header every log file starts with. */
export function fileHeader(): Buffer {
  const h = Buffer.alloc(FILE_HEADER_BYTES)
  FILE_MAGIC.copy(h, 0)
  h.writeUInt32LE(FORMAT_VERSION, 8)
  return h
}

/** Checks a file header; throws {@link FormatError} when it is not a FacetFS log of a known version. */
export function checkFileHeader(h: Buffer): void {
  if (h.length < FILE_HEADER_BYTES || !h.subarray(0, 8).equals(FILE_MAGIC)) throw new FormatError('not a FacetFS chain log (bad magic)')
  const v = h.readUInt32LE(8)
  if (v < MIN_FORMAT_VERSION || v > FORMAT_VERSION) throw new FormatError(`unsupported chain log format version ${v}`)
  if (h.readUInt32LE(12) !== 0) throw new FormatError('damaged file header (reserved bytes are not zero)')
}

/** Computes the CRC-32 of a frame body. */
export function bodyCrc(body: Uint8Array): number {
  return crc32(body)
}

/** Encodes a number as 8 bytes little-endian (the format's u64). */
export function u64Bytes(v: number): Buffer {
  const b = Buffer.alloc(8)
  b.writeUIntLE(v, 0, 6)
  return b
}

/** Encodes a number as 4 bytes little-endian. */
export function u32Bytes(v: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(v >>> 0)
  return b
}
