import type { MountHost } from '../vfs/mounts.ts'
import type { VNode } from '../vfs/node.ts'

/** The key under which a node keeps its mount lifecycle hooks. */
export const LIFECYCLE: unique symbol = Symbol.for('facet.view.lifecycle')

/** Figures a node reports about itself, for `/proc/stats.json`. */
export type ViewStats = Record<string, number | string>

/** Hooks of a node that needs to know when its view is mounted: collections start watching their source. */
export interface Lifecycle {
  [LIFECYCLE]: {
    attach(host: MountHost, path: string): void
    close(): Promise<void>
    stats?(): ViewStats
  }
}

/** Returns true when `node` has lifecycle hooks. */
export function hasLifecycle(node: VNode): node is VNode & Lifecycle {
  return typeof (node as Partial<Lifecycle>)[LIFECYCLE] === 'object'
}

/** The static children of a node, for walking a view's tree at mount time. */
export const STATIC_CHILDREN: unique symbol = Symbol.for('facet.view.children')

/** Finds every node with lifecycle hooks in the static part of a tree, with its path. */
export function lifecycleNodes(root: VNode): Array<{ path: string; node: VNode & Lifecycle }> {
  const out: Array<{ path: string; node: VNode & Lifecycle }> = []
  const walk = (node: VNode, path: string): void => {
    if (hasLifecycle(node)) out.push({ path, node })
    const children = (node as { [STATIC_CHILDREN]?: Record<string, VNode> })[STATIC_CHILDREN]
    if (!children) return
    for (const [name, child] of Object.entries(children)) walk(child, path === '/' ? '/' + name : `${path}/${name}`)
  }
  walk(root, '/')
  return out
}
