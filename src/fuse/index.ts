import { AsyncResource } from 'node:async_hooks'
import { access, constants, mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Logger } from '../vfs/log.ts'
import type { ChangeEvent, Vfs } from '../vfs/vfs.ts'
import { createAnswerer } from './answer.ts'
import { FuseUnavailableError, loadFuse, type FuseInstance } from './binding.ts'
import { KeptPages } from './kept-pages.ts'
import { LinkedNames } from './links.ts'
import { createFuseLocks } from './locks.ts'
import { createFuseOps } from './ops.ts'
import { fuseMountOptions, kernelChecks, lockWaits, readAheadKb, SOLE_WRITER_ATTR_TIMEOUT, type MountTuning } from './options.ts'
import { setReadAhead } from './readahead.ts'
import { clearStaleMount, lazyUnmount, listFuseMounts } from './stale.ts'

export { FuseUnavailableError } from './binding.ts'
export { fuseMountOptions, SOLE_WRITER_ATTR_TIMEOUT, type MountTuning } from './options.ts'
export { abortFuseConnection, clearStaleMount, fuseConnectionDir, isStaleMount, lazyUnmount, listFuseMounts, waitingRequests, type FuseMountEntry } from './stale.ts'
export { unmountOnSignals, type SignalOptions } from './signals.ts'

/** Options for {@link mountFuse}: the mount's kernel cache and transfer settings plus the adapter's own. */
export interface FuseOptions extends MountTuning {
  /** Where the adapter logs failed and late calls. @default the Vfs's logger */
  logger?: Logger
  /**
   * Milliseconds a call may take before it is answered `ETIMEDOUT` (and its late result
   * dropped). Kept below fuse-napi's own 15 s limit.
   * @default 12000
   */
  timeoutMs?: number
  /** Creates the mount folder (and its parents) when missing. @default true */
  mkdir?: boolean
}

/** A live FUSE mount of a {@link Vfs}. */
export interface FuseMount {
  /** The absolute folder the tree is mounted on. */
  readonly mountpoint: string
  /**
   * Unmounts. Safe to call more than once (later calls return the first call's promise).
   * Falls back to a lazy `fusermount -uz` when the binding's own unmount fails.
   */
  unmount(): Promise<void>
  /** Resolves once every cache invalidation queued so far (from change events) has reached the kernel. */
  invalidated(): Promise<void>
}

/**
 * Mounts `vfs` on the folder `mountpoint` with FUSE, so `ls`, `cat`, editors and every
 * other program see the tree. Resolves once the kernel has initialised the mount.
 *
 * A dead mount left there by a killed process ("Transport endpoint is not connected")
 * is lazily unmounted first. Throws {@link FuseUnavailableError} when fuse-napi,
 * `libfuse3.so.3` or `/dev/fuse` is missing, when `allowOther` is asked for without
 * `user_allow_other` in `/etc/fuse.conf`, or when libfuse refuses to mount on this
 * machine; and a plain `Error` naming the folder when the folder is unusable.
 *
 * Changes the kernel did not make itself (another front door, a database, a follower)
 * reach it as entry invalidations from the change bus, so cached lookups never outlive them.
 *
 * Never use synchronous `fs` calls on the mount from the process serving it: the call
 * blocks the one JS thread that would answer it. Use child processes or `fs/promises`,
 * and never start a child with its working folder (or its executable) on the mount.
 */
export async function mountFuse(vfs: Vfs, mountpoint: string, options: FuseOptions = {}): Promise<FuseMount> {
  const Fuse = loadFuse()
  await requireDevFuse()
  const logger = options.logger ?? vfs.logger
  const dir = resolve(mountpoint)

  if (await clearStaleMount(dir)) logger.warn({ mountpoint: dir }, 'cleared a dead FUSE mount left by a killed process')
  if (options.mkdir ?? true) await mkdir(dir, { recursive: true })

  const answer = createAnswerer({ timeoutMs: options.timeoutMs ?? 12_000, logger })
  let fuse: FuseInstance | undefined
  const context = () => fuse!.context()
  const locks = createFuseLocks(vfs, { answer, context, maxWaits: lockWaits(options) })
  const readAhead = readAheadKb(options)
  const soleWriter = everyMountSoleWriter(vfs)
  const pages = soleWriter ? new KeptPages() : undefined
  // exact attributes by default (pjdfstest: a cached link count or inode goes stale); a longer timeout is asked for
  const attrTimeout = options.attrTimeout ?? 0
  // with attributes cached, a change through one name of a hard-linked file invalidates the others (each has a kernel inode of its own)
  const links = attrTimeout > 0 ? new LinkedNames() : undefined
  const ops = createFuseOps(vfs, { answer, context, locks, kernelChecks: kernelChecks(options), ...(links ? { links } : {}), ...(pages ? { pages } : {}) })
  fuse = new Fuse(dir, ops, fuseMountOptions({ ...options, attrTimeout }))
  const mounted = fuse

  await new Promise<void>((done, fail) => {
    mounted.mount(err => {
      if (!err) return done()
      const code = (err as { code?: string }).code
      if (code === 'EFUSEALLOWOTHER') {
        fail(new FuseUnavailableError(`allow_other needs 'user_allow_other' in /etc/fuse.conf (add that line, as root) — ${err.message}`, { cause: err }))
      } else if (code?.startsWith('EFUSE') || /fuse failed|fusermount/i.test(err.message)) {
        fail(new FuseUnavailableError(`libfuse could not mount ${dir} (check /dev/fuse and that fuse3 is installed) — ${err.message}`, { cause: err }))
      } else {
        fail(new Error(`cannot mount FUSE at ${dir}: ${err.message}`, { cause: err }))
      }
    })
  })
  if (readAhead > 0) await setReadAhead(dir, readAhead, logger)
  logger.info({ mountpoint: dir }, 'FUSE mounted')
  const invalidations = invalidateOnChange(vfs, mounted, links, pages, logger)

  let unmounting: Promise<void> | undefined
  const unmount = async (): Promise<void> => {
    invalidations.stop()
    await locks.close()
    try {
      await new Promise<void>((done, fail) => mounted.unmount(err => (err ? fail(err) : done())))
    } catch (err) {
      logger.warn({ err, mountpoint: dir }, 'fuse-napi could not unmount; unmounting lazily')
      if ((await listFuseMounts()).some(m => m.mountpoint === dir)) await lazyUnmount(dir)
    }
    logger.info({ mountpoint: dir }, 'FUSE unmounted')
  }
  return {
    mountpoint: dir,
    unmount: () => (unmounting ??= unmount()),
    invalidated: () => invalidations.settled(),
  }
}

/**
 * The attribute timeout `vfs` can be mounted with (`attrTimeout`) for speed:
 * {@link SOLE_WRITER_ATTR_TIMEOUT} when every mount of `vfs` says it is its tree's only
 * writer (so every change the kernel did not make reaches it as an invalidation), else 0.
 * Not the default, which is 0: with it, libfuse's inode per name shows through (pjdfstest
 * on a chain: 22 more subtests of link and rename fail, on link counts and inode numbers
 * of a hard-linked file's other names).
 */
export function defaultAttrTimeout(vfs: Vfs): number {
  return everyMountSoleWriter(vfs) ? SOLE_WRITER_ATTR_TIMEOUT : 0
}

/** Whether every mount of `vfs` says it is its tree's only writer (see `Mount.soleWriter`); such a FUSE mount also keeps the pages of files unchanged since their last open. */
function everyMountSoleWriter(vfs: Vfs): boolean {
  const mounts = vfs.mountObjects()
  return mounts.length > 0 && mounts.every(m => m.mount.soleWriter === true)
}

/**
 * Sends the kernel an entry invalidation for every path a change event names that the
 * kernel did not change itself: events raised while a FUSE request is being handled are
 * the kernel's own doing and skipped, except for the other names of a hard-linked file
 * (see {@link LinkedNames}), whose kernel inodes the request did not touch. Invalidations
 * are batched per turn of the event loop and deduplicated; they are sent from outside any
 * request (the binding refuses them inside one), and the kernel applies them once the
 * request that caused them has been answered.
 */
function invalidateOnChange(vfs: Vfs, fuse: FuseInstance, links: LinkedNames | undefined, pages: KeptPages | undefined, logger: Logger): { stop(): void; settled(): Promise<void> } {
  let queued = new Set<string>()
  let scheduled = false
  let stopped = false
  let inFlight = 0
  let waiters: Array<() => void> = []
  const wake = (): void => {
    if (scheduled || inFlight > 0) return
    const w = waiters
    waiters = []
    for (const done of w) done()
  }
  const flush = (): void => {
    scheduled = false
    const paths = queued
    queued = new Set()
    for (const path of paths) {
      if (stopped) break
      inFlight++
      fuse.invalidateEntry(path, err => {
        inFlight--
        // ENOENT: the kernel had nothing cached for it, which is the goal
        if (err && !/ENOENT|No such file/.test(`${(err as { code?: string }).code ?? ''} ${err.message}`)) logger.debug({ err, path }, 'FUSE entry invalidation failed')
        wake()
      })
    }
    wake()
  }
  // made here, outside every request: what it schedules runs outside them too
  const outside = new AsyncResource('facet-fuse-invalidation')
  const add = (path: string | undefined): void => {
    if (path === undefined || path === '/') return
    queued.add(path)
    if (!scheduled) {
      scheduled = true
      outside.runInAsyncScope(() => setImmediate(flush))
    }
  }
  if (links) links.onStale = add
  // an exchange is reported as two renames, the second the first reversed: the names move once
  let exchanged: ChangeEvent | undefined
  const stop = vfs.watch('/', (event: ChangeEvent) => {
    if (stopped) return
    const moved = event.kind === 'dir' && (event.type === 'rename' || event.type === 'delete')
    pages?.changed(event.path, moved)
    if (event.oldPath !== undefined) pages?.changed(event.oldPath, moved)
    if (links) {
      for (const other of links.others(event.path)) add(other)
      if (event.oldPath !== undefined) for (const other of links.others(event.oldPath)) add(other)
      if (event.type === 'delete') links.forget(event.path)
    }
    if (links && event.type === 'rename' && event.oldPath !== undefined) {
      const second = exchanged !== undefined && exchanged.path === event.oldPath && exchanged.oldPath === event.path
      exchanged = second ? undefined : event
      if (!second) links.moved(event.oldPath, event.path)
      if (!second) queueMicrotask(() => (exchanged = undefined))
    }
    if (fuse.context()) return
    add(event.path)
    add(event.oldPath)
  })
  return {
    stop() {
      stopped = true
      if (links) links.onStale = () => {}
      stop()
      queued.clear()
      scheduled = false
      inFlight = 0
      wake()
    },
    settled() {
      if (!scheduled && inFlight === 0) return Promise.resolve()
      return new Promise(done => waiters.push(done))
    },
  }
}

async function requireDevFuse(): Promise<void> {
  try {
    await access('/dev/fuse', constants.R_OK | constants.W_OK)
  } catch (err) {
    throw new FuseUnavailableError(`/dev/fuse is missing or not usable (load the fuse kernel module, or run the container with --device /dev/fuse) — ${(err as Error).message}`, { cause: err })
  }
}

/**
 * Says whether this machine can mount with FUSE: fuse-napi and `libfuse3.so.3` load,
 * `/dev/fuse` is usable. Resolves `{ ok: false, reason }` with the fix instead of throwing.
 */
export async function fuseAvailability(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    loadFuse()
    await requireDevFuse()
    return { ok: true }
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) }
  }
}
