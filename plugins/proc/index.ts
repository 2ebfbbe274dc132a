import { vfsError } from '../../src/vfs/errors.ts'
import { mountStats, type RouterFacts, type ViewContext } from '../../src/vfs/mounts.ts'
import { defineView, dir, file, type View } from '../../src/views/view.ts'

/** Options for {@link procView}. */
export interface ProcOptions {
  /** The router to report on; the one the view is mounted in when absent. */
  vfs?: RouterFacts
}

/** What `/proc/stats.json` holds. */
export interface ProcStats {
  /** Seconds since the view was mounted. */
  uptimeSeconds: number
  /** Open handles across the VFS. */
  openHandles: number
  /** The Node process's memory, in bytes. */
  memory: {
    /** Resident set size: all memory the process holds. */
    rss: number
    /** The V8 heap in use. */
    heapUsed: number
    /** Memory held outside the V8 heap by C++ objects bound to JavaScript (Buffers, among others). */
    external: number
  }
  /** One entry per mount point. */
  mounts: Record<string, {
    /** The mount's kebab-case name. */
    name: string
    /** Operations by syscall since the VFS started. */
    ops: Record<string, number>
    /** Handles open on this mount. */
    openHandles: number
    /** The mount's own figures (view caches: hits, misses, hitRate; queue counters…), by folder. */
    view?: Record<string, Record<string, number | string>>
  }>
}

/** Collects the figures of `vfs` as `/proc/stats.json` shows them. */
export function procStats(vfs: RouterFacts, startedMs: number): ProcStats {
  const ops = vfs.opStats()
  const mem = process.memoryUsage()
  const mounts: ProcStats['mounts'] = {}
  for (const { path, mount } of vfs.mountObjects()) {
    const m = ops.mounts[path] ?? { ops: {}, openHandles: 0 }
    const entry: ProcStats['mounts'][string] = { name: mount.name, ops: m.ops, openHandles: m.openHandles }
    const own = mountStats(mount)
    if (Object.keys(own).length > 0) entry.view = own
    mounts[path] = entry
  }
  return {
    uptimeSeconds: Math.round((Date.now() - startedMs) / 1000),
    openHandles: ops.openHandles,
    memory: { rss: mem.rss, heapUsed: mem.heapUsed, external: mem.external },
    mounts,
  }
}

/**
 * FacetFS's own figures as files, like Linux's `/proc`:
 *
 * - `mounts`: one line per mount, `<name> <mount point> facet rw 0 0`, as `/proc/mounts` reads.
 * - `stats.json`: per-mount operation counts by syscall, open handles, view cache hit rates, memory.
 * - `version`: the FacetFS version.
 *
 * Every file is rendered afresh on each `stat` and `open`, so sizes are exact.
 */
export const procView = defineView((options: ProcOptions = {}): View => {
  let vfs = options.vfs
  let startedMs = Date.now()
  const need = (): RouterFacts => {
    if (!vfs) throw vfsError('ENXIO', 'the proc view is not mounted in a VFS')
    return vfs
  }
  return {
    name: 'proc',
    root: dir({
      mounts: file(() => need().mounts().map(m => `${m.name} ${m.path} facet rw 0 0\n`).join(''), { mtimeMs: () => Date.now() }),
      'stats.json': file(() => JSON.stringify(procStats(need(), startedMs), null, 2) + '\n', { mtimeMs: () => Date.now() }),
      version: file('facetfs 0.1.0\n'),
    }),
    setup(ctx: ViewContext) {
      vfs ??= ctx.router
      startedMs = Date.now()
    },
  }
})

export default procView
