import type { GraphQLContribution } from './contribution.ts'
import type { LockTable } from './locks/table.ts'
import type { Logger } from './log.ts'
import type { Vfs } from './vfs.ts'
import { can, type NodeKind, type VNode } from './node.ts'

/** What changed. `rename` events carry `oldPath`. */
export type ChangeType = 'create' | 'update' | 'delete' | 'rename'

/** A change a mount reports about its own tree; paths are relative to the mount, absolute in form (`'/a.json'`). */
export interface MountChange {
  /** What happened to the node at `path`. */
  type: ChangeType
  /** The changed node's path in the mount, e.g. `'/a.json'`. */
  path: string
  /** For `rename`: the path before, in the mount. */
  oldPath?: string
  /** What the changed node is, when known. */
  kind?: NodeKind
}

/** Announces changes a mount sees happen outside the VFS; see {@link ViewContext.changes}. */
export interface ChangeEmitter {
  /** Reports `change`, its paths relative to the mount (`'/a.json'`), to every front door. */
  emit(change: MountChange): void
}

/** Figures a mount or one of its folders reports about itself, for `/proc/stats.json`. */
export type ViewStats = Record<string, number | string>

/** What the router gives a mount (a view) when it mounts it: see {@link Mount.setup}. */
export interface ViewContext {
  /** The path the mount is mounted at, e.g. `'/db'`. */
  readonly mountPoint: string
  /** Where the mount logs: the VFS's logger. */
  readonly logger: Logger
  /** Reports changes made outside the VFS (a database trigger, a host folder); changes made through the VFS are reported by the router. */
  readonly changes: ChangeEmitter
  /** Aborted when the mount is unmounted (before {@link Mount.dispose} runs). */
  readonly signal: AbortSignal
  /** What the router tells of itself, for mounts that report on it (such as `/proc`). */
  readonly router: RouterFacts
  /**
   * Puts `next` in this mount's place at the same mount point, as `Vfs.replace` does: this
   * mount is disposed once `next` is set up (a chain follower moves to a compacted log so).
   */
  replaceWith(next: Mount): Promise<void>
}

/** The router's figures a mount may read: {@link ViewContext.router}. */
export type RouterFacts = Pick<Vfs, 'mounts' | 'mountObjects' | 'opStats'>

/**
 * A tree the router can mount: a root directory node plus optional lifecycle hooks.
 * A view plugin's object is a `Mount` as it is.
 */
export interface Mount {
  /** A kebab-case name (`'kanban'`, `'my-notes'`), shown in the mount list; the router refuses any other with `EINVAL`. */
  readonly name: string
  /** The root directory node. When it has `setup` (a folder made by `dir()`, a collection), the router calls it before the mount's own. */
  readonly root: VNode
  /** Called once when mounted: start watchers, open connections. Without it the mount has nothing to start. */
  setup?(ctx: ViewContext): void | Promise<void>
  /** Called once when unmounted or when the VFS closes, after `ctx.signal` is aborted and the root is disposed: release connections and watchers here. */
  dispose?(): void | Promise<void>
  /** Figures by folder path (cache hits, writes, refusals), besides those the root's collections report; read by `/proc/stats.json`. */
  stats?(): Record<string, ViewStats>
  /** Typed GraphQL schema this mount adds beside the generic tree (see `src/graphql`). */
  readonly graphql?: GraphQLContribution
  /**
   * Where `flock` and POSIX record locks on this mount's files are kept when other
   * machines must see them (a chain shared through PostgreSQL). Without it the FUSE
   * adapter keeps them in its own process, as the kernel would for a local filesystem.
   */
  readonly locks?: LockTable
  /**
   * True when nothing but this process changes the mount's tree and every change it makes
   * goes through the router (a chain opened for writing on a log file, not followed): the
   * FUSE adapter may then let the kernel keep attributes for a while, as changes from
   * other front doors reach it as invalidations. Without it the kernel asks on every `stat`.
   * @default false
   */
  readonly soleWriter?: boolean
}

const KEBAB = /^[a-z0-9]+(-[a-z0-9]+)*$/

/** Why `name` cannot name a mount, or undefined when it can: names are kebab-case. */
export function badMountName(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'a view needs a `name` (a kebab-case string such as \'my-view\')'
  if (!KEBAB.test(name)) return `the view name '${name}' is not kebab-case: use lower-case letters and digits, words joined by single dashes, e.g. 'my-view'`
  return undefined
}

/** The figures of `mount` by folder path: its root's (its collections') and its own `stats()`. */
export function mountStats(mount: Mount): Record<string, ViewStats> {
  const fromRoot = can.setup(mount.root) ? (mount.root.stats?.() ?? {}) : {}
  return { ...fromRoot, ...(mount.stats?.() ?? {}) }
}

/** A mount in the table. */
export interface MountEntry {
  readonly path: string
  readonly mount: Mount
  readonly mountedAtMs: number
  /** A small number unique to this mounting within its VFS (1 and up), which keeps inode numbers of different mounts apart. */
  readonly id: number
}

interface TrieNode {
  children: Map<string, TrieNode>
  entry: MountEntry | undefined
}

/** Where a path falls in the mount table. */
export interface MountMatch {
  /** The deepest mount covering the path, if any. */
  entry: MountEntry | undefined
  /** How many leading names of the path belong to the mount point. */
  depth: number
  /** The table node at exactly this path, when the path is a mount point or one of its ancestors. */
  exact: TrieNode | undefined
}

/**
 * The longest-prefix mount table. Paths are given as name arrays (see `split`), so
 * matching allocates nothing.
 */
export class MountTable {
  private readonly top: TrieNode = { children: new Map(), entry: undefined }

  /** Adds a mount at `names`; throws when one is there already. */
  add(names: string[], entry: MountEntry): void {
    let node = this.top
    for (const name of names) {
      let child = node.children.get(name)
      if (!child) {
        child = { children: new Map(), entry: undefined }
        node.children.set(name, child)
      }
      node = child
    }
    if (node.entry) throw new Error(`a mount is already at ${entry.path}`)
    node.entry = entry
  }

  /** Replaces the mount at `names`, returning the old entry. */
  replace(names: string[], entry: MountEntry): MountEntry | undefined {
    const node = this.node(names)
    const old = node?.entry
    if (!node || !old) return undefined
    node.entry = entry
    return old
  }

  /** Removes the mount at `names` and prunes empty table nodes; returns it. */
  remove(names: string[]): MountEntry | undefined {
    const trail: TrieNode[] = [this.top]
    for (const name of names) {
      const next = trail[trail.length - 1]!.children.get(name)
      if (!next) return undefined
      trail.push(next)
    }
    const node = trail[trail.length - 1]!
    const old = node.entry
    node.entry = undefined
    for (let i = names.length; i > 0; i--) {
      const n = trail[i]!
      if (n.entry || n.children.size > 0) break
      trail[i - 1]!.children.delete(names[i - 1]!)
    }
    return old
  }

  /** Finds the deepest mount covering `names`. */
  match(names: string[]): MountMatch {
    let node: TrieNode | undefined = this.top
    let entry = this.top.entry
    let depth = 0
    for (let i = 0; i < names.length; i++) {
      node = node.children.get(names[i]!)
      if (!node) return { entry, depth, exact: undefined }
      if (node.entry) {
        entry = node.entry
        depth = i + 1
      }
    }
    return { entry, depth, exact: node }
  }

  /** The deepest mount covering the normalised path `p`, walking the string without splitting it. */
  entryOf(p: string): MountEntry | undefined {
    let node: TrieNode | undefined = this.top
    let entry = node.entry
    let start = 1
    while (start < p.length) {
      let end = p.indexOf('/', start)
      if (end < 0) end = p.length
      node = node.children.get(p.slice(start, end))
      if (!node) break
      if (node.entry) entry = node.entry
      start = end + 1
    }
    return entry
  }

  /** Names of the table nodes directly below `names` (mount points and their ancestors). */
  childNames(node: TrieNode | undefined): string[] {
    return node ? [...node.children.keys()] : []
  }

  /** Every mount, shallowest first. */
  entries(): MountEntry[] {
    const out: MountEntry[] = []
    const walk = (n: TrieNode): void => {
      if (n.entry) out.push(n.entry)
      for (const child of n.children.values()) walk(child)
    }
    walk(this.top)
    return out
  }

  private node(names: string[]): TrieNode | undefined {
    let node: TrieNode | undefined = this.top
    for (const name of names) {
      node = node.children.get(name)
      if (!node) return undefined
    }
    return node
  }
}
