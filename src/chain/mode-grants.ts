import { listContacts } from '../crypto/contacts.ts'
import type { PublicIdentity } from '../crypto/identity.ts'
import { vfsError } from '../vfs/errors.ts'
import type { AttrChanges } from '../vfs/node.ts'
import { groupAsReader, groupKeyId } from './groups.ts'
import { PublishNotices } from './publish-notices.ts'
import { everyoneKeyId, everyoneKeyPair, posixIdOf } from './posix-ids.ts'
import { shareChainPath, ShareError, unshareChainPath } from './sharing.ts'
import type { Chain } from './store.ts'
import type { ChainTree, Inode } from './tree.ts'

/** The mode bit that means "everyone holding the chain may read" on a folder. */
const OTHER_READ = 0o004
/** The mode bit that means "the folder's chain group may read". */
const GROUP_READ = 0o040

/** The gid of chain group `name` of the chain `chainId` (see {@link posixIdOf}). */
export function groupGid(chainId: Uint8Array, name: string): number {
  return posixIdOf(groupKeyId(chainId, name))
}

/** The chain group whose gid is `gid`, or undefined when it is no chain group's (then a chgrp to it is a plain change). */
export function groupOfGid(tree: ChainTree, gid: number): string | undefined {
  for (const name of tree.groups.keys()) if (groupGid(tree.chainId, name) === gid) return name
  return undefined
}

/** "Everyone holding the chain" as a reader to grant folders to: the well-known key id and key pair of posix-ids.ts. */
export function everyoneAsReader(chainId: Uint8Array): PublicIdentity {
  return { name: 'everyone', keyId: everyoneKeyId(chainId), kemPublicKey: everyoneKeyPair(chainId).publicKey, signingPublicKey: new Uint8Array(0) }
}

/** What a chmod or chgrp of a folder changes in its grants (see {@link modeGrantPlan}). */
export interface ModeGrantPlan {
  /** The folder's path. */
  path: string
  /** Readers to grant the folder to: everyone, or its new chain group. */
  grant: PublicIdentity[]
  /** Readers whose grant of the folder is withdrawn (through `unshare`, so their keys rotate). */
  drop: PublicIdentity[]
}

/**
 * What setting `changes` on inode `n` of `chain` does to the grants of a folder or regular
 * file, worked out before anything changes. Mode bits of a folder or file are grants (issue 12):
 *
 * - `o+r` — everyone holding the chain may read it: a chmod that turns `o+r` on grants the
 *   folder to the everyone key (posix-ids.ts), and one that leaves it off withdraws that
 *   grant. A chmod that keeps `o+r` on (a folder `mkdir` made `0755`) grants nothing: the
 *   call cannot tell `chmod o+r` from `chmod g+r` there, and publishing every folder a
 *   `chmod -R` touches would be worse than asking for `chmod o-r` first;
 * - `g+r` with a gid that is a chain group's ({@link groupGid}) — a grant to that group; a
 *   mode without `g+r`, or a chgrp to another gid, withdraws it (a chgrp to another chain
 *   group grants that one when `g+r` is set).
 *
 * Only a setattr that carries a mode or a gid does this (a `mkdir` with `0755`, a file made
 * `0644`, grants nothing), and only for folders and regular files (a file's grant is of the
 * file alone, sharing.ts). For the chain's owner the plan is what to grant and withdraw
 * (undefined when nothing); for anyone else a change of those bits of a folder (or a chgrp to
 * or from a chain group), and any chmod or chgrp of a folder it sees by name only (a granted
 * folder of a reader of some folders, its attributes made up) on a read-only open, is `EPERM`,
 * as is a change of a file that would grant or withdraw something; every other change is a
 * plain one, as before. Undefined for history trees, symlinks and devices.
 */
export function modeGrantPlan(chain: Chain, tree: ChainTree, n: Inode, changes: AttrChanges): ModeGrantPlan | undefined {
  if (tree !== chain.tree || (changes.mode === undefined && changes.gid === undefined) || n.deleted) return undefined
  const m = tree.meta(n)
  if (m.kind !== 'dir' && m.kind !== 'file') return undefined
  const oldMode = m.mode & 0o7777
  const newMode = (changes.mode ?? oldMode) & 0o7777
  const oldGroup = groupOfGid(tree, m.gid)
  const newGroup = changes.gid === undefined ? oldGroup : groupOfGid(tree, changes.gid)
  if (m.kind === 'file') return filePlan(chain, tree, n, oldMode, newMode, oldGroup, newGroup)
  if (!isOwner(chain)) {
    const flipped = oldMode ^ newMode
    // a folder a reader sees by name only (granted, or above one) is the owner's: its metadata is sealed under its parent's key
    // (a scoped writer is refused those with EACCES by its write scope, as before)
    const shown = chain.readOnly && tree.partial?.shown.has(n.ino) === true
    if (shown || flipped & OTHER_READ || oldGroup !== newGroup || (newGroup !== undefined && flipped & GROUP_READ)) {
      throw vfsError('EPERM', `only the chain's owner changes who may read a folder (o+r, g+r of a chain group, a chgrp to or from one); '${chain.identity.name}' is not its owner`)
    }
    return undefined
  }
  return grantChanges(chain, tree, n, oldMode, newMode, oldGroup, newGroup)
}

/**
 * The plan for a regular file: as for a folder's owner (a grant of the file alone, sharing.ts),
 * but for anyone else only a change that would grant or withdraw something is `EPERM`, so a
 * writer's `chmod 600` of a file no one was given stays a plain change.
 */
function filePlan(chain: Chain, tree: ChainTree, n: Inode, oldMode: number, newMode: number, oldGroup: string | undefined, newGroup: string | undefined): ModeGrantPlan | undefined {
  const plan = grantChanges(chain, tree, n, oldMode, newMode, oldGroup, newGroup)
  if (plan && !isOwner(chain)) throw vfsError('EPERM', `only the chain's owner changes who may read a file (o+r, g+r of a chain group); '${chain.identity.name}' is not its owner`)
  return plan
}

/** What the owner's change of `n`'s mode bits and group grants and withdraws (undefined when nothing). */
function grantChanges(chain: Chain, tree: ChainTree, n: Inode, oldMode: number, newMode: number, oldGroup: string | undefined, newGroup: string | undefined): ModeGrantPlan | undefined {
  const holds = (keyId: Uint8Array) => tree.grants.some(g => g.ino === n.ino && Buffer.from(keyId).equals(g.reader))
  const plan: ModeGrantPlan = { path: tree.pathOf(n), grant: [], drop: [] }
  // o+r publishes when a chmod turns it on, never because a folder was made with it (umask 022 makes every folder o+r)
  const turnedOn = (newMode & OTHER_READ) !== 0 && (oldMode & OTHER_READ) === 0
  const everyone = holds(everyoneKeyId(tree.chainId))
  if (turnedOn && !everyone) plan.grant.push(everyoneAsReader(tree.chainId))
  if (!(newMode & OTHER_READ) && everyone) plan.drop.push(everyoneAsReader(tree.chainId))
  if (oldGroup !== undefined && (oldGroup !== newGroup || !(newMode & GROUP_READ)) && holds(groupKeyId(tree.chainId, oldGroup))) plan.drop.push(groupAsReader(chain, oldGroup))
  if (newGroup !== undefined && newMode & GROUP_READ && !holds(groupKeyId(tree.chainId, newGroup))) plan.grant.push(groupAsReader(chain, newGroup))
  return plan.grant.length > 0 || plan.drop.length > 0 ? plan : undefined
}

/**
 * Carries out a {@link ModeGrantPlan} of `chain`'s owner: the withdrawals first, each through
 * {@link unshareChainPath} (so the folder's keys rotate as for `facet unshare`), then the
 * grants through {@link shareChainPath}, queued for the next block as the chmod itself is.
 * A refusal becomes `EPERM` with its reason.
 */
export async function applyModeGrants(chain: Chain, plan: ModeGrantPlan): Promise<void> {
  try {
    // a rotation re-wraps the subtree's other grants: for the owner's contacts, and for everyone, which is no contact
    const options = { onlyWrite: false, readers: plan.drop.length > 0 ? [...(await listContacts(chain.home)), everyoneAsReader(chain.tree.chainId)] : [] }
    for (const r of plan.drop) {
      await unshareChainPath(chain, plan.path, r, options)
      chain.logger.info({ path: chain.path, folder: plan.path }, `${plan.path}: withdrew the grant to ${describe(r)} (chmod/chgrp)`)
    }
    for (const r of plan.grant) {
      // a grant waits for the next block like the chmod that made it (tar x chmods every file it makes: one block each was 18x gocryptfs)
      await shareChainPath(chain, plan.path, r, { queued: true })
      if (r.name === 'everyone') publishNotices(chain).published(plan.path)
      else chain.logger.info({ path: chain.path, folder: plan.path }, `${plan.path}: granted to ${describe(r)} (chmod/chgrp)`)
    }
  } catch (err) {
    if (err instanceof ShareError) throw vfsError('EPERM', err.message)
    throw err
  }
}

const notices = new WeakMap<Chain, PublishNotices>()

/** The warnings of `chain`'s publications to everyone, kept with the chain. */
function publishNotices(chain: Chain): PublishNotices {
  let n = notices.get(chain)
  if (!n) notices.set(chain, (n = new PublishNotices(chain.logger, chain.path)))
  return n
}

function describe(r: PublicIdentity): string {
  return r.name === 'everyone' ? 'everyone holding the chain' : `group ${r.name.slice(1)}`
}

/** True when `chain` is open read-write by its owner, with the root key. */
function isOwner(chain: Chain): boolean {
  return chain.writers.get(Buffer.from(chain.identity.keyId).toString('hex'))?.owner === true && !chain.tree.partial && chain.tree.rootKey !== undefined
}
