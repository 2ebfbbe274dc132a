import type { ChangeBus, ChangeEvent } from './changes.ts'
import type { Logger } from './log.ts'
import type { MountChange, MountEntry, ViewContext } from './mounts.ts'
import { can } from './node.ts'
import { normalize } from './path.ts'
import type { Vfs } from './vfs.ts'

/**
 * The lives of a router's mounts: each mounting gets a {@link ViewContext} whose signal
 * aborts when it is unmounted or replaced, its root and then the mount itself are set up,
 * and unmounting disposes them in that order, after a `setup` still running.
 */
export class MountLives {
  /** Per mounting: what aborts its context's signal, and its `setup` while that runs. */
  private readonly lives = new Map<MountEntry, { abort: AbortController; started: Promise<void> }>()

  constructor(
    private readonly vfs: Vfs,
    private readonly bus: ChangeBus,
    private readonly logger: Logger,
  ) {}

  /** Sets the mount up: its root first (a `dir()` sets up its collections), then the mount's own `setup`. */
  start(entry: MountEntry): void {
    const abort = new AbortController()
    const ctx: ViewContext = {
      mountPoint: entry.path,
      logger: this.logger,
      router: { mounts: () => this.vfs.mounts(), mountObjects: () => this.vfs.mountObjects(), opStats: () => this.vfs.opStats() },
      replaceWith: next => this.vfs.replace(entry.path, next),
      signal: abort.signal,
      changes: {
        emit: (change: MountChange) => {
          const join = (rel: string) => (entry.path === '/' ? normalize(rel) : normalize(entry.path + '/' + rel))
          const event: ChangeEvent = { type: change.type, path: join(change.path), mount: entry.path }
          if (change.oldPath !== undefined) event.oldPath = join(change.oldPath)
          if (change.kind !== undefined) event.kind = change.kind
          this.bus.emit(event)
        },
      },
    }
    const { root } = entry.mount
    if (can.setup(root)) root.setup({ ...ctx, path: '/' })
    const started = Promise.resolve(entry.mount.setup?.(ctx)).catch((err: unknown) => {
      this.logger.error({ err, mount: entry.path }, 'setting up a mount failed')
    })
    this.lives.set(entry, { abort, started })
  }

  /** Aborts the mount's signal, then disposes its root and the mount itself (after a `setup` still running). */
  async stop(entry: MountEntry): Promise<void> {
    const life = this.lives.get(entry)
    this.lives.delete(entry)
    life?.abort.abort()
    await life?.started
    const { root } = entry.mount
    try {
      if (can.setup(root)) await root.dispose()
    } catch (err) {
      this.logger.error({ err, mount: entry.path }, 'disposing a mount failed')
    }
    try {
      await entry.mount.dispose?.()
    } catch (err) {
      this.logger.error({ err, mount: entry.path }, 'disposing a mount failed')
    }
  }
}
