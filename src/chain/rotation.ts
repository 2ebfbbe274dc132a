import { shortKeyId, type PublicIdentity } from '../crypto/identity.ts'
import { ROOT_INO, type ChainEvent, type KeyGrantEvent } from './format.ts'
import { groupKeyId } from './groups.ts'
import { everyoneKeyId, everyoneKeyPair } from './posix-ids.ts'
import { wrapForReader } from './keys.ts'
import { grantPlaintext, requireOwner, ShareError } from './sharing.ts'
import type { Chain } from './store.ts'
import { ChainTree, type Inode, type KeyEpoch, type Link } from './tree.ts'

/** What {@link rotateSubtreeKeys} takes besides the folders. */
export interface RotateOptions {
  /** Readers (key ids) whose grants of the rotated folders themselves are dropped and not made again. */
  revoke?: Uint8Array[] | undefined
  /**
   * Public keys of readers holding grants in the subtrees, for those the chain does not name
   * itself (the chain knows its owner, its writers, its groups and their members): each
   * remaining grant is made again with the new key, wrapped for its reader's ML-KEM key.
   */
  readers?: Iterable<Pick<PublicIdentity, 'keyId' | 'kemPublicKey'>> | undefined
  /** ML-KEM keys to wrap for instead of the ones the chain holds, by key id (hex): a group's new key (groups.ts). */
  wrapFor?: ReadonlyMap<string, Uint8Array> | undefined
  /** Events that go first in the same block (a group's new key pair). */
  before?: ChainEvent[] | undefined
}

/** What {@link rotateSubtreeKeys} did. */
export interface RotationReport {
  /** The rotated folders (paths), outermost only. */
  paths: string[]
  /** Inodes given a fresh key (their metadata sealed again). */
  inodes: number
  /** Link records and extended-attribute records sealed again. */
  links: number
  xattrs: number
  /** Grants made again with the new keys, and grants dropped for good. */
  regranted: number
  dropped: number
  /** Where a revoked reader still holds a grant that opens (part of) a rotated subtree: a folder above it, or one below it granted on its own. */
  stillOpen: string[]
}

/** The grants and key epochs a rotation would write, worked out before anything changes. */
interface Plan {
  targets: Inode[]
  inodes: Inode[]
  links: Link[]
}

/**
 * Gives every inode in the subtrees of folders `targets` (or the files themselves; paths, or inodes, of `chain`
 * open read-write by its owner) a fresh random key, in one owner-signed block, so that what
 * is written there from now on is out of reach of a reader that kept the old keys:
 *
 * - each inode's metadata is sealed again, under its folder's new key, with its new key and,
 *   for a file with content, the old key and the last chunk version sealed under it
 *   (`keyHistory`), so the chunks written before stay readable to those who may read;
 * - the link records lying in those folders and the inodes' extended attributes are sealed
 *   again under the new keys;
 * - every grant of an inode in the subtrees is dropped and made again with the inode's new
 *   key, except the grants of the targets themselves to the `revoke`d readers.
 *
 * Chunks keep the key they were sealed with until {@link rekeyChainPath} (rekey.ts) rewrites
 * them. Nothing changes (in memory or in the log) when a reader's public key is unknown: a
 * {@link ShareError} names it. Resolves once the block is on disk.
 */
export function rotateSubtreeKeys(chain: Chain, targets: (string | Inode)[], options: RotateOptions = {}): Promise<RotationReport> {
  // on a chain several nodes write: under the write lease, on the newest state (taking it reads what the others appended)
  return chain.withLease(() => rotateHeld(chain, targets, options))
}

async function rotateHeld(chain: Chain, targets: (string | Inode)[], options: RotateOptions): Promise<RotationReport> {
  requireOwner(chain)
  const tree = chain.tree
  const plan = planOf(chain, targets)
  const inRotation = new Set(plan.inodes.map(n => n.ino))
  const targetInos = new Set(plan.targets.map(n => n.ino))
  const revoked = new Set((options.revoke ?? []).map(k => Buffer.from(k).toString('hex')))
  const kemOf = readerKeys(chain, options)

  // the latest grant of each (inode, reader) in the subtrees, and the readers' keys, before anything changes
  const latest = new Map<string, KeyGrantEvent>()
  for (const g of tree.grants) if (inRotation.has(g.ino)) latest.set(`${g.ino}:${Buffer.from(g.reader).toString('hex')}`, g)
  const keep: { g: KeyGrantEvent; kem: Uint8Array }[] = []
  const drop: KeyGrantEvent[] = []
  const unknown: string[] = []
  for (const g of latest.values()) {
    const hex = Buffer.from(g.reader).toString('hex')
    if (revoked.has(hex) && targetInos.has(g.ino)) {
      drop.push(g)
      continue
    }
    const kem = kemOf.get(hex)
    if (kem) keep.push({ g, kem })
    else unknown.push(`${shortKeyId(g.reader)} (grant of ${tree.pathOf(tree.inodes.get(g.ino)!)})`)
  }
  if (unknown.length > 0) throw new ShareError(`cannot rotate keys: the public key of ${unknown.join(', ')} is not known here; import it (facet identity import) or unshare it first`)
  const stillOpen = revokedElsewhere(tree, plan, revoked, targetInos)

  // everything sealed under the old keys is read while they are still in place
  for (const n of plan.inodes) {
    tree.meta(n)
    if (n.sealedXattrs) tree.xattrs(n)
  }
  const entries = plan.links.map(l => tree.linkEntry(l))

  // new keys; a file keeps the old one for the chunks sealed under it
  for (const n of plan.inodes) {
    const m = tree.meta(n)
    const history = liveHistory(n, m.keyHistory)
    if (n.chunks.size > 0) history.push({ upTo: n.chunkVersion, key: m.key })
    m.keyHistory = history.length > 0 ? history : undefined
    m.key = ChainTree.newKey()
    if (n.ino === ROOT_INO) tree.rootKey = m.key
    n.chunkKey = n.metaKey = n.oldChunkKeys = undefined
  }
  const events: ChainEvent[] = [...(options.before ?? [])]
  for (const n of plan.inodes) chain.namespace.resealed(n)
  let xattrs = 0
  for (const n of plan.inodes) {
    if (!n.sealedXattrs) continue
    events.push(tree.sealXattrs(n))
    xattrs++
  }
  plan.links.forEach((l, i) => events.push(tree.putLink(l, tree.inodes.get(l.dir)!, entries[i]!.name, entries[i]!.ino)))
  const grants: ChainEvent[] = []
  for (const g of drop) grants.push({ type: 'keyGrantDrop', ino: g.ino, reader: g.reader })
  for (const { g, kem } of keep) {
    const n = tree.inodes.get(g.ino)!
    grants.push({ type: 'keyGrantDrop', ino: g.ino, reader: g.reader })
    grants.push({ type: 'keyGrant', ino: g.ino, reader: g.reader, ...wrapForReader(grantPlaintext(tree.meta(n).key, g.ino, tree.pathOf(n)), tree.chainId, g.ino, g.reader, kem) })
  }
  await chain.commitEvents([...events, ...grants])
  for (const e of grants) tree.apply(e, 0)
  return { paths: plan.targets.map(n => tree.pathOf(n)), inodes: plan.inodes.length, links: plan.links.length, xattrs, regranted: keep.length, dropped: drop.length, stillOpen }
}

/** The outermost targets, every live inode in their subtrees (first names), and the link records lying in them. */
function planOf(chain: Chain, targets: (string | Inode)[]): Plan {
  const tree = chain.tree
  const found = targets.map(t => (typeof t === 'string' ? resolveFolder(chain, t) : t))
  for (const n of found) if (n.deleted || !tree.inodes.has(n.ino) || (tree.meta(n).kind !== 'dir' && tree.meta(n).kind !== 'file')) throw new ShareError(`inode ${n.ino} is not a live folder or file of the chain: only those are rotated`)
  const chosen = new Set(found.map(n => n.ino))
  const outer = [...new Map(found.map(n => [n.ino, n])).values()].filter(n => !hasAncestorIn(tree, n, chosen))
  const inodes: Inode[] = []
  const links: Link[] = []
  const queue = [...outer]
  while (queue.length > 0) {
    const n = queue.pop()!
    inodes.push(n)
    for (const id of n.linksHere) links.push(tree.links.get(id)!)
    for (const c of n.children) {
      const child = tree.inodes.get(c)
      if (child && !child.deleted) queue.push(child)
    }
  }
  return { targets: outer, inodes, links }
}

function hasAncestorIn(tree: ChainTree, n: Inode, set: Set<number>): boolean {
  for (let p = n.ino === ROOT_INO ? undefined : tree.inodes.get(n.keyParent); p; p = p.ino === ROOT_INO ? undefined : tree.inodes.get(p.keyParent)) if (set.has(p.ino)) return true
  return false
}

/** The folder at `path` of `chain`; {@link ShareError} when there is none. */
export function resolveFolder(chain: Chain, path: string): Inode {
  let n = chain.root
  for (const part of path.split('/').filter(Boolean)) {
    const next = chain.lookup(n, part)
    if (!next) throw new ShareError(`${path}: no such file or folder in the chain`)
    n = next
  }
  if (chain.tree.meta(n).kind !== 'dir') throw new ShareError(`${path} is not a folder: keys rotate for a folder's subtree`)
  return n
}

/** The earlier keys of `n` some chunk of it still needs (a range no live chunk's version falls in is dropped). */
function liveHistory(n: Inode, history: KeyEpoch[] | undefined): KeyEpoch[] {
  if (!history) return []
  const versions = [...n.chunks.values()].map(r => r.version)
  return history.filter((h, i) => {
    const from = i === 0 ? 0 : history[i - 1]!.upTo
    return versions.some(v => v > from && v <= h.upTo)
  })
}

/** The ML-KEM public keys of the readers the chain names: its owner and writers, its groups (their current key), their members, everyone (o+r), then those given. */
function readerKeys(chain: Chain, options: RotateOptions): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>()
  for (const r of options.readers ?? []) out.set(Buffer.from(r.keyId).toString('hex'), r.kemPublicKey)
  for (const g of chain.tree.groups.values()) {
    for (const w of g.wraps) out.set(Buffer.from(w.keyId).toString('hex'), w.kemKey)
    out.set(groupKeyId(chain.tree.chainId, g.name).toString('hex'), g.kemKey)
  }
  for (const [hex, w] of chain.writers) out.set(hex, w.kemKey)
  // "everyone holding the chain" (chmod o+r): its key pair comes from the chain id alone
  out.set(everyoneKeyId(chain.tree.chainId).toString('hex'), everyoneKeyPair(chain.tree.chainId).publicKey)
  for (const [hex, kem] of options.wrapFor ?? []) out.set(hex, kem)
  return out
}

/** The paths where a revoked reader keeps a grant that reaches into the rotated subtrees (its grants of the targets aside). */
function revokedElsewhere(tree: ChainTree, plan: Plan, revoked: Set<string>, targets: Set<number>): string[] {
  if (revoked.size === 0) return []
  const rotated = new Set(plan.inodes.map(n => n.ino))
  const out = new Set<string>()
  for (const g of tree.grants) {
    if (!revoked.has(Buffer.from(g.reader).toString('hex')) || targets.has(g.ino)) continue
    const n = tree.inodes.get(g.ino)
    if (!n) continue
    // below a target (granted on its own), or above one (its subtree holds the target)
    if (rotated.has(g.ino) || plan.targets.some(t => t.ino !== g.ino && hasAncestorIn(tree, t, new Set([g.ino])))) out.add(tree.pathOf(n))
  }
  return [...out]
}
