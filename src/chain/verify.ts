import { facetHome, keyIdOf } from '../crypto/identity.ts'
import { acquirePqPool, type PqLease } from '../crypto/pq-pool.ts'
import { fileBackend, type ChainBackend } from './backend.ts'
import { FILE_HEADER_BYTES } from './format.ts'
import { BlockVerifier, ChainIntegrityError, scanLog, type VerifiedBlock } from './log.ts'
import { assessChain, legacyTrustKey, movePin, pinOf, readPin, readTrust, RollbackError, trustKey, TrustStoreError, writePin, writeTrust, type ChainFacts, type ChainPin } from './trust.ts'

/** The outcome of {@link verifyChain}. */
export interface VerifyReport {
  ok: boolean
  path: string
  /** The chain id in hex, when the genesis block could be read. */
  chainId?: string | undefined
  /** The owner the genesis names, when it could be read. */
  owner?: { name: string; keyId: string } | undefined
  blocks: number
  events: number
  /** Sequence number of the last good block, -1 when none. */
  headSeq: number
  /** Hash of that block, hex, when there is one. */
  headHash?: string | undefined
  /** What the trust store pins for this path (undefined when nothing is pinned, or the trust store was not checked). */
  pin?: ChainPin | undefined
  /**
   * The first problem: the bad block's seq, its byte offset (-1 when the problem is not in
   * the bytes) and why. `kind` is `block` for damage in the log, `trust` when the log is
   * sound but the trust store refuses it (another chain than the one pinned, a rollback).
   */
  problem?: { seq: number; offset: number; reason: string; kind?: 'block' | 'trust' } | undefined
}

/** Options for {@link verifyChain}. */
export interface VerifyOptions {
  /** The FacetFS home whose trust store is checked. @default facetHome() */
  home?: string
  /** Check the trust store: the chain pinned for this path, and a rolled-back or forked log. @default true */
  trust?: boolean
}

/**
 * Checks a chain log without opening it for use and without any secret key: the frame
 * checksums, the hash chain, every signature and writer authorisation, the trust store
 * (the chain id and owner pinned for this path, the last head seen here), and the shape of
 * the tree that shows in clear: every extra name (hard link) lies in a directory the log
 * holds and is dropped at most once, and nothing names an inode after its tombstone.
 * Changes nothing on disk. A torn tail counts as a problem; one at or before a head seen
 * here is reported as damage, not as a crash. A damaged trust store throws
 * {@link TrustStoreError}. Signatures of long logs are checked on worker threads, which
 * end before this returns.
 */
export async function verifyChain(where: string | ChainBackend, options: VerifyOptions = {}): Promise<VerifyReport> {
  const backend = typeof where === 'string' ? fileBackend(where) : where
  const path = backend.name
  const verifier = new BlockVerifier()
  let pq: PqLease | undefined
  verifier.pool = () => (pq ??= acquirePqPool()).pool
  const report: VerifyReport = { ok: false, path, blocks: 0, events: 0, headSeq: -1 }
  const shape = new ShapeCheck()
  const home = options.home ?? facetHome()
  const fh = await backend.open(true)
  try {
    const scan = await scanLog(
      fh,
      verifier,
      v => {
        report.blocks++
        report.events += v.block.events.length
        shape.block(v)
      },
      FILE_HEADER_BYTES,
      await fh.size(),
    )
    report.headSeq = verifier.headSeq
    if (verifier.chainId) report.chainId = Buffer.from(verifier.chainId).toString('hex')
    if (report.blocks > 0) report.headHash = verifier.headHash.toString('hex')
    const g = verifier.genesis
    if (g) report.owner = { name: g.ownerName, keyId: keyIdOf(g.ownerSigningKey, g.ownerKemKey).toString('hex') }
    const t = scan.tornTail
    if (report.blocks === 0) {
      report.problem = { seq: 0, offset: 16, reason: t ? `the log holds no whole block (${t.reason})` : 'the log holds no block', kind: 'block' }
      return report
    }
    const facts: ChainFacts = {
      key: trustKey(backend),
      legacyKey: legacyTrustKey(backend),
      chainId: verifier.chainId!,
      ownerName: g!.ownerName,
      ownerKeyId: keyIdOf(g!.ownerSigningKey, g!.ownerKemKey),
      baseSeq: verifier.baseSeq,
      headSeq: verifier.headSeq,
      hashAt: s => verifier.hashAt(s),
      tornTail: t,
    }
    const trust = options.trust === false ? undefined : await assessChain(home, facts)
    report.pin = trust?.pin
    if (trust?.untrusted) {
      report.problem = { seq: verifier.baseSeq, offset: -1, reason: trust.untrusted.message, kind: 'trust' }
      return report
    }
    if (trust?.rollback instanceof RollbackError && trust.rollback.kind === 'damaged' && t) {
      report.problem = { seq: t.seq, offset: t.offset, reason: trust.rollback.message, kind: 'block' }
      return report
    }
    if (t) {
      report.problem = { seq: t.seq, offset: t.offset, reason: `torn tail: ${t.bytes} bytes after the last good block do not form a valid block (${t.reason}); a write cut short by a crash, cut on the next writable open`, kind: 'block' }
      return report
    }
    const bad = shape.finish()
    if (bad) {
      report.problem = { ...bad, kind: 'block' }
      return report
    }
    if (trust?.rollback) {
      const r = trust.rollback
      report.problem = { seq: 'seq' in r ? r.seq : verifier.headSeq, offset: -1, reason: r.message, kind: 'trust' }
      return report
    }
    report.ok = true
    return report
  } catch (err) {
    if (!(err instanceof ChainIntegrityError)) throw err
    report.headSeq = verifier.headSeq
    if (verifier.chainId) report.chainId = Buffer.from(verifier.chainId).toString('hex')
    report.problem = { seq: err.seq, offset: err.offset, reason: err.reason, kind: 'block' }
    return report
  } finally {
    await pq?.release()
    await fh.close()
  }
}

/** What {@link acceptChain} did. */
export interface AcceptReport {
  /** The pin now kept for the path. */
  pin: ChainPin
  /** The pin it replaced, when there was one (undefined also when the old pin file was damaged: see `replacedDamaged`). */
  previous?: ChainPin | undefined
  /** Damaged trust store files that were replaced. */
  replacedDamaged: string[]
  /** The head now recorded for the chain, when none (or a damaged one) was kept before. */
  recordedHead?: { seq: number; hash: string } | undefined
  report: VerifyReport
}

/**
 * Accepts the chain at `path` (a log file, or a backend such as a PostgreSQL table) as the
 * one to trust there from now on (`facet trust accept`): verifies it fully without the
 * trust store, refuses it when it does not verify, then pins its chain id and owner for
 * the location. The last head seen of its chain id is kept, so a rolled-back log stays
 * refused (that takes `--allow-rollback`); when no head, or a damaged one, was kept, the
 * log's head is recorded.
 */
export async function acceptChain(path: string | ChainBackend, options: { home?: string } = {}): Promise<AcceptReport> {
  const home = options.home ?? facetHome()
  const backend = typeof path === 'string' ? fileBackend(path) : path
  const report = await verifyChain(backend, { home, trust: false })
  if (!report.ok) {
    const p = report.problem!
    throw new ChainIntegrityError(`will not trust a chain that does not verify: ${p.reason}`, p.seq, p.offset)
  }
  const key = trustKey(backend)
  const legacyKey = legacyTrustKey(backend)
  const replacedDamaged: string[] = []
  let previous: ChainPin | undefined
  let legacy: ChainPin | undefined
  try {
    previous = await readPin(home, key)
    if (!previous && legacyKey !== undefined && legacyKey !== key) previous = legacy = await readPin(home, legacyKey)
  } catch (err) {
    if (!(err instanceof TrustStoreError)) throw err
    replacedDamaged.push(err.file)
  }
  const chainId = Buffer.from(report.chainId!, 'hex')
  const pin = { ...pinOf({ key, chainId, ownerName: report.owner!.name, ownerKeyId: Buffer.from(report.owner!.keyId, 'hex') }, true), ...(previous && previous.chainId === report.chainId && previous.owner.keyId === report.owner!.keyId ? { pinned: previous.pinned } : {}) }
  let head: { seq: number; hash: string } | undefined
  let recordedHead: AcceptReport['recordedHead']
  try {
    head = await readTrust(home, chainId)
  } catch (err) {
    if (!(err instanceof TrustStoreError)) throw err
    replacedDamaged.push(err.file)
  }
  if (!head) {
    recordedHead = { seq: report.headSeq, hash: report.headHash! }
    await writeTrust(home, chainId, recordedHead)
  }
  if (legacy) await movePin(home, legacy, key)
  await writePin(home, pin)
  report.pin = pin
  return { pin, previous, replacedDamaged, recordedHead, report }
}

/**
 * Follows what a reader without keys sees of the tree: which inodes have metadata and
 * which are gone, and where each extra name (hard link) lies. The first problem wins.
 */
class ShapeCheck {
  private readonly live = new Set<number>()
  private readonly gone = new Set<number>()
  private readonly links = new Map<number, { dir: number; seq: number; offset: number }>()
  private problem: { seq: number; offset: number; reason: string } | undefined

  block(v: VerifiedBlock): void {
    const fail = (reason: string) => void (this.problem ??= { seq: v.block.seq, offset: v.frameOffset, reason })
    for (const e of v.block.events) {
      switch (e.type) {
        case 'inodePut':
          this.live.add(e.ino)
          break
        case 'tombstone':
          this.live.delete(e.ino)
          this.gone.add(e.ino)
          break
        case 'linkPut':
          if (this.gone.has(e.dir)) fail(`link ${e.link} is put in directory ${e.dir} after its tombstone`)
          this.links.set(e.link, { dir: e.dir, seq: v.block.seq, offset: v.frameOffset })
          break
        case 'linkDrop':
          if (!this.links.delete(e.link)) fail(`link ${e.link} is dropped but was never put`)
          break
        case 'xattrPut':
          if (this.gone.has(e.ino)) fail(`extended attributes of inode ${e.ino} are put after its tombstone`)
          break
        case 'fileMeta':
          if (this.gone.has(e.ino)) fail(`the readers' copy of the metadata of inode ${e.ino} is put after its tombstone`)
          break
        default:
          break
      }
    }
  }

  /** The first problem, once every block is in. */
  finish(): { seq: number; offset: number; reason: string } | undefined {
    if (this.problem) return this.problem
    for (const [id, l] of this.links) {
      if (!this.live.has(l.dir)) return { seq: l.seq, offset: l.offset, reason: `link ${id} lies in directory ${l.dir}, which the log does not hold` }
    }
    return undefined
  }
}
