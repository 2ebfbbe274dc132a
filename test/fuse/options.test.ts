import { describe, expect, it } from 'vitest'
import { FuseUnavailableError, loadFuseNative } from '../../src/fuse/binding.ts'
import { fuseNativeOptions, mountOptionList } from '../../src/fuse/options.ts'
import { toFuseStatfs } from '../../src/fuse/ops.ts'
import { fuseSkip } from '../helpers/fuse.ts'

describe('mount options and loading', () => {
  it('lists big_writes, 128 KiB transfers, atomic O_TRUNC and explicit cache timeouts by default', () => {
    expect(mountOptionList()).toEqual([
      'fsname=facetfs',
      'subtype=facet',
      'big_writes',
      'max_write=131072',
      'max_read=131072',
      'atomic_o_trunc',
      'attr_timeout=0.1',
      'entry_timeout=1',
      'negative_timeout=0',
      'auto_unmount',
    ])
  })

  it('adds allow_other and debug, drops auto_unmount, and takes other timeouts when asked', () => {
    const list = mountOptionList({ attrTimeout: 0.5, entryTimeout: 2, allowOther: true, autoUnmount: false, debug: true, fsname: 'notes', maxWrite: 65536 })
    expect(list).toEqual([
      'fsname=notes',
      'subtype=facet',
      'big_writes',
      'max_write=65536',
      'max_read=131072',
      'atomic_o_trunc',
      'attr_timeout=0.5',
      'entry_timeout=2',
      'negative_timeout=0',
      'allow_other',
      'debug',
    ])
  })

  it('refuses an fsname that would inject options, a negative timeout and an odd transfer size with RangeError', () => {
    expect(() => mountOptionList({ fsname: 'x,allow_other' })).toThrow(RangeError)
    expect(() => mountOptionList({ attrTimeout: -1 })).toThrow(RangeError)
    expect(() => mountOptionList({ entryTimeout: Number.NaN })).toThrow(RangeError)
    expect(() => mountOptionList({ maxWrite: 100 })).toThrow(RangeError)
  })

  it.skipIf(fuseSkip)('reaches libfuse as exactly one -o list through fuse-native', () => {
    const Fuse = loadFuseNative()
    const fuse = new Fuse('/tmp/facet-options-never-mounted', {}, fuseNativeOptions())
    expect(fuse._fuseOptions()).toBe('-o' + mountOptionList().join(','))
  })

  it('scales statfs figures that overflow 32 bits into a larger fragment size', () => {
    const big = toFuseStatfs({ bsize: 4096, blocks: 2 ** 34, bfree: 2 ** 33, bavail: 2 ** 33, files: 2 ** 40, ffree: 5, namemax: 255 })
    expect(big).toEqual({ bsize: 4096, frsize: 4096 * 8, blocks: 2 ** 31, bfree: 2 ** 30, bavail: 2 ** 30, files: 0xffffffff, ffree: 5, favail: 5, namemax: 255 })
    const small = toFuseStatfs({ bsize: 4096, blocks: 100, bfree: 50, bavail: 40, files: 10, ffree: 3, namemax: 255 })
    expect(small).toEqual({ bsize: 4096, frsize: 4096, blocks: 100, bfree: 50, bavail: 40, files: 10, ffree: 3, favail: 3, namemax: 255 })
  })

  it('turns a binding that cannot load libfuse.so.2 into FuseUnavailableError saying what to install', () => {
    const missing = () => {
      throw new Error('libfuse.so.2: cannot open shared object file: No such file or directory\n    at Module._extensions..node')
    }
    expect(() => loadFuseNative(missing)).toThrow(FuseUnavailableError)
    expect(() => loadFuseNative(missing)).toThrow(
      'FUSE unavailable: install libfuse2 (apt-get install libfuse2) — libfuse.so.2: cannot open shared object file: No such file or directory',
    )
  })
})
