import { shortKeyId, type Identity, type PublicIdentity } from '../crypto/identity.ts'
import { DecryptError } from '../crypto/primitives.ts'
import { nowNs } from '../vfs/stat.ts'
import { NoAccessError } from './chain-options.ts'
import { ROOT_INO, type ChainEvent, type KeyGrantEvent } from './format.ts'
import { groupKeyId, groupSecretsOf } from './groups.ts'
import { unwrapForReader, wrapForReader } from './keys.ts'
import { PartialView } from './partial.ts'
import { everyoneKeyId, everyoneKeyPair } from './posix-ids.ts'
import { rotateSubtreeKeys, type RotateOptions, type RotationReport } from './rotation.ts'
import { scopeOf } from './write-scope.ts'
import type { Chain } from './store.ts'
import type { ChainTree, Inode } from './tree.ts'

/** Thrown when a share or unshare cannot be done: not the owner, a path that is neither a folder nor a file, write rights on a file, nothing to unshare. */
export class ShareError extends Error {
  override readonly name = 'ShareError'
}

/** One grant or writer of a chain, as {@link listShares} reports it. */
export interface Share {
  /** The reader's or writer's key id, hex. */
  keyId: string
  /** The name the chain's log gives the writer, when it is one. */
  writerName?: string | undefined
  /** The folder the grant opens (its path now), or undefined for a writer with no grant. */
  path?: string | undefined
  /** The granted inode. */
  ino?: number | undefined
  /** True when the identity may write in the grant's folder (an authorised writer of the whole chain, or one whose write scope holds the folder). */
  write: boolean
  /** The group's name when the grant is to a group (groups.ts) rather than an identity. */
  group?: string | undefined
  /** True when the grant is to everyone holding the chain (`chmod o+r`, posix-ids.ts). */
  everyone?: boolean | undefined
}

/** What {@link shareChainPath} did. */
export interface ShareReport {
  ino: number
  path: string
  /** True when this share made the reader a writer (it was not one before). */
  authorised: boolean
  /** With `write`: the folders (paths) the writer may write in now, or undefined for the whole chain. */
  writeScope?: string[] | undefined
}

/** What {@link unshareChainPath} did. */
export interface UnshareReport {
  /** True when the identity was a writer and is no longer. */
  revokedWrite: boolean
  /** Set when the writer keeps writing elsewhere: the folders (paths) its write scope still holds. */
  writeScope?: string[] | undefined
  /** True when a read grant on the path was withdrawn. */
  droppedGrant: boolean
  /** With a grant withdrawn: the key rotation of the folder's subtree (rotation.ts) that went with it, in the same block. */
  rotation?: RotationReport | undefined
}

/** The wrapped plaintext of a grant: the inode key, then, except for the root, where the folder lay when granted (its own metadata is sealed under its parent's key, which the reader lacks). */
export function grantPlaintext(key: Buffer, ino: number, path: string): Buffer {
  return ino === ROOT_INO ? key : Buffer.concat([key, Buffer.from(JSON.stringify({ path }))])
}

function readGrantPlaintext(plain: Buffer): { key: Buffer; path: string | undefined } {
  const key = Buffer.from(plain.subarray(0, 32))
  if (plain.length === 32) return { key, path: undefined }
  const note = JSON.parse(plain.subarray(32).toString('utf8')) as { path?: unknown }
  return { key, path: typeof note.path === 'string' ? note.path : undefined }
}

/**
 * Unwraps the key grants `identity` holds in `tree`, its own and those of the groups it is a
 * member of now (each group's secret unwrapped first with its own key): with a grant of the
 * root, the root key (the whole chain); else the keys of the folders granted, shown as a
 * {@link PartialView} (a folder below another granted one needs no grant of its own).
 * Throws {@link NoAccessError} when it holds no grant, or none opens with its secret key.
 */
export function unlockTree(tree: ChainTree, identity: Identity, where: string): void {
  // the secret key to open each reader's grants with: this identity's, and its groups'
  const secrets = new Map<string, { name: string; secretKey: Uint8Array }>([[Buffer.from(identity.keyId).toString('hex'), { name: `'${identity.name}'`, secretKey: identity.kemSecretKey }]])
  for (const [hex, g] of groupSecretsOf(tree, identity)) secrets.set(hex, { name: `group '${g.name}'`, secretKey: g.secretKey })
  // what `chmod o+r` granted to everyone holding the chain (posix-ids.ts): the key pair comes from the chain id
  if (tree.grants.some(g => everyoneKeyId(tree.chainId).equals(g.reader))) secrets.set(everyoneKeyId(tree.chainId).toString('hex'), { name: 'everyone', secretKey: everyoneKeyPair(tree.chainId).secretKey })
  // the latest grant of each inode wins (a share repeated after a rename names the new path)
  const mine = new Map<number, KeyGrantEvent>()
  for (const g of tree.grants) if (secrets.has(Buffer.from(g.reader).toString('hex'))) mine.set(g.ino, g)
  if (mine.size === 0) throw new NoAccessError(`identity '${identity.name}' (${shortKeyId(identity.keyId)}) holds no key for chain ${where}`)
  const unwrap = (g: KeyGrantEvent): Buffer => {
    const s = secrets.get(Buffer.from(g.reader).toString('hex'))!
    try {
      return unwrapForReader(g, tree.chainId, s.secretKey)
    } catch (err) {
      if (err instanceof DecryptError) throw new NoAccessError(`the key grant for ${s.name} does not open with its secret key`)
      throw err
    }
  }
  const root = mine.get(ROOT_INO)
  if (root) {
    tree.rootKey = readGrantPlaintext(unwrap(root)).key
    tree.rootReader = { identity, where }
    tree.meta(tree.inode(ROOT_INO))
    return
  }
  const view = new PartialView({ uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }, nowNs())
  const granted = [...mine.values()].filter(g => tree.inodes.has(g.ino))
  const inodes = new Set(granted.map(g => g.ino))
  for (const g of granted) {
    const n = tree.inodes.get(g.ino)!
    if (below(tree, n, inodes)) continue
    const { key, path } = readGrantPlaintext(unwrap(g))
    view.add(tree, n, key, path ?? `/inode-${n.ino}`)
  }
  if (view.granted.size === 0) throw new NoAccessError(`identity '${identity.name}' (${shortKeyId(identity.keyId)}) holds no key for a live folder of chain ${where}`)
  view.reader = { identity, where }
  tree.partial = view
}

/** True when `n` lies below one of `inodes` (not counting itself). */
function below(tree: ChainTree, n: Inode, inodes: Set<number>): boolean {
  for (let p = n.ino === ROOT_INO ? undefined : tree.inodes.get(n.keyParent); p; p = p.ino === ROOT_INO ? undefined : tree.inodes.get(p.keyParent)) {
    if (inodes.has(p.ino)) return true
  }
  return false
}

/** Throws unless `chain` is open read-write by its owner. */
export function requireOwner(chain: Chain): void {
  const me = chain.writers.get(Buffer.from(chain.identity.keyId).toString('hex'))
  if (!me?.owner) throw new ShareError(`only the chain's owner may share it; '${chain.identity.name}' is not its owner`)
  if (chain.readOnly) throw new ShareError('the chain is open read-only')
  if (chain.tree.partial || !chain.tree.rootKey) throw new ShareError('the chain is not open with its root key')
}

/** The inode at `path` (a `/`-separated path from the chain's root). */
function resolve(chain: Chain, path: string): Inode {
  let n = chain.root
  for (const part of path.split('/').filter(Boolean)) {
    const next = chain.lookup(n, part)
    if (!next) throw new ShareError(`${path}: no such file or folder in the chain`)
    n = next
  }
  return n
}

function normalise(path: string): string {
  return '/' + path.split('/').filter(Boolean).join('/')
}

/**
 * Shares folder `path` of `chain` (open read-write by its owner) with `reader`: a key grant
 * of the folder's key wrapped for the reader's ML-KEM key, so it can read the folder and
 * everything below it, including what is made there later (children's keys are sealed
 * under their folder's key). A regular file can be shared too, for reading: the grant of its
 * key goes with the file's own copy of its metadata (event 14), which every writer keeps up
 * with each change of the file from then on, so the reader sees its name, attributes and
 * content and nothing else of the folder. With `write`, the reader also becomes a writer of that folder's
 * subtree: an owner-signed writer authorisation and, unless `path` is `/`, a write scope
 * (write-scope.ts) that limits it to the folders shared with it for writing. A writer of the
 * whole chain stays one. Commits one block and resolves once it is on disk (with `queued`, once queued for the next block).
 */
export function shareChainPath(chain: Chain, path: string, reader: PublicIdentity, options: ShareOptions = {}): Promise<ShareReport> {
  // on a chain several nodes write: under the write lease, on the newest state (taking it reads what the others appended)
  return chain.withLease(() => shareHeld(chain, path, reader, options))
}

/** Options of {@link shareChainPath}. */
export interface ShareOptions {
  /** Makes the reader a writer of the folder too. */
  write?: boolean
  /** Resolves once the grant is queued for the next block, as a chmod is (see `Chain.queueEvents`), not once that block is on disk. @default false */
  queued?: boolean
}

async function shareHeld(chain: Chain, path: string, reader: PublicIdentity, options: ShareOptions): Promise<ShareReport> {
  requireOwner(chain)
  path = normalise(path)
  const n = resolve(chain, path)
  const tree = chain.tree
  const kind = tree.meta(n).kind
  if (kind !== 'dir' && kind !== 'file') throw new ShareError(`${path} is a ${kind}: share a folder or a regular file`)
  if (kind === 'file' && options.write) throw new ShareError(`${path} is a file: write rights are given on folders (share the folder it lies in with --write)`)
  const key = n.ino === ROOT_INO ? tree.rootKey! : tree.meta(n).key
  const grant: KeyGrantEvent = { type: 'keyGrant', ino: n.ino, reader: reader.keyId, ...wrapForReader(grantPlaintext(key, n.ino, path), tree.chainId, n.ino, reader.keyId, reader.kemPublicKey) }
  const events: ChainEvent[] = [grant]
  if (kind === 'file') {
    // counted before the block is made, so the block seals the file's own copy of its metadata (tree.putMeta)
    tree.apply(grant, 0)
    chain.namespace.resealed(n)
  }
  const hex = Buffer.from(reader.keyId).toString('hex')
  const was = chain.writers.get(hex)
  if (was?.owner && options.write) throw new ShareError(`'${reader.name}' owns the chain: it writes everywhere`)
  const authorised = options.write === true && !was
  if (authorised) events.push({ type: 'writerAuth', action: 'authorise', keyId: reader.keyId, name: reader.name, signingKey: reader.signingPublicKey, kemKey: reader.kemPublicKey })
  // the folders it may write in: those it had (none for a new writer) and this one; the root is the whole chain
  const scope = options.write && (authorised || was?.scope) ? scopeOf([...(was?.scope ?? []), n.ino]) : was?.scope
  if (options.write && (authorised ? scope : was?.scope)) events.push({ type: 'writeScope', keyId: reader.keyId, inos: scope ? [...scope] : [ROOT_INO] })
  await (options.queued ? chain.queueEvents(events) : chain.commitEvents(events))
  if (kind !== 'file') tree.apply(grant, 0)
  if (options.write) chain.writers.set(hex, { keyId: reader.keyId, name: reader.name, signingKey: reader.signingPublicKey, kemKey: reader.kemPublicKey, owner: false, scope })
  return { ino: n.ino, path, authorised, writeScope: options.write && scope ? scopePaths(tree, scope) : undefined }
}

/**
 * Takes back what {@link shareChainPath} gave `reader` on `path`: for `/`, its writer
 * authorisation (an owner-signed revoke: blocks it signs from the next block on are refused
 * on open and by `facet verify`); for a folder its write scope holds, that folder (a new
 * write scope without it, or a revoke when it was the last); and the grant on `path` (withdrawn in the log, so an honest reader stops
 * using it). A withdrawn grant rotates the keys of the folder's subtree in the same block
 * ({@link rotateSubtreeKeys}): what is written there from now on is out of the reader's reach,
 * even with the keys it kept; what was there before stays readable with them until
 * `facet rekey`. `readers` gives the public keys of the other readers holding grants there
 * (see {@link RotateOptions}); `rotate: false` withdraws the grant only. With `onlyWrite`, the
 * grant stays: the writer becomes a reader. Throws {@link ShareError} when there is nothing to
 * take back.
 */
export function unshareChainPath(
  chain: Chain,
  path: string,
  reader: Pick<PublicIdentity, 'keyId' | 'name' | 'signingPublicKey' | 'kemPublicKey'>,
  options: { onlyWrite?: boolean; rotate?: boolean; readers?: RotateOptions['readers'] } = {},
): Promise<UnshareReport> {
  // on a chain several nodes write: under the write lease, on the newest state (taking it reads what the others appended)
  return chain.withLease(() => unshareHeld(chain, path, reader, options))
}

async function unshareHeld(
  chain: Chain,
  path: string,
  reader: Pick<PublicIdentity, 'keyId' | 'name' | 'signingPublicKey' | 'kemPublicKey'>,
  options: { onlyWrite?: boolean; rotate?: boolean; readers?: RotateOptions['readers'] },
): Promise<UnshareReport> {
  requireOwner(chain)
  path = normalise(path)
  const n = resolve(chain, path)
  const tree = chain.tree
  const r = Buffer.from(reader.keyId)
  const hex = r.toString('hex')
  const writer = chain.writers.get(hex)
  const events: ChainEvent[] = []
  if (options.onlyWrite && path !== '/' && writer && !writer.owner && !writer.scope) throw new ShareError(`'${reader.name}' writes the whole chain: take it back on /, not ${path}`)
  // a write scope without this folder; none left (or / unshared): no writing at all
  const left = writer?.scope && path !== '/' ? [...writer.scope].filter(ino => ino !== n.ino) : undefined
  const narrowed = left !== undefined && left.length > 0 && left.length < writer!.scope!.size
  if (narrowed) events.push({ type: 'writeScope', keyId: writer!.keyId, inos: left })
  else if (writer && !writer.owner && (path === '/' || (left !== undefined && left.length === 0))) events.push({ type: 'writerAuth', action: 'revoke', keyId: writer.keyId, name: writer.name, signingKey: writer.signingKey, kemKey: writer.kemKey })
  const granted = !options.onlyWrite && tree.grants.some(g => g.ino === n.ino && r.equals(g.reader))
  if (granted && options.rotate === false) events.push({ type: 'keyGrantDrop', ino: n.ino, reader: reader.keyId })
  if (events.length === 0 && !granted) throw new ShareError(options.onlyWrite ? `'${reader.name}' is not a writer` : `'${reader.name}' holds no grant on ${path} and is not a writer`)
  // the rotation drops the grant itself, and writes the writer's changes first in its block
  const rotation = granted && options.rotate !== false ? await rotateSubtreeKeys(chain, [n], { revoke: [reader.keyId], before: events, readers: options.readers }) : undefined
  if (!rotation) await chain.commitEvents(events)
  for (const e of events) if (e.type === 'keyGrantDrop') tree.apply(e, 0)
  if (events.some(e => e.type === 'writerAuth')) chain.writers.delete(hex)
  if (narrowed) chain.writers.set(hex, { ...writer!, scope: new Set(left) })
  return { revokedWrite: events.some(e => e.type === 'writerAuth'), droppedGrant: granted, writeScope: narrowed ? scopePaths(tree, new Set(left)) : undefined, rotation }
}

/** The paths of a write scope's folders, as the owner reads them. */
function scopePaths(tree: ChainTree, scope: ReadonlySet<number>): string[] {
  return [...scope].map(ino => {
    const n = tree.inodes.get(ino)
    return n ? tree.pathOf(n) : `(removed inode ${ino})`
  })
}

/** The grants and writers of `chain` other than its owner, as its owner (or a reader of the whole chain) sees them. */
export function listShares(chain: Chain): Share[] {
  const tree = chain.tree
  const out: Share[] = []
  const owner = [...chain.writers.values()].find(w => w.owner)
  const ownerHex = owner ? Buffer.from(owner.keyId).toString('hex') : ''
  const seen = new Set<string>()
  const groups = new Map([...tree.groups.keys()].map(name => [groupKeyId(tree.chainId, name).toString('hex'), name]))
  const everyone = everyoneKeyId(tree.chainId).toString('hex')
  for (const g of tree.grants) {
    const hex = Buffer.from(g.reader).toString('hex')
    if (hex === ownerHex) continue
    const key = `${hex}:${g.ino}`
    if (seen.has(key)) continue
    seen.add(key)
    const n = tree.inodes.get(g.ino)
    if (!n) continue
    const w = chain.writers.get(hex)
    out.push({ keyId: hex, writerName: w?.name, path: tree.partial ? undefined : tree.pathOf(n), ino: g.ino, write: w !== undefined && (!w.scope || w.scope.has(g.ino)), ...(groups.has(hex) ? { group: groups.get(hex) } : {}), ...(hex === everyone ? { everyone: true } : {}) })
  }
  for (const [hex, w] of chain.writers) {
    if (w.owner || out.some(s => s.keyId === hex)) continue
    out.push({ keyId: hex, writerName: w.name, write: true })
  }
  return out
}
