import { compactChain, type CompactReport } from './compact.ts'
import { ROOT_INO } from './format.ts'
import { resolveFolder, rotateSubtreeKeys, type RotateOptions, type RotationReport } from './rotation.ts'
import { requireOwner, ShareError } from './sharing.ts'
import type { Chain } from './store.ts'
import type { Inode } from './tree.ts'

/** What {@link rekeyChainPath} did. */
export interface RekeyReport {
  /** The key rotation it began with, unless `rotate: false`. */
  rotation?: RotationReport | undefined
  /** Files whose content was sealed again under their current key, and how many chunks and bytes (plaintext) that took. */
  files: number
  chunks: number
  bytes: number
  /** The compaction that then dropped the old ciphertext from the log. */
  compaction: CompactReport
}

/**
 * Re-encrypts the subtree of folder `path` of `chain` (open read-write by its owner) under
 * fresh keys: first a key rotation ({@link rotateSubtreeKeys}, unless `rotate: false`, as
 * right after one), then every chunk still sealed under an earlier key is read and written
 * again under its file's current key (ordinary blocks; the files' times are kept), the
 * earlier keys leave the files' metadata, and the log is compacted (compact.ts: a new log
 * written beside the old one, fdatasync'd, renamed over it). Once the old log is gone, no key
 * used in the subtree before the rekey opens anything in the new log. A crash before the
 * compaction's rename leaves the old log with the rotation and part of the rewritten chunks
 * (every file readable; running rekey again finishes it); after it, the new log, whole.
 * Log files only: a chain in PostgreSQL is refused with a {@link ShareError} before anything
 * is written (chunks read and written back there would race other nodes' writes).
 */
export async function rekeyChainPath(chain: Chain, path: string, options: { rotate?: boolean; readers?: RotateOptions['readers'] } = {}): Promise<RekeyReport> {
  requireOwner(chain)
  if (chain.backend.kind !== 'file')
    throw new ShareError(`rekey works on log files only: on ${chain.path}, a ${chain.backend.kind} store, its rewrite of old chunks would race other nodes' writes. facet unshare still rotates keys there (what is written later is out of the revoked reader's reach), but existing content stays under the old keys`)
  const folder = resolveFolder(chain, path)
  const rotation = options.rotate === false ? undefined : await rotateSubtreeKeys(chain, [folder], { readers: options.readers })
  const tree = chain.tree
  const cs = chain.chunkSize
  let files = 0
  let chunks = 0
  let bytes = 0
  for (const n of subtree(chain, folder)) {
    const m = tree.meta(n)
    if (!m.keyHistory) continue
    const last = m.keyHistory[m.keyHistory.length - 1]!.upTo
    const stale = [...n.chunks].filter(([, r]) => r.version <= last).map(([i]) => i).sort((a, b) => a - b)
    const { atimeNs, mtimeNs, ctimeNs } = m
    for (const i of stale) {
      const data = await chain.read(n, i * cs, cs)
      await chain.write(n, i * cs, data)
      chunks++
      bytes += data.length
    }
    // written back, not changed: the times stay, and the earlier keys are needed no more
    const now = tree.meta(n)
    now.atimeNs = atimeNs
    now.mtimeNs = mtimeNs
    now.ctimeNs = ctimeNs
    now.keyHistory = undefined
    n.oldChunkKeys = undefined
    chain.namespace.resealed(n)
    files++
  }
  await chain.sync()
  const compaction = await compactChain(chain)
  return { rotation, files, chunks, bytes, compaction }
}

/** The live inodes of `folder`'s subtree by first names, `folder` included. */
function* subtree(chain: Chain, folder: Inode): Generator<Inode> {
  const queue = [folder]
  while (queue.length > 0) {
    const n = queue.pop()!
    yield n
    for (const c of n.children) {
      const child = chain.tree.inodes.get(c)
      if (child && !child.deleted && child.ino !== ROOT_INO) queue.push(child)
    }
  }
}
