import { createHash } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { deserialize, serialize } from 'node:v8'
import type { Identity } from '../crypto/identity.ts'
import { sign, verify } from '../crypto/pq.ts'
import { sha256 } from '../crypto/primitives.ts'
import type { Logger } from '../vfs/log.ts'
import type { ChainBackend } from './backend.ts'
import { checkFileHeader, decodeBlock, FILE_HEADER_BYTES, FRAME_HEADER_BYTES, type GenesisEvent, type GroupEvent, type KeyGrantEvent } from './format.ts'
import { blockDigest, blockHash } from './keys.ts'
import { BlockVerifier, type ChainWriter, type LogReader } from './log.ts'
import type { Chain } from './store.ts'
import { ChainTree } from './tree.ts'
import { trustKey } from './trust.ts'
import { TreeShape } from './write-scope.ts'

/**
 * Signed checkpoints of a chain's materialised state, so an open costs the live state and
 * the blocks since, not the whole history (FORMAT.md, "Checkpoints").
 *
 * A checkpoint is a cache the opening identity keeps for itself in its FacetFS home
 * (`checkpoints/<hash of the location>.ckpt`), never beside the log: the tree as the blocks
 * up to block N leave it (sealed records and chunk locations only: no key, no plaintext),
 * the writers and their scopes, and the frame offsets, signed with the identity's own
 * ML-DSA-65 key. An open that finds one checks its signature, that it is for this location,
 * that the log's first frame hashes to the genesis it names and that the frame at its offset
 * for block N hashes to its head; then it verifies only the blocks after N, as a full open
 * would. Anything that does not hold (another chain, a compacted or rewritten log, a damaged
 * or foreign file) falls back to the full replay. What the shortcut gives up: the blocks
 * before N are not hashed again at mount, so damage there shows when the data is read
 * (every record and chunk is authenticated) and in `facet verify`, which always checks
 * every block.
 */

const MAGIC = 'facet-checkpoint/1'
/** A checkpoint is written once this many blocks (or {@link CHECKPOINT_BYTES}) lie past the last one. */
export const CHECKPOINT_BLOCKS = 256
export const CHECKPOINT_BYTES = 16 * 1024 * 1024

/** What a checkpoint holds besides the tree: the verifier's state at block `headSeq`, where the log then ended, and its frame offsets. */
export interface CheckpointState {
  tree: ChainTree
  writers: Map<string, ChainWriter>
  baseSeq: number
  headSeq: number
  headHash: Buffer
  formatVersion: number
  /** Where block `headSeq`'s frame ends. */
  end: number
  offsets: readonly number[]
  /** Blocks after a fresh genesis signed by the identity (the trust store's lost-pin check). */
  ownBlocks: number
  blocks: number
  events: number
}

/** A checkpoint read back: a verifier and tree to go on from, at block `seq` ending at `end`. */
export interface RestoredCheckpoint {
  verifier: BlockVerifier
  tree: ChainTree
  offsets: number[]
  end: number
  seq: number
  ownBlocks: number
  blocks: number
  events: number
}

interface Snapshot {
  magic: string
  location: string
  keyId: Uint8Array
  chainId: Uint8Array
  genesisHash: Uint8Array
  genesis: GenesisEvent
  baseSeq: number
  headSeq: number
  headHash: Uint8Array
  formatVersion: number
  end: number
  offsets: Float64Array
  ownBlocks: number
  blocks: number
  events: number
  writers: (Omit<ChainWriter, 'scope'> & { scope?: number[] | undefined })[]
  maxIno: number
  maxLink: number
  grants: KeyGrantEvent[]
  groups: GroupEvent[]
  /** Every sealed record, end to end; the tables below give offsets and lengths into it (a few big arrays deserialise far faster than many small ones). */
  blob: Uint8Array
  /** {@link INODE_FIELDS} numbers per inode. */
  inodes: Float64Array
  /** index, version, pos, len per chunk, inode after inode. */
  chunks: Float64Array
  /** id, dir, version, offset, length per extra name. */
  links: Float64Array
}

/** Per inode: ino, key parent, version, metadata offset and length (−1: none), chunk version, chunk count, xattr version, offset, length, file-meta version, offset, length. */
const INODE_FIELDS = 13

/** Where `identity` keeps its checkpoint of the chain at `backend` under `home`. */
export function checkpointPath(home: string, backend: Pick<ChainBackend, 'kind' | 'name' | 'trustKey'>): string {
  return join(home, 'checkpoints', `${createHash('sha256').update(trustKey(backend)).digest('hex').slice(0, 32)}.ckpt`)
}

/** True when a checkpoint is due: enough blocks or bytes past the last one (`since`, or the log's start). */
export function checkpointDue(state: Pick<CheckpointState, 'headSeq' | 'end' | 'baseSeq'>, since: { seq: number; end: number } | undefined): boolean {
  const seq = since?.seq ?? state.baseSeq
  const end = since?.end ?? FILE_HEADER_BYTES
  return state.headSeq - seq >= CHECKPOINT_BLOCKS || state.end - end >= CHECKPOINT_BYTES
}

/**
 * Writes `state` of the chain in `log` (at `backend`) as `identity`'s checkpoint, atomically
 * (a temporary file renamed over the old one; a torn file fails its signature and is
 * ignored). The state is copied synchronously, before the first await, so the caller may go
 * on changing the tree. Skipped (false) while a chunk of the tree is not in the log yet.
 */
export async function writeCheckpoint(home: string, backend: ChainBackend, log: LogReader, identity: Identity, state: CheckpointState): Promise<boolean> {
  const snap = snapshotOf(backend, identity, state)
  if (!snap) return false
  const first = await frameAt(log, FILE_HEADER_BYTES)
  const g = first.block.events[0]
  if (g?.type !== 'genesis' || first.block.seq !== state.baseSeq || !Buffer.from(first.block.chainId).equals(Buffer.from(state.tree.chainId))) return false
  snap.genesis = g
  snap.genesisHash = first.hash
  const payload = serialize(snap)
  const signature = sign(sha256(Buffer.from(MAGIC), payload), identity.signingSecretKey)
  const head = Buffer.alloc(4)
  head.writeUInt32LE(signature.length)
  const file = checkpointPath(home, backend)
  await mkdir(join(home, 'checkpoints'), { recursive: true, mode: 0o700 })
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(Buffer.concat([head, signature, payload]))
  } finally {
    await fh.close()
  }
  await rename(tmp, file).catch(async err => {
    await rm(tmp, { force: true })
    throw err
  })
  return true
}

/**
 * Reads `identity`'s checkpoint of the chain at `backend` and checks it against `log` (of
 * `size` bytes): undefined when there is none, and when it does not hold (the reason logged
 * at debug level), so the caller replays the whole log.
 */
export async function readCheckpoint(home: string, backend: ChainBackend, log: LogReader, size: number, identity: Identity, logger: Logger): Promise<RestoredCheckpoint | undefined> {
  const file = checkpointPath(home, backend)
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.debug({ file, err }, 'checkpoint unreadable: replaying the whole log')
    return undefined
  }
  try {
    return await restore(bytes, backend, log, size, identity)
  } catch (err) {
    logger.debug({ file, reason: (err as Error).message }, 'checkpoint not used: replaying the whole log')
    return undefined
  }
}

async function restore(bytes: Buffer, backend: ChainBackend, log: LogReader, size: number, identity: Identity): Promise<RestoredCheckpoint> {
  if (bytes.length < 4) throw new Error('truncated')
  const sigLen = bytes.readUInt32LE(0)
  if (bytes.length < 4 + sigLen) throw new Error('truncated')
  const signature = bytes.subarray(4, 4 + sigLen)
  const payload = bytes.subarray(4 + sigLen)
  if (!verify(signature, sha256(Buffer.from(MAGIC), payload), identity.signingPublicKey)) throw new Error('bad signature (not this identity’s, or damaged)')
  const s = deserialize(payload) as Snapshot
  if (s.magic !== MAGIC || s.location !== trustKey(backend) || !Buffer.from(s.keyId).equals(Buffer.from(identity.keyId))) throw new Error('made for another chain location or identity')
  if (s.end > size || s.offsets.length !== s.headSeq - s.baseSeq + 1 || s.offsets[0] !== FILE_HEADER_BYTES) throw new Error('the log is shorter than the checkpoint, or laid out otherwise')
  const header = Buffer.alloc(FILE_HEADER_BYTES)
  await log.read(header, 0, FILE_HEADER_BYTES, 0)
  checkFileHeader(header)
  const first = await frameAt(log, FILE_HEADER_BYTES)
  if (!first.hash.equals(Buffer.from(s.genesisHash)) || first.block.seq !== s.baseSeq) throw new Error('the log starts with another genesis block (another chain, or compacted since)')
  const last = await frameAt(log, s.offsets[s.offsets.length - 1]!)
  if (!last.hash.equals(Buffer.from(s.headHash)) || last.block.seq !== s.headSeq || last.next !== s.end) throw new Error(`block ${s.headSeq} in the log is not the one checkpointed`)

  const tree = restoreTree(s)
  for (const g of s.grants) tree.apply(g, 0)
  for (const g of s.groups) tree.apply(g, 0)
  tree.maxIno = Math.max(tree.maxIno, s.maxIno)
  tree.maxLink = Math.max(tree.maxLink, s.maxLink)

  const verifier = new BlockVerifier()
  verifier.genesis = s.genesis
  verifier.chainId = Buffer.from(s.chainId)
  verifier.baseSeq = s.baseSeq
  verifier.headSeq = s.headSeq
  verifier.headHash = Buffer.from(s.headHash)
  verifier.formatVersion = s.formatVersion
  for (const w of s.writers) verifier.writers.set(Buffer.from(w.keyId).toString('hex'), { ...w, scope: w.scope ? new Set(w.scope) : undefined })
  verifier.writers.shape = TreeShape.ofTree(tree)
  // hashes by seq: the ends are known; the trust check asks the log for any other (hashAtFromLog)
  verifier.hashes.length = s.headSeq - s.baseSeq
  verifier.hashes[0] = first.hash
  verifier.hashes.push(last.hash)
  return { verifier, tree, offsets: Array.from(s.offsets), end: s.end, seq: s.headSeq, ownBlocks: s.ownBlocks, blocks: s.blocks, events: s.events }
}

/**
 * At the close of `chain` (everything committed), writes its identity's checkpoint when one
 * is due past the last read or written ({@link checkpointDue}); a failure is only a warning.
 * `formatVersion` is that of the last block.
 */
export async function checkpointAtClose(chain: Chain, log: LogReader, formatVersion: number): Promise<void> {
  const r = chain.report
  const state: CheckpointState = {
    tree: chain.tree,
    writers: chain.writers,
    baseSeq: chain.baseSeq,
    headSeq: chain.headSeq,
    headHash: chain.headHash,
    formatVersion,
    end: chain.logBytes,
    offsets: chain.blockOffsets,
    // a sole writer of a log file signed every block since the open
    ownBlocks: r.ownBlocks + (chain.readOnly ? 0 : chain.headSeq - r.headSeq),
    blocks: r.blocks + chain.headSeq - r.headSeq,
    events: r.events,
  }
  if (!checkpointDue(state, r.checkpointWritten ?? r.checkpoint)) return
  try {
    if (await writeCheckpoint(chain.home, chain.backend, log, chain.identity, state)) r.checkpointWritten = { seq: state.headSeq, end: state.end }
  } catch (err) {
    chain.logger.warn({ path: chain.path, err }, `chain ${chain.path}: could not write a checkpoint: ${(err as Error).message}`)
  }
}

/** The tree of a snapshot: its records are views into the snapshot's blob, not copies. */
function restoreTree(s: Snapshot): ChainTree {
  const tree = new ChainTree(Buffer.from(s.chainId))
  const blob = Buffer.from(s.blob.buffer, s.blob.byteOffset, s.blob.byteLength)
  const view = (off: number, len: number) => (len < 0 ? undefined : blob.subarray(off, off + len))
  const t = s.inodes
  const c = s.chunks
  let ci = 0
  for (let i = 0; i < t.length; i += INODE_FIELDS) {
    const n = tree.inode(t[i]!)
    n.keyParent = t[i + 1]!
    n.version = t[i + 2]!
    n.sealedMeta = view(t[i + 3]!, t[i + 4]!)
    if (n.sealedMeta && n.keyParent !== n.ino) tree.inode(n.keyParent).children.add(n.ino)
    n.chunkVersion = t[i + 5]!
    for (let k = t[i + 6]!; k > 0; k--, ci += 4) n.chunks.set(c[ci]!, { version: c[ci + 1]!, pos: c[ci + 2]!, len: c[ci + 3]! })
    n.xattrVersion = t[i + 7]!
    n.sealedXattrs = view(t[i + 8]!, t[i + 9]!)
    const fileMeta = view(t[i + 11]!, t[i + 12]!)
    if (fileMeta) n.fileMeta = { version: t[i + 10]!, sealed: fileMeta }
  }
  const l = s.links
  for (let i = 0; i < l.length; i += 5) {
    const link = { id: l[i]!, dir: l[i + 1]!, version: l[i + 2]!, sealed: view(l[i + 3]!, l[i + 4]!)! }
    tree.links.set(link.id, link)
    tree.inode(link.dir).linksHere.add(link.id)
  }
  return tree
}

/** The hash of block `seq` read from the log at its frame offset, for a seq a restored verifier holds no hash of. */
export async function hashFromLog(log: LogReader, offsets: readonly number[], baseSeq: number, seq: number): Promise<Buffer | undefined> {
  const at = offsets[seq - baseSeq]
  if (at === undefined) return undefined
  const f = await frameAt(log, at)
  return f.block.seq === seq ? f.hash : undefined
}

function snapshotOf(backend: ChainBackend, identity: Identity, state: CheckpointState): Snapshot | undefined {
  const tree = state.tree
  const parts: Uint8Array[] = []
  let at = 0
  // where `b` goes in the blob: [offset, length], or [0, −1] for none
  const place = (b: Uint8Array | undefined): [number, number] => {
    if (!b) return [0, -1]
    parts.push(b)
    at += b.length
    return [at - b.length, b.length]
  }
  const live = [...tree.inodes.values()].filter(n => !n.deleted)
  const inodes = new Float64Array(live.length * INODE_FIELDS)
  const chunks = new Float64Array(live.reduce((sum, n) => sum + n.chunks.size * 4, 0))
  let ci = 0
  for (let i = 0; i < live.length; i++) {
    const n = live[i]!
    for (const [index, ref] of n.chunks) {
      if (ref.pos < 0) return undefined
      chunks.set([index, ref.version, ref.pos, ref.len], ci)
      ci += 4
    }
    inodes.set([n.ino, n.keyParent, n.version, ...place(n.sealedMeta), n.chunkVersion, n.chunks.size, n.xattrVersion, ...place(n.sealedXattrs), n.fileMeta?.version ?? 0, ...place(n.fileMeta?.sealed)], i * INODE_FIELDS)
  }
  const linkList = [...tree.links.values()]
  const links = new Float64Array(linkList.length * 5)
  linkList.forEach((l, i) => links.set([l.id, l.dir, l.version, ...place(l.sealed)], i * 5))
  return {
    magic: MAGIC,
    location: trustKey(backend),
    keyId: identity.keyId,
    chainId: tree.chainId,
    genesisHash: new Uint8Array(0),
    genesis: undefined as unknown as GenesisEvent,
    baseSeq: state.baseSeq,
    headSeq: state.headSeq,
    headHash: state.headHash,
    formatVersion: state.formatVersion,
    end: state.end,
    offsets: Float64Array.from(state.offsets),
    ownBlocks: state.ownBlocks,
    blocks: state.blocks,
    events: state.events,
    writers: [...state.writers.values()].map(w => ({ ...w, scope: w.scope ? [...w.scope] : undefined })),
    maxIno: tree.maxIno,
    maxLink: tree.maxLink,
    grants: [...tree.grants],
    groups: [...tree.groups.values()],
    blob: Buffer.concat(parts, at),
    inodes,
    chunks,
    links,
  }
}

/** Reads the frame at `at`: its block, hash, and where the next frame starts. */
async function frameAt(log: LogReader, at: number): Promise<{ block: ReturnType<typeof decodeBlock>['block']; hash: Buffer; next: number }> {
  const head = Buffer.alloc(FRAME_HEADER_BYTES)
  const { bytesRead } = await log.read(head, 0, FRAME_HEADER_BYTES, at)
  if (bytesRead !== FRAME_HEADER_BYTES) throw new Error(`no frame at byte ${at}`)
  const len = head.readUInt32LE(4)
  const body = Buffer.allocUnsafe(len)
  if ((await log.read(body, 0, len, at + FRAME_HEADER_BYTES)).bytesRead !== len) throw new Error(`the frame at byte ${at} runs past the end of the log`)
  const { block, signedLength } = decodeBlock(body)
  return { block, hash: blockHash(blockDigest(body.subarray(0, signedLength)), block.signature), next: at + FRAME_HEADER_BYTES + len }
}
