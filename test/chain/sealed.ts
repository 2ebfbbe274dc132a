import { readFile } from 'node:fs/promises'
import { open as openSealed } from '../../src/crypto/primitives.ts'
import { chunkAad, chunkKeyOf, fileMetaAad, fileMetaKeyOf, linkAad, metaAad, metaKeyOf, xattrAad, xattrKeyOf } from '../../src/chain/keys.ts'
import { decodeBlock, FILE_HEADER_BYTES, FRAME_HEADER_BYTES, type ChainEvent } from '../../src/chain/format.ts'
import type { Chain } from '../../src/chain/store.ts'

/* What a reader's keys open in a chain's log: the checks that revocation puts new records out of reach. */

/** Every inode key `chain`'s tree can open: what a reader has unwrapped and could keep. */
export function keysOf(chain: Chain): Buffer[] {
  const tree = chain.tree
  const out: Buffer[] = []
  for (const n of tree.inodes.values()) {
    if (tree.partial && !tree.partial.readable(tree, n.ino)) continue
    try {
      out.push(Buffer.from(tree.meta(n).key))
    } catch {
      // above a granted folder: no key
    }
  }
  return out.filter(k => !k.equals(Buffer.alloc(32)))
}

/** The events of the blocks of log file `path` from seq `from` on, and the seq of its last block. */
export async function eventsFrom(path: string, from: number): Promise<ChainEvent[]> {
  const log = await readFile(path)
  const out: ChainEvent[] = []
  for (let at = FILE_HEADER_BYTES; at < log.length; ) {
    const len = log.readUInt32LE(at + 4)
    const { block } = decodeBlock(log.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + len))
    if (block.seq >= from) out.push(...block.events)
    at += FRAME_HEADER_BYTES + len
  }
  return out
}

/** How many sealed records and chunks of `events` some key of `keys` opens, and how many were tried. */
export function openedWith(keys: Buffer[], events: ChainEvent[], chainId: Uint8Array): { tried: number; opened: number } {
  let tried = 0
  let opened = 0
  const attempt = (f: (k: Buffer) => unknown) => {
    tried++
    for (const k of keys) {
      try {
        f(k)
        opened++
        return
      } catch {
        // does not open with this key
      }
    }
  }
  for (const e of events) {
    if (e.type === 'inodePut') attempt(k => openSealed(metaKeyOf(k, chainId), e.sealedMeta, metaAad(chainId, e.ino, e.keyParent, e.version)))
    else if (e.type === 'chunkPut') attempt(k => openSealed(chunkKeyOf(k, chainId), e.sealed, chunkAad(chainId, e.ino, e.index, e.version)))
    else if (e.type === 'linkPut') attempt(k => openSealed(metaKeyOf(k, chainId), e.sealed, linkAad(chainId, e.link, e.dir, e.version)))
    else if (e.type === 'xattrPut') attempt(k => openSealed(xattrKeyOf(k, chainId), e.sealed, xattrAad(chainId, e.ino, e.version)))
    else if (e.type === 'fileMeta') attempt(k => openSealed(fileMetaKeyOf(k, chainId), e.sealed, fileMetaAad(chainId, e.ino, e.version)))
  }
  return { tried, opened }
}
