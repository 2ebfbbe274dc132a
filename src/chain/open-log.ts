import { facetHome, keyIdOf, shortKeyId } from '../crypto/identity.ts'
import { acquirePqPool, type PqLease } from '../crypto/pq-pool.ts'
import { silentLogger } from '../vfs/log.ts'
import type { ChainBackend, ChainLog } from './backend.ts'
import type { ChainOptions, OpenReport } from './chain-options.ts'
import { FILE_HEADER_BYTES } from './format.ts'
import { checkpointDue, hashFromLog, readCheckpoint, writeCheckpoint } from './checkpoint.ts'
import { BlockVerifier, ChainIntegrityError, scanLog } from './log.ts'
import { unlockTree } from './sharing.ts'
import { ChainTree } from './tree.ts'
import { assessChain, describeChain, legacyTrustKey, movePin, pinOf, readTrust, trustKey, writePin, type ChainFacts } from './trust.ts'

/** A chain's log opened, every block verified, held against the trust store, and unlocked for an identity: what a `Chain` is made from. */
export interface VerifiedLog {
  fh: ChainLog
  verifier: BlockVerifier
  tree: ChainTree
  /** Where the verified blocks end (the next block's offset). */
  end: number
  report: OpenReport
  /** Frame offsets of the blocks, by seq − baseSeq. */
  offsets: number[]
  /** The writer lock's release (undefined when opened read-only). */
  unlock: (() => Promise<void>) | undefined
  /** The signature workers leased while verifying, if any. */
  pq: PqLease | undefined
}

/**
 * Opens the log of `backend` (taking the writer lock unless read-only), verifies every
 * block (hash chain and signatures), holds it against the trust store (the chain id and
 * owner pinned for this location, and the last head seen), unwraps the keys of
 * `options.identity`, and only then cuts a torn tail of a file log: a refused open leaves
 * the log as it was. The first open of an existing chain at a location pins it and says
 * so (a warning; `created` makes it an info).
 */
export async function openVerifiedLog(backend: ChainBackend, options: ChainOptions, created: boolean): Promise<VerifiedLog> {
  const path = backend.name
  const logger = options.logger ?? silentLogger
  const readOnly = options.readOnly === true
  let unlock = readOnly ? undefined : await backend.lock()
  let fh: ChainLog | undefined
  let pq: PqLease | undefined
  try {
    fh = await backend.open(readOnly)
    const home = options.home ?? facetHome()
    const id = options.identity
    const me = Buffer.from(id.keyId)
    const size = await fh.size()
    // the identity's checkpoint of a log file, when it holds: only the blocks after it are verified
    const useCheckpoint = options.checkpoints !== false && backend.kind === 'file'
    const from = useCheckpoint ? await readCheckpoint(home, backend, fh, size, id, logger) : undefined
    const verifier = from?.verifier ?? new BlockVerifier()
    verifier.pool = () => (pq ??= acquirePqPool()).pool
    let tree: ChainTree | undefined = from?.tree
    const offsets: number[] = from?.offsets ?? []
    let ownBlocks = from?.ownBlocks ?? 0
    const scan = await scanLog(fh, verifier, v => {
      tree ??= new ChainTree(v.block.chainId)
      for (const e of v.block.events) tree.apply(e, v.bodyOffset)
      offsets.push(v.frameOffset)
      if (v.block.seq > 0 && me.equals(v.block.author)) ownBlocks++
    }, from?.end ?? FILE_HEADER_BYTES, size)
    if (!tree) throw new ChainIntegrityError('the log holds no complete block', 0, FILE_HEADER_BYTES)
    tree.padding = options.padding !== false
    const report: OpenReport = { blocks: (from?.blocks ?? 0) + scan.blocks, events: (from?.events ?? 0) + scan.events, headSeq: verifier.headSeq, tornTail: scan.tornTail, ownBlocks }
    if (from) report.checkpoint = { seq: from.seq, end: from.end, tailBlocks: scan.blocks }
    const torn = scan.tornTail
    // a store that appends whole blocks atomically has no torn writes: a damaged last block was altered
    if (torn && !backend.tornTails) throw new ChainIntegrityError('damaged frame (bad length or checksum): the block was altered', torn.seq, torn.offset)
    const genesis = verifier.genesis!
    // a verifier gone on from a checkpoint holds the hashes of its ends only: the trusted head's is read from the log
    const trusted = from && options.trust !== false ? await readTrust(home, tree.chainId).catch(() => undefined) : undefined
    if (trusted && trusted.seq >= verifier.baseSeq && trusted.seq <= verifier.headSeq && !verifier.hashAt(trusted.seq)) verifier.hashes[trusted.seq - verifier.baseSeq] = (await hashFromLog(fh, offsets, verifier.baseSeq, trusted.seq))!
    const facts: ChainFacts = {
      key: trustKey(backend),
      legacyKey: legacyTrustKey(backend),
      chainId: tree.chainId,
      ownerName: genesis.ownerName,
      ownerKeyId: keyIdOf(genesis.ownerSigningKey, genesis.ownerKemKey),
      baseSeq: verifier.baseSeq,
      headSeq: verifier.headSeq,
      hashAt: s => verifier.hashAt(s),
      tornTail: torn,
      ownBlocks,
    }
    const trust = options.trust === false ? undefined : await assessChain(home, facts)
    if (trust?.untrusted) throw trust.untrusted
    if (trust?.rollback) {
      if (!options.allowRollback) throw trust.rollback
      report.rollbackAccepted = trust.rollback.message
      logger.warn({ path }, `accepted by override (--allow-rollback): ${trust.rollback.message}`)
    }
    // the root key, or (a reader of some folders only) the keys of the folders granted
    unlockTree(tree, id, path)
    // every check has passed: only now is anything changed on disk
    if (torn) {
      if (!readOnly) await fh.truncate(torn.offset)
      logger.warn({ path, offset: torn.offset, bytes: torn.bytes, seq: torn.seq, reason: torn.reason }, `chain ${path}: torn tail of ${torn.bytes} bytes after block ${torn.seq - 1} ${readOnly ? 'ignored' : 'cut'} (an unfinished write from a crash: ${torn.reason})`)
    }
    if (trust?.pin && trust.legacy) await movePin(home, trust.pin, facts.key)
    if (trust && !trust.pin) {
      const pin = pinOf(facts)
      await writePin(home, pin)
      report.pinned = pin
      const notMine = !me.equals(facts.ownerKeyId) ? ` — not the identity opening it ('${id.name}', key ${shortKeyId(id.keyId)}): trust it only if you expected someone else's chain here` : ''
      if (created) logger.info({ path }, `chain ${path}: pinned ${describeChain(pin)}`)
      else logger.warn({ path, chainId: pin.chainId, owner: pin.owner.keyId }, `chain ${path}: first use here; pinned ${describeChain(pin)}${notMine}`)
    }
    // an identity the chain takes no blocks from opens it read-only: it must not keep its writers out
    if (unlock && !verifier.writers.has(me.toString('hex'))) {
      const u = unlock
      unlock = undefined
      await u()
    }
    // enough verified past the last checkpoint (or none): write one now, from the state just verified
    const state = { tree, writers: verifier.writers, baseSeq: verifier.baseSeq, headSeq: verifier.headSeq, headHash: verifier.headHash, formatVersion: verifier.formatVersion, end: scan.end, offsets, ownBlocks, blocks: report.blocks, events: report.events }
    if (useCheckpoint && !torn && checkpointDue(state, report.checkpoint)) {
      if (await writeCheckpoint(home, backend, fh, id, state).catch(err => void logger.warn({ path, err }, `chain ${path}: could not write a checkpoint: ${(err as Error).message}`))) report.checkpointWritten = { seq: state.headSeq, end: state.end }
    }
    return { fh, verifier, tree, end: scan.end, report, offsets, unlock, pq }
  } catch (err) {
    await pq?.release()
    await fh?.close()
    await unlock?.()
    throw err
  }
}
