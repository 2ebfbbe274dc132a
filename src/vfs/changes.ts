import type { Logger } from './log.ts'
import type { ChangeType } from './mounts.ts'
import type { NodeKind } from './node.ts'
import { isWithin, normalize } from './path.ts'

/** A change anywhere in the tree, as every front door sees it. */
export interface ChangeEvent {
  /** What happened to the node at `path`. */
  type: ChangeType
  /** Absolute VFS path. */
  path: string
  /** The path before a rename. */
  oldPath?: string
  /** What the changed node is, when known. */
  kind?: NodeKind
  /** The mount point the change happened in. */
  mount: string
}

/** Receives change events from {@link Vfs.watch}. */
export type ChangeListener = (event: ChangeEvent) => void

/** The one bus every mutation is reported on: FUSE invalidation, GraphQL subscriptions and `facet watch` read it. */
export class ChangeBus {
  private readonly listeners = new Set<{ prefix: string; listener: ChangeListener }>()

  constructor(private readonly logger: Logger) {}

  /** True when anyone listens (so callers can skip building events). */
  get active(): boolean {
    return this.listeners.size > 0
  }

  /** Calls `listener` for every change at or below `prefix`; returns the function that stops it. */
  watch(prefix: string, listener: ChangeListener): () => void {
    const sub = { prefix: normalize(prefix), listener }
    this.listeners.add(sub)
    return () => this.listeners.delete(sub)
  }

  /** Delivers `event` to every listener whose prefix covers its path (or its old path). A throwing listener is logged. */
  emit(event: ChangeEvent): void {
    for (const sub of this.listeners) {
      if (isWithin(event.path, sub.prefix) || (event.oldPath !== undefined && isWithin(event.oldPath, sub.prefix))) {
        try {
          sub.listener(event)
        } catch (err) {
          this.logger.error({ err }, 'change listener threw')
        }
      }
    }
  }
}
