import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, type Identity, type PublicIdentity } from '../../src/crypto/identity.ts'
import { randomBytes } from '../../src/crypto/primitives.ts'
import { fileBackend, type ChainBackend } from '../../src/chain/backend.ts'
import { CHAIN_ID_BYTES, FORMAT_VERSION, DEFAULT_CHUNK_SIZE, ROOT_INO } from '../../src/chain/format.ts'
import { wrapForReader } from '../../src/chain/keys.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { Chain, signBlock } from '../../src/chain/store.ts'
import { ChainTree } from '../../src/chain/tree.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'

/**
 * The attack of issue 12, built with FacetFS's own code: someone who knows only the
 * victim's public keys makes a fresh chain (a new chain id, the attacker as owner, named
 * like the victim's identity), wraps its root key for the victim's ML-KEM key as well as
 * for the attacker's, writes `files` into it as the owner, and leaves the log at `path`
 * (to be moved over the victim's chain) or in a backend (a PostgreSQL table the victim's
 * rows were deleted from). `chainId` forges the victim's own id. Returns the attacker.
 */
export async function forgeChain(path: string | ChainBackend, victim: PublicIdentity, files: Record<string, string>, ownerName = 'default', chainId: Uint8Array = randomBytes(CHAIN_ID_BYTES)): Promise<Identity> {
  const attacker = (({ seeds: _s, ...id }) => id)(generateIdentity(ownerName))
  const backend = typeof path === 'string' ? fileBackend(path) : path
  const rootKey = ChainTree.newKey()
  const tree = new ChainTree(chainId)
  tree.rootKey = rootKey
  const now = BigInt(Date.now()) * 1_000_000n
  const sealed = tree.sealMeta(tree.inode(ROOT_INO), { name: '', parent: 0, kind: 'dir', mode: 0o755, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, atimeNs: now, mtimeNs: now, ctimeNs: now, size: 0, key: rootKey })
  const { body } = signBlock(
    {
      formatVersion: FORMAT_VERSION,
      chainId,
      seq: 0,
      prevHash: Buffer.alloc(32),
      time: Date.now(),
      author: attacker.keyId,
      events: [
        { type: 'genesis', formatVersion: FORMAT_VERSION, chunkSize: DEFAULT_CHUNK_SIZE, ownerName: attacker.name, ownerSigningKey: attacker.signingPublicKey, ownerKemKey: attacker.kemPublicKey },
        { type: 'keyGrant', ino: ROOT_INO, reader: attacker.keyId, ...wrapForReader(rootKey, chainId, ROOT_INO, attacker.keyId, attacker.kemPublicKey) },
        { type: 'keyGrant', ino: ROOT_INO, reader: victim.keyId, ...wrapForReader(rootKey, chainId, ROOT_INO, victim.keyId, victim.kemPublicKey) },
        { type: 'inodePut', ino: ROOT_INO, ...sealed },
      ],
    },
    attacker,
  )
  await backend.create({ chainId, seq: 0, body })
  // the attacker writes as the owner, on a machine (home) of their own
  const home = await mkdtemp(join(tmpdir(), 'facet-attacker-'))
  try {
    const chain = await Chain.open(backend, { identity: attacker, home })
    const vfs = createVfs({ mounts: { '/': chainMount(chain) }, logger: silentLogger })
    for (const [name, text] of Object.entries(files)) await vfs.writeFile(`/${name}`, text)
    await vfs.close()
  } finally {
    await rm(home, { recursive: true, force: true })
  }
  return attacker
}
