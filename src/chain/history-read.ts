import { NoAccessError } from './chain-options.ts'
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
    const b = await chain.readBlock(s)
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
