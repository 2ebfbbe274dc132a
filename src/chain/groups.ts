import { checkIdentityName, shortKeyId, type Identity, type PublicIdentity } from '../crypto/identity.ts'
import { DecryptError, hkdf, open, randomBytes, seal, sha256 } from '../crypto/primitives.ts'
import { decapsulate, encapsulate, kemKeygen, MLKEM768 } from '../crypto/pq.ts'
import { ROOT_INO, u32Bytes, type ChainEvent, type GroupEvent, type GroupKeyWrap, type KeyGrantEvent } from './format.ts'
import { wrapForReader } from './keys.ts'
import { rotateSubtreeKeys, type RotateOptions, type RotationReport } from './rotation.ts'
import { posixIdOf } from './posix-ids.ts'
import { grantPlaintext, requireOwner, ShareError } from './sharing.ts'
import type { Chain } from './store.ts'
import type { ChainTree } from './tree.ts'

const GROUP_ID = Buffer.from('facet-group/1')
const GROUP_KEY = Buffer.from('facet-group-key/1')

/** One group of a chain, as {@link listGroups} reports it. */
export interface GroupInfo {
  name: string
  /** The key id grants to the group are made to, hex. */
  keyId: string
  /** The group's gid on a mounted chain: `chgrp` of a folder to it grants the folder to the group (posix-ids.ts, mode-grants.ts). */
  gid: number
  /** How many key pairs the group has had (one more per member removed). */
  epoch: number
  /** The members: key id (hex) and the name the owner gave each when adding it. */
  members: { name: string; keyId: string }[]
  /** The folders granted to the group: inode and, for a reader of the whole chain, their path now. */
  grants: { ino: number; path?: string | undefined }[]
}

/** What {@link removeGroupMember} did. */
export interface RotateReport {
  /** The group's new key epoch. */
  epoch: number
  /** How many grants made to the group were re-wrapped to its new public key. */
  rewrapped: number
  /** The key rotation of the folders granted to the group (rotation.ts), in the same block; undefined when none is. */
  rotation?: RotationReport | undefined
}

/** The key id a group's grants are made to: SHA-256 of a domain tag, the chain id and the group's name (stable across key rotations). */
export function groupKeyId(chainId: Uint8Array, name: string): Buffer {
  return sha256(GROUP_ID, chainId, Buffer.from(name))
}

function wrapInfo(chainId: Uint8Array, name: string, epoch: number, keyId: Uint8Array): Buffer {
  return Buffer.concat([GROUP_KEY, groupKeyId(chainId, name), u32Bytes(epoch), keyId])
}

/** Wraps a group's 64-byte key seed for one identity's ML-KEM-768 key. */
function wrapSeed(seed: Uint8Array, chainId: Uint8Array, name: string, epoch: number, to: Pick<PublicIdentity, 'keyId' | 'name' | 'kemPublicKey'>, member: boolean): GroupKeyWrap {
  const { cipherText, sharedSecret } = encapsulate(to.kemPublicKey)
  const info = wrapInfo(chainId, name, epoch, to.keyId)
  return { keyId: Buffer.from(to.keyId), name: to.name, member, kemKey: Buffer.from(to.kemPublicKey), kemCipherText: cipherText, wrappedSeed: seal(hkdf(sharedSecret, chainId, info), seed, Buffer.concat([info, chainId])) }
}

/** Unwraps a group's seed with the ML-KEM-768 secret key of the identity `wrap` is for; throws `DecryptError` when it does not open. */
function unwrapSeed(g: GroupEvent, wrap: GroupKeyWrap, chainId: Uint8Array, kemSecretKey: Uint8Array): Buffer {
  const ss = decapsulate(wrap.kemCipherText, kemSecretKey)
  const info = wrapInfo(chainId, g.name, g.epoch, wrap.keyId)
  return open(hkdf(ss, chainId, info), wrap.wrappedSeed, Buffer.concat([info, chainId]))
}

/**
 * The ML-KEM-768 secret keys of the groups of `tree` that `identity` is a member of now
 * (the latest group event of each name wraps their seed for it), by the groups' key ids
 * (hex). A wrap that does not open is skipped, as a grant for another key would be.
 */
export function groupSecretsOf(tree: ChainTree, identity: Identity): Map<string, { name: string; secretKey: Uint8Array }> {
  const out = new Map<string, { name: string; secretKey: Uint8Array }>()
  const me = Buffer.from(identity.keyId)
  for (const g of tree.groups.values()) {
    const wrap = g.wraps.find(w => w.member && me.equals(w.keyId))
    if (!wrap) continue
    try {
      const seed = unwrapSeed(g, wrap, tree.chainId, identity.kemSecretKey)
      out.set(groupKeyId(tree.chainId, g.name).toString('hex'), { name: g.name, secretKey: kemKeygen(seed).secretKey })
    } catch (err) {
      if (!(err instanceof DecryptError)) throw err
    }
  }
  return out
}

function group(chain: Chain, name: string): GroupEvent {
  const g = chain.tree.groups.get(name)
  if (!g) throw new ShareError(`no group named '${name}' in the chain (facet group create ${name})`)
  return g
}

/** The group `name` as a reader to grant folders to ({@link shareChainPath}) or withdraw them from: its key id and current public key. */
export function groupAsReader(chain: Chain, name: string): PublicIdentity {
  const g = group(chain, name)
  return { name: `@${name}`, keyId: groupKeyId(chain.tree.chainId, name), kemPublicKey: g.kemKey, signingPublicKey: new Uint8Array(0) }
}

/** Writes `g` in one block and applies it (and `more`) to the chain's tree. */
async function commit(chain: Chain, g: GroupEvent, more: ChainEvent[] = []): Promise<void> {
  await chain.commitEvents([g, ...more])
  chain.tree.apply(g, 0)
  for (const e of more) chain.tree.apply(e, 0)
}

/** The chain's owner (requireOwner has checked the chain is open by it). */
function ownerOf(chain: Chain): Identity {
  return chain.identity
}

/**
 * Makes group `name` in `chain` (open read-write by its owner): a fresh ML-KEM-768 key pair
 * whose secret seed is wrapped for the owner only (so it can add members); no members yet.
 */
export function createGroup(chain: Chain, name: string): Promise<GroupInfo> {
  // on a chain several nodes write: under the write lease, on the newest state (taking it reads what the others appended)
  return chain.withLease(() => createGroupHeld(chain, name))
}

async function createGroupHeld(chain: Chain, name: string): Promise<GroupInfo> {
  requireOwner(chain)
  try {
    checkIdentityName(name)
  } catch {
    throw new ShareError(`invalid group name '${name}': use 1-64 letters, digits, '.', '_' or '-'`)
  }
  if (chain.tree.groups.has(name)) throw new ShareError(`group '${name}' exists already`)
  const seed = randomBytes(MLKEM768.seed)
  const owner = ownerOf(chain)
  const g: GroupEvent = { type: 'group', name, epoch: 1, kemKey: kemKeygen(seed).publicKey, wraps: [wrapSeed(seed, chain.tree.chainId, name, 1, owner, false)] }
  await commit(chain, g)
  return info(chain, g)
}

/** The owner's copy of the seed of `g` (the owner's wrap, member or not). */
function ownerSeed(chain: Chain, g: GroupEvent): Buffer {
  const owner = ownerOf(chain)
  const wrap = g.wraps.find(w => Buffer.from(owner.keyId).equals(w.keyId))
  if (!wrap) throw new ShareError(`group '${g.name}' holds no copy of its key for the owner`)
  try {
    return unwrapSeed(g, wrap, chain.tree.chainId, owner.kemSecretKey)
  } catch (err) {
    if (err instanceof DecryptError) throw new ShareError(`the owner's copy of group '${g.name}''s key does not open`)
    throw err
  }
}

/** Adds `member` (a contact, or the owner itself) to group `name`: the group's secret seed wrapped for its ML-KEM key. It can then read every folder granted to the group, granted before or after. */
export function addGroupMember(chain: Chain, name: string, member: PublicIdentity): Promise<GroupInfo> {
  // on a chain several nodes write: under the write lease, on the newest state (taking it reads what the others appended)
  return chain.withLease(() => addGroupMemberHeld(chain, name, member))
}

async function addGroupMemberHeld(chain: Chain, name: string, member: PublicIdentity): Promise<GroupInfo> {
  requireOwner(chain)
  const g = group(chain, name)
  const id = Buffer.from(member.keyId)
  if (g.wraps.some(w => w.member && id.equals(w.keyId))) throw new ShareError(`'${member.name}' is a member of group '${name}' already`)
  const seed = ownerSeed(chain, g)
  // the owner's own copy (not a member) gives way to its member wrap, which it opens too
  const wraps = g.wraps.filter(w => !id.equals(w.keyId)).concat(wrapSeed(seed, chain.tree.chainId, name, g.epoch, member, true))
  const next: GroupEvent = { ...g, wraps }
  await commit(chain, next)
  return info(chain, next)
}

/**
 * Removes the member with key id `memberKeyId` from group `name` and rotates the group's
 * key: a new key pair, its seed wrapped for the owner and the remaining members, and every
 * grant made to the group withdrawn and made again to the new public key, all in one block.
 * The folders granted to the group rotate their keys in that block too
 * ({@link rotateSubtreeKeys}; `readers` as there): what is written in them from now on is out
 * of the removed member's reach, even with the keys it kept (the group's old secret, the
 * folder keys it opened); what was there before stays readable with them until `facet rekey`.
 * With `rotate: false` only the group's key rotates.
 */
export function removeGroupMember(chain: Chain, name: string, memberKeyId: Uint8Array, options: { rotate?: boolean; readers?: RotateOptions['readers'] } = {}): Promise<RotateReport> {
  // on a chain several nodes write: under the write lease, on the newest state (taking it reads what the others appended)
  return chain.withLease(() => removeGroupMemberHeld(chain, name, memberKeyId, options))
}

async function removeGroupMemberHeld(chain: Chain, name: string, memberKeyId: Uint8Array, options: { rotate?: boolean; readers?: RotateOptions['readers'] }): Promise<RotateReport> {
  requireOwner(chain)
  const g = group(chain, name)
  const id = Buffer.from(memberKeyId)
  if (!g.wraps.some(w => w.member && id.equals(w.keyId))) throw new ShareError(`key ${shortKeyId(id)} is not a member of group '${name}'`)
  const tree = chain.tree
  const epoch = g.epoch + 1
  const seed = randomBytes(MLKEM768.seed)
  const kemKey = kemKeygen(seed).publicKey
  const owner = ownerOf(chain)
  const ownerId = Buffer.from(owner.keyId)
  const wraps: GroupKeyWrap[] = []
  if (!g.wraps.some(w => w.member && ownerId.equals(w.keyId)) || ownerId.equals(id)) wraps.push(wrapSeed(seed, tree.chainId, name, epoch, owner, false))
  for (const w of g.wraps) {
    if (!w.member || id.equals(w.keyId)) continue
    wraps.push(wrapSeed(seed, tree.chainId, name, epoch, { keyId: w.keyId, name: w.name, kemPublicKey: w.kemKey }, true))
  }
  const next: GroupEvent = { type: 'group', name, epoch, kemKey, wraps }
  const reader = groupKeyId(tree.chainId, name)
  const folders = [...new Set(tree.grants.filter(x => reader.equals(x.reader)).map(x => x.ino))].map(ino => tree.inodes.get(ino)).filter(n => n !== undefined)
  if (options.rotate !== false && folders.length > 0) {
    // the rotation makes the group's grants again, for its new key, in the group event's block
    const rotation = await rotateSubtreeKeys(chain, folders, { before: [next], wrapFor: new Map([[reader.toString('hex'), kemKey]]), readers: options.readers })
    tree.apply(next, 0)
    return { epoch, rewrapped: folders.length, rotation }
  }
  const events: ChainEvent[] = []
  for (const ino of new Set(tree.grants.filter(x => reader.equals(x.reader)).map(x => x.ino))) {
    const n = tree.inodes.get(ino)
    events.push({ type: 'keyGrantDrop', ino, reader })
    if (!n) continue
    const key = ino === ROOT_INO ? tree.rootKey! : tree.meta(n).key
    const grant: KeyGrantEvent = { type: 'keyGrant', ino, reader, ...wrapForReader(grantPlaintext(key, ino, tree.pathOf(n)), tree.chainId, ino, reader, kemKey) }
    events.push(grant)
  }
  await commit(chain, next, events)
  return { epoch, rewrapped: events.filter(e => e.type === 'keyGrant').length }
}

function info(chain: Chain, g: GroupEvent): GroupInfo {
  const tree = chain.tree
  const reader = groupKeyId(tree.chainId, g.name)
  const inos = [...new Set(tree.grants.filter(x => reader.equals(x.reader)).map(x => x.ino))].filter(ino => tree.inodes.has(ino))
  return {
    name: g.name,
    keyId: reader.toString('hex'),
    gid: posixIdOf(reader),
    epoch: g.epoch,
    members: g.wraps.filter(w => w.member).map(w => ({ name: w.name, keyId: Buffer.from(w.keyId).toString('hex') })),
    grants: inos.map(ino => ({ ino, path: tree.partial ? undefined : tree.pathOf(tree.inodes.get(ino)!) })),
  }
}

/** The groups of `chain`, by name. */
export function listGroups(chain: Chain): GroupInfo[] {
  return [...chain.tree.groups.values()].sort((a, b) => a.name.localeCompare(b.name)).map(g => info(chain, g))
}
