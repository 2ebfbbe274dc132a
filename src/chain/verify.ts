import { open } from 'node:fs/promises'
import { facetHome } from '../crypto/identity.ts'
import { acquirePqPool, type PqLease } from '../crypto/pq-pool.ts'
import { BlockVerifier, ChainIntegrityError, scanLog, type VerifiedBlock } from './log.ts'
import { checkTrust, readTrust } from './trust.ts'

/** The outcome of {@link verifyChain}. */
export interface VerifyReport {
  ok: boolean
  path: string
  /** The chain id in hex, when the genesis block could be read. */
  chainId?: string | undefined
  blocks: number
  events: number
  /** Sequence number of the last good block, -1 when none. */
  headSeq: number
  /** The first problem: the bad block's seq, its byte offset and why. */
  problem?: { seq: number; offset: number; reason: string } | undefined
}

/** Options for {@link verifyChain}. */
export interface VerifyOptions {
  /** The FacetFS home whose trust store is checked. @default facetHome() */
  home?: string
  /** Check the trust store for a rolled-back or forked log. @default true */
  trust?: boolean
}

/**
 * Checks a chain log without opening it for use and without any secret key: the frame
 * checksums, the hash chain, every signature and writer authorisation, the trust
 * store, and the shape of the tree that shows in clear: every extra name (hard link)
 * lies in a directory the log holds and is dropped at most once, and nothing names an
 * inode after its tombstone. Changes nothing on disk. A torn tail counts as a problem. Signatures of long logs
 * are checked on worker threads, which end before this returns.
 */
export async function verifyChain(path: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const verifier = new BlockVerifier()
  let pq: PqLease | undefined
  verifier.pool = () => (pq ??= acquirePqPool()).pool
  const report: VerifyReport = { ok: false, path, blocks: 0, events: 0, headSeq: -1 }
  const shape = new ShapeCheck()
  const fh = await open(path, 'r')
  try {
    const scan = await scanLog(fh, verifier, v => {
      report.blocks++
      report.events += v.block.events.length
      shape.block(v)
    })
    report.headSeq = verifier.headSeq
    if (verifier.chainId) report.chainId = Buffer.from(verifier.chainId).toString('hex')
    if (scan.tornTail) {
      const t = scan.tornTail
      report.problem = { seq: t.seq, offset: t.offset, reason: `torn or damaged tail: ${t.bytes} bytes after the last good block do not form a valid block` }
      return report
    }
    if (report.blocks === 0) {
      report.problem = { seq: 0, offset: 16, reason: 'the log holds no block' }
      return report
    }
    const bad = shape.finish()
    if (bad) {
      report.problem = bad
      return report
    }
    if (options.trust !== false && verifier.chainId) {
      const problem = checkTrust(await readTrust(options.home ?? facetHome(), verifier.chainId), { baseSeq: verifier.baseSeq, headSeq: verifier.headSeq, hashAt: s => verifier.hashAt(s) })
      if (problem) {
        report.problem = { seq: problem.seq, offset: -1, reason: problem.message }
        return report
      }
    }
    report.ok = true
    return report
  } catch (err) {
    if (!(err instanceof ChainIntegrityError)) throw err
    report.headSeq = verifier.headSeq
    if (verifier.chainId) report.chainId = Buffer.from(verifier.chainId).toString('hex')
    report.problem = { seq: err.seq, offset: err.offset, reason: err.reason }
    return report
  } finally {
    await pq?.release()
    await fh.close()
  }
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
