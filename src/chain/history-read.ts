import { NoAccessError } from './chain-options.ts'
import { decodeBlock, FRAME_HEADER_BYTES, type ChainEvent } from './format.ts'
import { unlockTree } from './sharing.ts'
import type { Chain } from './store.ts'
import { ChainTree } from './tree.ts'

/**
 * Builds the tree of `chain` as it was right after block `seq` (for `/.history`), from the
 * log's base on, and unlocks it with the keys the chain's identity held then: the grants of
 * that time, so a block from before a key rotation of `/` (or of a folder granted to a
 * reader) opens with the key it was sealed under. With no grant then (the identity was
 * given the chain later), the current keys are used, as a reader of the chain now.
 */
export async function treeAtSeq(chain: Chain, seq: number): Promise<ChainTree> {
  const tree = new ChainTree(chain.chainId)
  for (let s = chain.baseSeq; s <= seq; s++) {
    const b = await readBlockOf(chain, s)
    if (!b) break
    for (const e of b.events) tree.apply(e, b.bodyOffset)
  }
  try {
    unlockTree(tree, chain.identity, chain.path)
  } catch (err) {
    if (!(err instanceof NoAccessError)) throw err
    tree.rootKey = chain.tree.rootKey
    tree.partial = chain.tree.partial
  }
  return tree
}

/** Reads the frame of block `seq` back from the log of `chain` (for history views); undefined when the log no longer holds it. */
export async function readBlockOf(chain: Chain, seq: number): Promise<{ events: ChainEvent[]; bodyOffset: number } | undefined> {
  const at = chain.blockOffsets[seq - chain.baseSeq]
  if (at === undefined) return undefined
  const head = Buffer.alloc(FRAME_HEADER_BYTES)
  await chain.fileHandle.read(head, 0, FRAME_HEADER_BYTES, at)
  const len = head.readUInt32LE(4)
  const body = Buffer.allocUnsafe(len)
  await chain.fileHandle.read(body, 0, len, at + FRAME_HEADER_BYTES)
  return { events: decodeBlock(body).block.events, bodyOffset: at + FRAME_HEADER_BYTES }
}
