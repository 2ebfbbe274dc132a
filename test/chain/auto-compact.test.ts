import { stat } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { AutoCompactor, cannotAutoCompact, liveBytes } from '../../src/chain/auto-compact.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { Chain } from '../../src/chain/store.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { silentLogger, type Logger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { chainVfs, tempHomeEach, testIdentity } from './helpers.ts'

const MiB = 1024 * 1024

/** A logger that keeps what it is told, for asserting on it. */
function keptLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = []
  const keep = (_obj: unknown, msg?: string) => void lines.push(String(msg))
  const logger = { ...silentLogger, info: keep, warn: keep } as Logger
  return { logger, lines }
}

describe('automatic compaction', () => {
  const t = tempHomeEach()

  it('compacts a log past the garbage ratio to near its live size, keeping every file exact', async () => {
    let { vfs, chain } = await chainVfs(t.path, t.home)
    const last = Buffer.alloc(MiB, 7)
    for (let i = 0; i < 6; i++) {
      await vfs.writeFile('/c/churn.bin', i === 5 ? last : Buffer.alloc(MiB, i))
      await chain.sync()
    }
    await vfs.writeFile('/c/small.txt', 'kept as it was')
    await chain.sync()
    const before = chain.logBytes
    const live = liveBytes(chain)
    expect(live).toBeGreaterThanOrEqual(MiB)
    expect(live).toBeLessThan(1.1 * MiB)
    expect(before).toBeGreaterThan(6 * MiB)

    const { logger, lines } = keptLogger()
    const compactor = new AutoCompactor(chain, { garbageRatio: 1.5, minBytes: 2 * MiB }, logger)
    const report = await compactor.check()
    expect(report).toMatchObject({ beforeBytes: before, inodes: 3 })
    expect(chain.logBytes).toBe(report!.afterBytes)
    expect((await stat(t.path)).size).toBe(report!.afterBytes)
    expect(chain.logBytes).toBeLessThanOrEqual(1.5 * liveBytes(chain))
    expect(lines).toEqual([`chain ${t.path}: compacted ${before} -> ${report!.afterBytes} bytes (live ${live})`])
    // the mount goes on writing on the new log
    await vfs.writeFile('/c/after.txt', 'after')
    await compactor.stop()
    await vfs.close()

    expect(await verifyChain(t.path, { home: t.home })).toMatchObject({ ok: true })
    ;({ vfs, chain } = await chainVfs(t.path, t.home))
    expect((await vfs.readFile('/c/churn.bin')).equals(last)).toBe(true)
    expect((await vfs.readFile('/c/small.txt')).toString()).toBe('kept as it was')
    expect((await vfs.readFile('/c/after.txt')).toString()).toBe('after')
    await vfs.close()
  })

  it('leaves a log alone below minBytes or within the ratio, and looks again only after it grew by a quarter', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    try {
      await vfs.writeFile('/c/a.bin', Buffer.alloc(MiB, 1))
      await vfs.writeFile('/c/a.bin', Buffer.alloc(MiB, 2))
      await chain.sync()
      const size = chain.logBytes
      // twice the live state, but smaller than minBytes
      expect(await new AutoCompactor(chain, { minBytes: 64 * MiB }, silentLogger).check()).toBeUndefined()
      // past minBytes, but within a generous ratio
      const lenient = new AutoCompactor(chain, { garbageRatio: 3, minBytes: 0 }, silentLogger)
      expect(await lenient.check()).toBeUndefined()
      expect(chain.logBytes).toBe(size)
      expect((await vfs.readFile('/c/a.bin')).equals(Buffer.alloc(MiB, 2))).toBe(true)
      // two more overwrites make it 4x, past the 1.25x growth mark: now it compacts
      await vfs.writeFile('/c/a.bin', Buffer.alloc(MiB, 3))
      await vfs.writeFile('/c/a.bin', Buffer.alloc(MiB, 4))
      await chain.sync()
      const report = await lenient.check()
      expect(report).toBeDefined()
      expect(report!.beforeBytes).toBeGreaterThan(3 * liveBytes(chain))
      expect((await vfs.readFile('/c/a.bin')).equals(Buffer.alloc(MiB, 4))).toBe(true)
    } finally {
      await vfs.close()
    }
  })

  it('never compacts a chain opened read-only', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/a.bin', Buffer.alloc(MiB, 1))
    await vfs.writeFile('/c/a.bin', Buffer.alloc(MiB, 2))
    await vfs.close()
    expect(cannotAutoCompact(chain)).toBeUndefined()
    const reader = await Chain.open(t.path, { identity: chain.identity, home: t.home, readOnly: true })
    try {
      expect(cannotAutoCompact(reader)).toBe('the chain is open read-only')
      const size = reader.logBytes
      expect(await new AutoCompactor(reader, { minBytes: 0, garbageRatio: 1 }, silentLogger).check()).toBeUndefined()
      expect((await stat(t.path)).size).toBe(size)
    } finally {
      await reader.close()
    }
  })

  it('refuses a policy that could never be met', () => {
    expect(() => new AutoCompactor({} as Chain, { garbageRatio: 0.5 }, silentLogger)).toThrow('garbageRatio must be at least 1, got 0.5')
    expect(() => new AutoCompactor({} as Chain, { minBytes: -1 }, silentLogger)).toThrow('minBytes must be a byte count >= 0, got -1')
  })
})

describe('automatic compaction of a mounted chain', () => {
  const t = tempHomeEach()

  it('compacts while mounted once its policy is met, and the mount reads and writes on', async () => {
    const waiting: Array<() => void> = []
    let compactions = 0
    const nextCompaction = () => new Promise<void>(resolve => waiting.push(resolve))
    const logger = { ...silentLogger, info: (_o: unknown, msg?: string) => void (String(msg).includes(': compacted ') && (compactions++, waiting.splice(0).forEach(w => w()))) } as Logger
    const chain = await Chain.openOrCreate(t.path, { identity: testIdentity(), home: t.home, logger })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain, { compaction: { minBytes: 2 * MiB, intervalMs: 20 } }) }, logger: silentLogger })
    try {
      for (let i = 0; i < 4; i++) {
        await vfs.writeFile('/c/churn.bin', Buffer.alloc(MiB, i))
        await chain.sync()
      }
      // checked and waited for in one turn of the event loop: no compaction can slip between;
      // a compaction swaps the log before it logs, so the count is waited for too
      while (compactions === 0 || chain.logBytes > 1.5 * liveBytes(chain)) await nextCompaction()
      expect(compactions).toBeGreaterThan(0)
      expect(chain.logBytes).toBeLessThanOrEqual(1.5 * liveBytes(chain))
      expect((await vfs.readFile('/c/churn.bin')).equals(Buffer.alloc(MiB, 3))).toBe(true)
      await vfs.writeFile('/c/next.txt', 'on the new log')
      expect((await vfs.readFile('/c/next.txt')).toString()).toBe('on the new log')
    } finally {
      await vfs.close()
    }
    expect(await verifyChain(t.path, { home: t.home })).toMatchObject({ ok: true })
  })

  it('never compacts a mount whose compaction is off', async () => {
    const chain = await Chain.openOrCreate(t.path, { identity: testIdentity(), home: t.home })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain, { compaction: false }) }, logger: silentLogger })
    try {
      for (let i = 0; i < 4; i++) await vfs.writeFile('/c/churn.bin', Buffer.alloc(MiB, i))
      await chain.sync()
      expect(chain.logBytes).toBeGreaterThan(4 * MiB)
    } finally {
      await vfs.close()
    }
  })
})
