import { randomBytes } from '../crypto/primitives.ts'
import { nowNs } from '../vfs/stat.ts'
import { CHAIN_ID_BYTES, DEFAULT_CHUNK_SIZE, FORMAT_VERSION, ROOT_INO, type UnsignedBlock } from './format.ts'
import type { CreateChainOptions } from './chain-options.ts'
import { wrapForReader } from './keys.ts'
import { signBlock } from './signing.ts'
import { ChainTree, type InodeMeta } from './tree.ts'

/**
 * The genesis block of a new chain owned by `options.identity`, signed: a genesis event
 * naming the owner's public keys, the root directory's key wrapped for the owner, and the
 * root's metadata (a folder of mode 755 owned by this process's uid and gid).
 */
export function newGenesis(options: CreateChainOptions): { chainId: Uint8Array; seq: number; body: Buffer } {
  const id = options.identity
  const chainId = randomBytes(CHAIN_ID_BYTES)
  const rootKey = ChainTree.newKey()
  const tree = new ChainTree(chainId)
  tree.padding = options.padding !== false
  tree.rootKey = rootKey
  const root = tree.inode(ROOT_INO)
  const ns = nowNs()
  const meta: InodeMeta = { name: '', parent: 0, kind: 'dir', mode: 0o755, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, atimeNs: ns, mtimeNs: ns, ctimeNs: ns, size: 0, key: rootKey }
  const sealed = tree.sealMeta(root, meta)
  const grant = wrapForReader(rootKey, chainId, ROOT_INO, id.keyId, id.kemPublicKey)
  const block: UnsignedBlock = {
    formatVersion: FORMAT_VERSION,
    chainId,
    seq: 0,
    prevHash: Buffer.alloc(32),
    time: Date.now(),
    author: id.keyId,
    events: [
      { type: 'genesis', formatVersion: FORMAT_VERSION, chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE, ownerName: id.name, ownerSigningKey: id.signingPublicKey, ownerKemKey: id.kemPublicKey },
      { type: 'keyGrant', ino: ROOT_INO, reader: id.keyId, ...grant },
      { type: 'inodePut', ino: ROOT_INO, ...sealed },
    ],
  }
  return { chainId, seq: 0, body: signBlock(block, id).body }
}
