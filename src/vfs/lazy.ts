import type { Mount, ViewContext } from './mounts.ts'
import { can, type Attr, type DirPage, type OpContext, type PageRequest, type VNode } from './node.ts'

/**
 * A mount opened on first use: `open` runs when something first looks inside, so a
 * costly mount (an embedded database, say) adds nothing to start-up or to commands
 * that never touch it. Its root is read through the opened mount's root: lookup,
 * readdir and getattr. A failed open is retried on the next use.
 */
export function lazyMount(name: string, open: () => Promise<Mount>): Mount {
  let opened: Promise<Mount> | undefined
  let ctx: ViewContext | undefined
  let closed = false
  const real = (): Promise<Mount> => {
    opened ??= open().then(
      async mount => {
        if (ctx) {
          if (can.setup(mount.root)) mount.root.setup({ ...ctx, path: '/' })
          await mount.setup?.(ctx)
        }
        return mount
      },
      (err: unknown) => {
        opened = undefined
        throw err
      },
    )
    return opened
  }
  const root: VNode & { getattr(ctx: OpContext): Promise<Attr>; lookup(n: string, ctx: OpContext): Promise<VNode | undefined>; readdir(p: PageRequest, ctx: OpContext): Promise<DirPage> } = {
    kind: 'dir',
    async getattr(ctx) {
      const r = (await real()).root
      if (can.getattr(r)) return r.getattr(ctx)
      const t = Date.now()
      return { mode: 0o555, size: 4096, uid: ctx.uid, gid: ctx.gid, atimeMs: t, mtimeMs: t, ctimeMs: t }
    },
    async lookup(n, ctx) {
      const r = (await real()).root
      return can.lookup(r) ? r.lookup(n, ctx) : undefined
    },
    async readdir(page, ctx) {
      const r = (await real()).root
      return can.readdir(r) ? r.readdir(page, ctx) : { entries: [] }
    },
  }
  return {
    name,
    root,
    setup(c) {
      ctx = c
    },
    async dispose() {
      if (closed) return
      closed = true
      const mount = opened && (await opened.catch(() => undefined))
      if (!mount) return
      if (can.setup(mount.root)) await mount.root.dispose()
      await mount.dispose?.()
    },
  }
}
