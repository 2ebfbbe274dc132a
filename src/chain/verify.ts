import { open } from 'node:fs/promises'
import { facetHome } from '../crypto/identity.ts'
import { acquirePqPool, type PqLease } from '../crypto/pq-pool.ts'
import { BlockVerifier, ChainIntegrityError, scanLog } from './log.ts'
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
 * checksums, the hash chain, every signature and writer authorisation, and the trust
 * store. Changes nothing on disk. A torn tail counts as a problem. Signatures of long logs
 * are checked on worker threads, which end before this returns.
 */
export async function verifyChain(path: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const verifier = new BlockVerifier()
  let pq: PqLease | undefined
  verifier.pool = () => (pq ??= acquirePqPool()).pool
  const report: VerifyReport = { ok: false, path, blocks: 0, events: 0, headSeq: -1 }
  const fh = await open(path, 'r')
  try {
    const scan = await scanLog(fh, verifier, v => {
      report.blocks++
      report.events += v.block.events.length
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
