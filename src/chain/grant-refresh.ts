import type { Identity } from '../crypto/identity.ts'
import { nowNs } from '../vfs/stat.ts'
import { NoAccessError } from './chain-options.ts'
import { ROOT_INO, type ChainEvent } from './format.ts'
import { PartialView } from './partial.ts'
import { unlockTree } from './sharing.ts'
import type { ChainTree, Inode } from './tree.ts'

/** What {@link refreshGrants} changed. */
export interface GrantRefresh {
  /** The paths whose entries changed, as the reader saw them before and sees them now (folders that appeared, went, or opened). */
  paths: Set<string>
  /** The granted folders the reader reads now (their paths as it sees them), or `['/']` for the whole chain. */
  reads: string[]
  /** Why no grant opens any more, when none does (the view is then empty). */
  why?: string | undefined
}

/** True when `e` can change which folders a reader of some folders may open: a grant, its withdrawal, a group's members or key. */
export function changesGrants(e: ChainEvent): boolean {
  return e.type === 'keyGrant' || e.type === 'keyGrantDrop' || e.type === 'group'
}

/**
 * Works out again, after blocks were applied to `tree`, what its reader of some folders
 * (its {@link PartialView}, made when it opened) may open: the grants it holds now, its own,
 * its groups' and everyone's (`chmod o+r`). When they differ from the view's, a new view
 * replaces it (or the root key, for a grant of the root), the cached metadata and listings
 * that depend on it are dropped, and the paths whose entries appeared, went or changed are
 * returned, so a mount drops exactly those from the kernel's cache. A reader of the whole
 * chain (its {@link ChainTree.rootReader}) takes the root key a rotation of / gave it, or,
 * its grant of the root withdrawn, what it may still open. Undefined when nothing changed.
 */
export function refreshGrants(tree: ChainTree): GrantRefresh | undefined {
  const old = tree.partial
  if (!old) return tree.rootReader && refreshRoot(tree, tree.rootReader)
  if (!old.reader) return undefined
  const { identity, where } = old.reader
  const oldPaths = shownPaths(tree, old)
  const oldShown = new Map(old.shown)
  const oldGranted = new Map(old.granted)
  // placeholders give way, so the root's own metadata can be read if the root is granted now
  for (const ino of oldShown.keys()) forget(tree.inodes.get(ino))
  tree.partial = undefined
  tree.rootKey = undefined
  let why: string | undefined
  try {
    unlockTree(tree, identity, where)
  } catch (err) {
    if (!(err instanceof NoAccessError)) throw err
    // no grant opens any more: only the root shows, empty
    why = err.message
    const empty = new PartialView(old.owner, nowNs())
    empty.shown.set(ROOT_INO, '')
    empty.reader = old.reader
    tree.partial = empty
  }
  const now = tree.partial
  if (now && sameView(oldShown, oldGranted, now)) {
    // the same folders with the same keys: keep the old view (and its times)
    tree.partial = old
    for (const ino of oldShown.keys()) forget(tree.inodes.get(ino))
    return undefined
  }
  for (const ino of now?.shown.keys() ?? []) forget(tree.inodes.get(ino))
  // a listing depends on what may be read (folders above granted ones, links to files elsewhere)
  for (const n of tree.inodes.values()) n.names = n.linkNames = undefined
  const paths = new Set<string>()
  if (!now) {
    // the whole chain now: every name of the root may be new
    for (const p of oldPaths.values()) paths.add(p)
    for (const name of tree.names(tree.inodes.get(ROOT_INO)!).keys()) paths.add(`/${name}`)
    return { paths, reads: ['/'] }
  }
  const newPaths = shownPaths(tree, now)
  for (const ino of new Set([...oldShown.keys(), ...now.shown.keys()])) {
    if (ino === ROOT_INO) continue
    const before = oldShown.get(ino)
    const key = oldGranted.get(ino)
    const after = now.granted.get(ino)
    if (before === now.shown.get(ino) && (key === after || (key !== undefined && after !== undefined && key.equals(after)))) continue
    const was = oldPaths.get(ino)
    const is = newPaths.get(ino)
    if (was !== undefined) paths.add(was)
    if (is !== undefined) paths.add(is)
  }
  return { paths, reads: grantedPaths(tree), why }
}

/** {@link refreshGrants} for a reader of the whole chain: the root key it holds now, or the view of what it may read without it. */
function refreshRoot(tree: ChainTree, reader: { identity: Identity; where: string }): GrantRefresh | undefined {
  const key = tree.rootKey
  tree.rootKey = undefined
  tree.rootReader = undefined
  let why: string | undefined
  try {
    unlockTree(tree, reader.identity, reader.where)
  } catch (err) {
    if (!(err instanceof NoAccessError)) {
      tree.rootKey = key
      tree.rootReader = reader
      throw err
    }
    why = err.message
    const empty = new PartialView({ uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }, nowNs())
    empty.shown.set(ROOT_INO, '')
    empty.reader = reader
    tree.partial = empty
  }
  // the same root key: nothing to follow
  if (!tree.partial && key && (tree.rootKey as Buffer | undefined)?.equals(key)) return undefined
  // every inode's keys come down from the root's: what was worked out under the old ones goes
  for (const n of tree.inodes.values()) {
    forget(n)
    n.names = n.linkNames = undefined
  }
  // the paths to drop from the kernel's cache are those of the blocks' inodes, rotated with the root (applyAppended notes them)
  return { paths: new Set(), reads: grantedPaths(tree), why }
}

/** The folders the reader of `tree` reads, by the paths it sees them at: `['/']` with the root key, none when no grant opens. */
export function grantedPaths(tree: ChainTree): string[] {
  const view = tree.partial
  if (!view) return tree.rootKey ? ['/'] : []
  const paths = shownPaths(tree, view)
  return [...view.granted.keys()].map(ino => paths.get(ino) ?? '/').sort()
}

/** True when `now` shows the same folders as `shown`, under the same names, and grants the same ones with the same keys. */
function sameView(shown: Map<number, string>, granted: Map<number, Buffer>, now: PartialView): boolean {
  if (shown.size !== now.shown.size || granted.size !== now.granted.size) return false
  for (const [ino, name] of shown) if (now.shown.get(ino) !== name) return false
  for (const [ino, key] of granted) if (!now.granted.get(ino)?.equals(key)) return false
  return true
}

/** The paths of the folders `view` shows, by inode, by the names it shows them under. */
function shownPaths(tree: ChainTree, view: PartialView): Map<number, string> {
  const out = new Map<number, string>()
  for (const ino of view.shown.keys()) {
    if (ino === ROOT_INO) continue
    const parts: string[] = []
    for (let p = tree.inodes.get(ino); p && p.ino !== ROOT_INO; p = tree.inodes.get(p.keyParent)) parts.unshift(view.shown.get(p.ino) ?? `inode-${p.ino}`)
    out.set(ino, '/' + parts.join('/'))
  }
  return out
}

/** Drops what was worked out from the metadata of `n` (placeholder or decrypted), so the next use reads it under the view in place. */
function forget(n: Inode | undefined): void {
  if (!n) return
  n.meta = undefined
  n.metaKey = n.chunkKey = n.oldChunkKeys = undefined
  n.xattrs = undefined
}
