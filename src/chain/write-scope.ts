import { vfsError } from '../vfs/errors.ts'
import { ROOT_INO, type ChainEvent } from './format.ts'
import type { ChainWriter } from './log.ts'
import type { ChangeSink } from './namespace.ts'
import type { Chain } from './store.ts'
import type { ChainTree, Inode } from './tree.ts'

/**
 * Write rights scoped to folders (FORMAT.md, "Write scopes"). A writer with a scope (the
 * latest owner-signed `writeScope` event for it) may only touch inodes in the subtrees of
 * its folders. Everything needed to check that is in clear in the log: each inode's key
 * parent (`inodePut`), each extra name's folder (`linkPut`), the inode of every chunk,
 * cut, tombstone, extended attributes and grant event. So the check needs no secret key:
 * the verifier does it on open and in `facet verify`, and the writer's own chain does it
 * before a change (EACCES), so its mount refuses what others would refuse.
 */

/** Where inodes and extra names lie, as the clear parts of the events say. */
export interface Shape {
  /** The key parent of inode `ino` (the root's is itself), or undefined when there is no such inode. */
  parent(ino: number): number | undefined
  /** The folder extra name `link` lies in, or undefined. */
  linkDir(link: number): number | undefined
}

/** The {@link Shape} of a log, kept from its events by the verifier (which has no tree). */
export class TreeShape implements Shape {
  private readonly parents = new Map<number, number>()
  private readonly linkDirs = new Map<number, number>()

  parent(ino: number): number | undefined {
    return this.parents.get(ino)
  }

  linkDir(link: number): number | undefined {
    return this.linkDirs.get(link)
  }

  /** The shape of `tree`'s inodes and extra names: what the events that made it say (a verifier restored from a checkpoint, checkpoint.ts). */
  static ofTree(tree: ChainTree): TreeShape {
    const shape = new TreeShape()
    for (const n of tree.inodes.values()) if (n.sealedMeta) shape.parents.set(n.ino, n.keyParent)
    for (const l of tree.links.values()) shape.linkDirs.set(l.id, l.dir)
    return shape
  }

  /** Takes in the events of one verified block. */
  apply(events: readonly ChainEvent[]): void {
    for (const e of events) {
      if (e.type === 'inodePut') this.parents.set(e.ino, e.keyParent)
      else if (e.type === 'tombstone') this.parents.delete(e.ino)
      else if (e.type === 'linkPut') this.linkDirs.set(e.link, e.dir)
      else if (e.type === 'linkDrop') this.linkDirs.delete(e.link)
    }
  }
}

/** The writers of a chain by key id (hex), with the shape of its tree their scopes are checked against. */
export class Writers extends Map<string, ChainWriter> {
  shape = new TreeShape()
}

/** The {@link Shape} of an open chain's tree (key parents and link folders are kept in clear there too). */
export function shapeOfTree(tree: ChainTree): Shape {
  return {
    parent: ino => tree.inodes.get(ino)?.keyParent,
    linkDir: link => tree.links.get(link)?.dir,
  }
}

/** The scope a `writeScope` event gives: undefined (the whole chain) when it names the root. */
export function scopeOf(inos: readonly number[]): Set<number> | undefined {
  return inos.includes(ROOT_INO) ? undefined : new Set(inos)
}

/** True when `ino` is one of the scope's folders or lies below one. */
export function within(shape: Shape, scope: ReadonlySet<number>, ino: number | undefined): boolean {
  for (let p = ino, steps = 0; p !== undefined && steps < 1_000_000; steps++) {
    if (scope.has(p)) return true
    if (p === ROOT_INO) return false
    const up = shape.parent(p)
    p = up === p ? undefined : up
  }
  return false
}

/** True when `ino` lies strictly below a scope folder: its own metadata is sealed under a key in the scope (a scope folder's is sealed under its parent's). */
export function below(shape: Shape, scope: ReadonlySet<number>, ino: number): boolean {
  const p = shape.parent(ino)
  return p !== undefined && p !== ino && within(shape, scope, p)
}

const GONE = -1

/**
 * What in `events` (one block by a writer limited to `scope`) touches an inode outside the
 * scope, or undefined when nothing does. An inode put must be placed in the scope and, when
 * the inode exists, already lie strictly below a scope folder (no rename into or out of the
 * scope, no change to a scope folder's own metadata, which is sealed under its parent); a
 * tombstone must remove an inode strictly below a scope folder; an extra name must lie in
 * the scope, before and after; chunks, cuts, extended attributes and grants must be of an
 * inode in the scope (one the block itself places there included).
 */
export function scopeViolation(events: readonly ChainEvent[], scope: ReadonlySet<number>, shape: Shape): string | undefined {
  // the block's own changes, over the shape before it: inode -> key parent (GONE when tombstoned), link -> folder
  const parents = new Map<number, number>()
  const dirs = new Map<number, number>()
  const now: Shape = {
    parent: ino => {
      const p = parents.get(ino)
      return p === GONE ? undefined : (p ?? shape.parent(ino))
    },
    linkDir: link => {
      const d = dirs.get(link)
      return d === GONE ? undefined : (d ?? shape.linkDir(link))
    },
  }
  for (const e of events) {
    if (e.type === 'inodePut') {
      if (!within(now, scope, e.keyParent)) return `inodePut of inode ${e.ino} under folder ${e.keyParent}, outside its write scope`
      if (now.parent(e.ino) !== undefined && !below(now, scope, e.ino)) return `inodePut of inode ${e.ino}, which lies outside its write scope (or is a scope folder, whose metadata is sealed under its parent)`
      parents.set(e.ino, e.keyParent)
    } else if (e.type === 'tombstone') {
      if (!below(now, scope, e.ino)) return `tombstone of inode ${e.ino}, outside its write scope`
      parents.set(e.ino, GONE)
    } else if (e.type === 'linkPut') {
      if (!within(now, scope, e.dir)) return `linkPut of link ${e.link} in folder ${e.dir}, outside its write scope`
      const old = now.linkDir(e.link)
      if (old !== undefined && !within(now, scope, old)) return `linkPut moving link ${e.link} from folder ${old}, outside its write scope`
      dirs.set(e.link, e.dir)
    } else if (e.type === 'linkDrop') {
      if (!within(now, scope, now.linkDir(e.link))) return `linkDrop of link ${e.link}, outside its write scope`
      dirs.set(e.link, GONE)
    }
  }
  // content events: of an inode in the scope before the block or after it (a file the block makes, or removes)
  for (const e of events) {
    if (e.type !== 'chunkPut' && e.type !== 'chunksCut' && e.type !== 'xattrPut' && e.type !== 'fileMeta' && e.type !== 'keyGrant') continue
    if (!within(now, scope, e.ino) && !within(shape, scope, e.ino)) return `${e.type} of inode ${e.ino}, outside its write scope`
  }
  return undefined
}

/** The scope of the identity `chain` is open as, or undefined when it writes the whole chain. */
export function ownScope(chain: Chain): ReadonlySet<number> | undefined {
  return chain.writers.get(Buffer.from(chain.identity.keyId).toString('hex'))?.scope
}

/** The scope's folders as the chain's tree names them (paths where it can, else inode numbers). */
export function describeScope(tree: ChainTree, scope: ReadonlySet<number>): string {
  const names = [...scope].map(ino => {
    const n = tree.inodes.get(ino)
    if (!n) return `inode ${ino}`
    try {
      return tree.pathOf(n)
    } catch {
      return `inode ${ino}`
    }
  })
  return names.length === 0 ? 'no folder' : names.join(', ')
}

/**
 * Throws EACCES unless the identity `chain` is open as may change inode `n`: `in` for a
 * change inside it (its content, extended attributes, or for a folder its entries),
 * `meta` for a change of its own metadata (sealed under its key parent).
 */
export function checkWriteScope(chain: Chain, n: Inode, how: 'in' | 'meta'): void {
  const scope = ownScope(chain)
  if (!scope) return
  const shape = shapeOfTree(chain.tree)
  if (how === 'in' ? within(shape, scope, n.ino) : below(shape, scope, n.ino)) return
  throw vfsError('EACCES', `'${chain.identity.name}' may write only in ${describeScope(chain.tree, scope)}${how === 'meta' && scope.has(n.ino) ? ' (not the metadata of the folder itself)' : ''}`)
}

/**
 * `sink` for the namespace of a writer limited to a scope: the times of a scope folder (or
 * a folder above one) that a change below touches are not written (they are sealed under a
 * key the writer may not seal with), and an event outside the scope throws EACCES before
 * it is queued. The mount refuses such changes before they start ({@link checkWriteScope});
 * this keeps any other caller of the namespace from signing a block that others refuse.
 */
export function scopedSink(sink: ChangeSink, chain: Chain): ChangeSink {
  return {
    writable: () => sink.writable(),
    released: n => sink.released(n),
    metaChanged: n => {
      const scope = ownScope(chain)
      if (scope && !below(shapeOfTree(chain.tree), scope, n.ino)) return
      sink.metaChanged(n)
    },
    emit: e => {
      const scope = ownScope(chain)
      const why = scope && scopeViolation([e], scope, shapeOfTree(chain.tree))
      if (why) throw vfsError('EACCES', `'${chain.identity.name}' may write only in ${describeScope(chain.tree, scope!)}: ${why}`)
      sink.emit(e)
    },
  }
}
