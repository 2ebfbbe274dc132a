import { readFile, stat } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { FuseUnavailableError, loadFuse } from '../../src/fuse/binding.ts'
import { defaultWorkers, fuseMountOptions, readAheadKb } from '../../src/fuse/options.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { toFuseStatfs } from '../../src/fuse/ops.ts'
import { fuseSkip, mountForTest } from '../helpers/fuse.ts'

describe('mount options and loading', () => {
  it('mounts without default_permissions (the router checks rights: only the mounting user reaches the mount), 1 MiB reads, exact attributes, 1 s entry cache, a worker per core and 4 more for lock waits by default', () => {
    expect(fuseMountOptions()).toEqual({
      fsname: 'facetfs',
      subtype: 'facet',
      maxRead: 1048576,
      attrTimeout: 0,
      entryTimeout: 1,
      defaultPermissions: false,
      maxConcurrency: defaultWorkers() + 4,
      timeout: { default: 15_000, lock: false, flock: false },
      nullPathOk: true,
      autoUnmount: true,
    })
  })

  it('adds allow_other, debug and default_permissions, drops auto_unmount, and takes other timeouts when asked', () => {
    expect(fuseMountOptions({ attrTimeout: 0.5, entryTimeout: 2, allowOther: true, autoUnmount: false, debug: true, fsname: 'notes', maxRead: 65536, workers: 2, lockWaits: 0 })).toEqual({
      fsname: 'notes',
      subtype: 'facet',
      maxRead: 65536,
      attrTimeout: 0.5,
      entryTimeout: 2,
      defaultPermissions: true,
      maxConcurrency: 2,
      timeout: { default: 15_000, lock: false, flock: false },
      nullPathOk: true,
      allowOther: true,
      debug: true,
    })
  })

  it('sizes the workers to the machine, from 2 to 8', () => {
    expect(defaultWorkers()).toBeGreaterThanOrEqual(2)
    expect(defaultWorkers()).toBeLessThanOrEqual(8)
  })

  it('refuses an fsname that would inject options, a negative timeout, an odd transfer size and a worker count out of range with RangeError', () => {
    expect(() => fuseMountOptions({ fsname: 'x,allow_other' })).toThrow(RangeError)
    expect(() => fuseMountOptions({ attrTimeout: -1 })).toThrow(RangeError)
    expect(() => fuseMountOptions({ entryTimeout: Number.NaN })).toThrow(RangeError)
    expect(() => fuseMountOptions({ maxRead: 100 })).toThrow(RangeError)
    expect(() => fuseMountOptions({ workers: 0 })).toThrow(RangeError)
    expect(() => fuseMountOptions({ workers: 65 })).toThrow(RangeError)
    expect(() => fuseMountOptions({ lockWaits: -1 })).toThrow(RangeError)
    expect(() => fuseMountOptions({ permissions: 'root' as 'facet' })).toThrow(/permissions must be 'facet' or 'kernel'/)
  })

  it('lets the kernel check rights where other users reach the mount, and either side check when asked', () => {
    expect(fuseMountOptions({ allowOther: true }).defaultPermissions).toBe(true)
    expect(fuseMountOptions({ allowOther: true, permissions: 'facet' }).defaultPermissions).toBe(false)
    expect(fuseMountOptions({ permissions: 'kernel' }).defaultPermissions).toBe(true)
  })

  it.skipIf(fuseSkip)('reaches libfuse as one -o list through fuse-napi', () => {
    const Fuse = loadFuse()
    const fuse = new Fuse('/tmp/facet-options-never-mounted', {}, fuseMountOptions({ allowOther: true }))
    expect(fuse._fuseOptions()).toBe('-oallow_other,auto_unmount,default_permissions,max_read=1048576,fsname=facetfs,subtype=facet,entry_timeout=1,attr_timeout=0')
  })

  it('refuses a read-ahead that is not a whole number of KiB from 0 to 65536 with RangeError', () => {
    expect(readAheadKb({})).toBe(1024)
    expect(readAheadKb({ readAheadKb: 0 })).toBe(0)
    for (const bad of [-1, 1.5, 65537, Number.NaN]) expect(() => readAheadKb({ readAheadKb: bad })).toThrow(RangeError)
  })

  it.skipIf(fuseSkip)('sets the read-ahead of the mount it makes, and leaves the kernel default at 0', async () => {
    const vfs = createVfs({ mounts: { '/': memoryMount() }, logger: silentLogger })
    const readAheadOf = async (dir: string): Promise<string> => {
      const dev = (await stat(dir)).dev
      return (await readFile(`/sys/class/bdi/${(dev >>> 8) & 0xfff}:${(dev & 0xff) | ((dev >>> 12) & 0xfff00)}/read_ahead_kb`, 'utf8')).trim()
    }
    const raised = await mountForTest(vfs)
    try {
      expect(await readAheadOf(raised.dir)).toBe('1024')
    } finally {
      await raised.unmount()
    }
    const kept = await mountForTest(vfs, { readAheadKb: 0 })
    try {
      expect(await readAheadOf(kept.dir)).toBe('128')
    } finally {
      await kept.unmount()
      await vfs.close()
    }
  })

  it('passes statfs figures through with a fragment size equal to the block size', () => {
    const big = toFuseStatfs({ bsize: 4096, blocks: 2 ** 34, bfree: 2 ** 33, bavail: 2 ** 33, files: 2 ** 40, ffree: 5, namemax: 255 })
    expect(big).toEqual({ bsize: 4096, frsize: 4096, blocks: 2 ** 34, bfree: 2 ** 33, bavail: 2 ** 33, files: 2 ** 40, ffree: 5, favail: 5, namemax: 255 })
  })

  it('turns a binding that cannot load libfuse3 into FuseUnavailableError saying what to install', () => {
    const missing = () => {
      throw new Error('libfuse3.so.3: cannot open shared object file: No such file or directory\n    at Module._extensions..node')
    }
    expect(() => loadFuse(missing)).toThrow(FuseUnavailableError)
    expect(() => loadFuse(missing)).toThrow(
      'FUSE unavailable: install fuse3 (apt-get install fuse3) and run on Node 22 or 24 — libfuse3.so.3: cannot open shared object file: No such file or directory',
    )
  })
})
