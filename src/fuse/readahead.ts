import { stat, writeFile } from 'node:fs/promises'
import type { Logger } from '../vfs/log.ts'

/**
 * Sets how far ahead the kernel reads files of the FUSE mount at `mountpoint`, in KiB:
 * the `read_ahead_kb` of the mount's own backing device (`/sys/class/bdi/MAJOR:MINOR`),
 * which exists as long as the mount does and is the kernel's only knob for it (a FUSE
 * server may lower the read-ahead at init, never raise it past the kernel's 128 KiB).
 * Needs root; anywhere else the kernel's default stays, and the reason is logged at debug.
 * Must not be awaited from inside a FUSE request: it stats the mount's root.
 */
export async function setReadAhead(mountpoint: string, kib: number, logger: Logger): Promise<void> {
  try {
    const dev = (await stat(mountpoint)).dev
    // Linux's encoding of a device number: 12 bits of major, 20 of minor, interleaved
    const major = (dev >>> 8) & 0xfff
    const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00)
    await writeFile(`/sys/class/bdi/${major}:${minor}/read_ahead_kb`, `${kib}\n`)
  } catch (err) {
    logger.debug({ err, mountpoint }, 'could not set the read-ahead of the FUSE mount; the kernel default stays')
  }
}
