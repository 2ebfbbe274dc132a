import { access, constants, mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Logger } from '../vfs/log.ts'
import type { Vfs } from '../vfs/vfs.ts'
import { createAnswerer } from './answer.ts'
import { FuseUnavailableError, loadFuseNative } from './binding.ts'
import { createFuseOps, patchFgetattr } from './ops.ts'
import { fuseNativeOptions, type MountTuning } from './options.ts'
import { clearStaleMount, lazyUnmount, listFuseMounts } from './stale.ts'

export { FuseUnavailableError } from './binding.ts'
export { fuseNativeOptions, mountOptionList, type MountTuning } from './options.ts'
export { abortFuseConnection, clearStaleMount, fuseConnectionDir, isStaleMount, lazyUnmount, listFuseMounts, waitingRequests, type FuseMountEntry } from './stale.ts'
export { unmountOnSignals, type SignalOptions } from './signals.ts'

/** Options for {@link mountFuse}: the mount's kernel cache and transfer settings plus the adapter's own. */
export interface FuseOptions extends MountTuning {
  /** Where the adapter logs failed and late calls. @default the Vfs's logger */
  logger?: Logger
  /**
   * Milliseconds a call may take before it is answered `ETIMEDOUT` (and its late result
   * dropped). Kept below fuse-native's own 15 s limit.
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
   * Falls back to a lazy `fusermount -uz` when fuse-native's own unmount fails.
   */
  unmount(): Promise<void>
}

/**
 * Mounts `vfs` on the folder `mountpoint` with FUSE, so `ls`, `cat`, editors and every
 * other program see the tree. Resolves once the kernel has initialised the mount.
 *
 * A dead mount left there by a killed process ("Transport endpoint is not connected")
 * is lazily unmounted first. Throws {@link FuseUnavailableError} when fuse-native,
 * `libfuse.so.2` or `/dev/fuse` is missing or libfuse refuses to mount on this machine,
 * and a plain `Error` naming the folder when the folder is unusable (in use, not a folder).
 *
 * Never use synchronous `fs` calls on the mount from the process serving it: the call
 * blocks the one JS thread that would answer it. Use child processes or `fs/promises`,
 * and never start a child with its working folder (or its executable) on the mount:
 * the child's `chdir` runs while this thread waits for the child to start.
 */
export async function mountFuse(vfs: Vfs, mountpoint: string, options: FuseOptions = {}): Promise<FuseMount> {
  const Fuse = loadFuseNative()
  await requireDevFuse()
  const logger = options.logger ?? vfs.logger
  const dir = resolve(mountpoint)

  if (await clearStaleMount(dir)) logger.warn({ mountpoint: dir }, 'cleared a dead FUSE mount left by a killed process')
  if (options.mkdir ?? true) await mkdir(dir, { recursive: true })

  const answer = createAnswerer({ timeoutMs: options.timeoutMs ?? 12_000, logger })
  const ops = createFuseOps(vfs, { answer })
  const fuse = new Fuse(dir, ops, fuseNativeOptions(options))
  patchFgetattr(fuse, ops.fgetattr as (path: string, fd: number, cb: (code: number) => void) => void)

  await new Promise<void>((done, fail) => {
    fuse.mount(err => {
      if (!err) return done()
      // libfuse itself refused (no permission for /dev/fuse, no fusermount, no mount
      // rights in a container); it printed why on stderr. fuse-native has already
      // checked the folder, so this is the machine, not the call.
      if (err.message === 'fuse failed') {
        fail(new FuseUnavailableError(`libfuse could not mount ${dir} (its reason is on stderr; check /dev/fuse permissions and that fusermount is installed) — fuse failed`, { cause: err }))
      } else {
        fail(new Error(`cannot mount FUSE at ${dir}: ${err.message}`, { cause: err }))
      }
    })
  })
  logger.info({ mountpoint: dir }, 'FUSE mounted')

  let unmounting: Promise<void> | undefined
  const unmount = async (): Promise<void> => {
    try {
      await new Promise<void>((done, fail) => fuse.unmount(err => (err ? fail(err) : done())))
    } catch (err) {
      logger.warn({ err, mountpoint: dir }, 'fuse-native could not unmount; unmounting lazily')
      if ((await listFuseMounts()).some(m => m.mountpoint === dir)) await lazyUnmount(dir)
    }
    logger.info({ mountpoint: dir }, 'FUSE unmounted')
  }
  return {
    mountpoint: dir,
    unmount: () => (unmounting ??= unmount()),
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
 * Says whether this machine can mount with FUSE: fuse-native and `libfuse.so.2` load,
 * `/dev/fuse` is usable. Resolves `{ ok: false, reason }` with the fix instead of throwing.
 */
export async function fuseAvailability(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    loadFuseNative()
    await requireDevFuse()
    return { ok: true }
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) }
  }
}
