import { copyFile, readFile, truncate, writeFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { ChainIntegrityError } from '../../src/chain/log.ts'
import { RollbackError } from '../../src/chain/trust.ts'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from '../../src/chain/format.ts'
import { chainVfs, tempHome, testIdentity } from './helpers.ts'

const SECRET = 'TOP-SECRET-PLAINTEXT-0123456789'

/** Frame offsets of a closed log. */
function frames(log: Buffer): number[] {
  const out: number[] = []
  for (let p = FILE_HEADER_BYTES; p < log.length; p += FRAME_HEADER_BYTES + log.readUInt32LE(p + 4)) out.push(p)
  return out
}

describe('tamper detection', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let pristine: Buffer
  let midCopy: string
  beforeAll(async () => {
    t = await tempHome()
    const { vfs, chain } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/one.txt', SECRET.repeat(3000))
    await chain.sync()
    await vfs.writeFile('/c/two.txt', 'second file ' + SECRET)
    await chain.sync()
    midCopy = t.path + '.mid'
    await copyFile(t.path, midCopy)
    await vfs.mkdir('/c/dir')
    await vfs.writeFile('/c/dir/three.txt', 'third')
    await chain.sync()
    await vfs.writeFile('/c/four.txt', 'fourth')
    await vfs.close()
    pristine = await readFile(t.path)
  })
  afterAll(async () => {
    await t.cleanup()
  })

  async function restore(bytes: Buffer = pristine): Promise<void> {
    await writeFile(t.path, bytes)
  }

  it('verifies the untouched log', async () => {
    await restore()
    const r = await verifyChain(t.path, { home: t.home })
    expect(r).toMatchObject({ ok: true, headSeq: frames(pristine).length - 1 })
  })

  it('detects a flipped byte at any sampled position and names the block', async () => {
    const starts = frames(pristine)
    const positions = new Set<number>([0, 9, 12, 15])
    for (const s of starts) for (const d of [0, 4, 8, 12, 13, 40, 200]) positions.add(s + d)
    for (let i = 0; i < 40; i++) positions.add(Math.floor((i + 0.5) * (pristine.length / 40)))
    positions.add(pristine.length - 1)
    for (const pos of positions) {
      if (pos >= pristine.length) continue
      const bad = Buffer.from(pristine)
      bad[pos]! ^= 0x5a
      await restore(bad)
      const r = await verifyChain(t.path, { home: t.home })
      expect(r.ok, `flip at ${pos}`).toBe(false)
      const blockOf = pos < FILE_HEADER_BYTES ? 0 : starts.filter(s => s <= pos).length - 1
      expect(r.problem!.seq, `flip at ${pos}: ${r.problem!.reason}`).toBe(blockOf)
      await expect(Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true })).rejects.toSatisfy(
        (e: unknown) => e instanceof ChainIntegrityError || e instanceof RollbackError,
      )
    }
  })

  it('detects a truncated log, and refuses the cut log as a rollback', async () => {
    const starts = frames(pristine)
    for (const cut of [pristine.length - 1, starts[starts.length - 1]! + 5, starts[2]!]) {
      await restore(pristine.subarray(0, cut))
      const r = await verifyChain(t.path, { home: t.home })
      expect(r.ok, `cut at ${cut}`).toBe(false)
      expect(r.problem!.seq).toBeLessThanOrEqual(starts.length - 1)
      await expect(Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true })).rejects.toBeInstanceOf(RollbackError)
    }
  })

  it('detects reordered blocks and names the first one out of place', async () => {
    const s = frames(pristine)
    const a = pristine.subarray(s[1]!, s[2]!)
    const b = pristine.subarray(s[2]!, s[3]!)
    await restore(Buffer.concat([pristine.subarray(0, s[1]!), b, a, pristine.subarray(s[3]!)]))
    const r = await verifyChain(t.path, { home: t.home })
    expect(r.ok).toBe(false)
    expect(r.problem).toMatchObject({ seq: 1, offset: s[1] })
    expect(r.problem!.reason).toMatch(/sequence number 2 where 1 was expected/)
  })

  it('refuses a replayed older log unless the override is given', async () => {
    await restore(await readFile(midCopy))
    const r = await verifyChain(t.path, { home: t.home })
    expect(r.ok).toBe(false)
    expect(r.problem!.reason).toMatch(/rolled back/)
    await expect(Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true })).rejects.toBeInstanceOf(RollbackError)
    const c = await Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true, allowRollback: true })
    expect(c.report.rollbackAccepted).toMatch(/rolled back/)
    await c.close()
  })

  it('detects chunks swapped between two files on disk, naming the block', async () => {
    const s = frames(pristine)
    // two.txt and one.txt chunk ciphertexts live in blocks 1 and 2; swap 16 bytes of their tails
    const bad = Buffer.from(pristine)
    const endA = s[2]! - 3400
    const endB = s[3]! - 3400
    const tmp = Buffer.from(bad.subarray(endA - 16, endA))
    bad.copy(bad, endA - 16, endB - 16, endB)
    tmp.copy(bad, endB - 16)
    await restore(bad)
    const r = await verifyChain(t.path, { home: t.home })
    expect(r.ok).toBe(false)
    expect(r.problem!.seq).toBe(1)
  })

  it('refuses chunks moved between files in memory with EIO and returns no plaintext', async () => {
    await restore()
    const { vfs, chain } = await chainVfs(t.path, t.home, { readOnly: true })
    const one = chain.lookup(chain.root, 'one.txt')!
    const two = chain.lookup(chain.root, 'two.txt')!
    const ref = one.chunks.get(0)!
    two.chunks.set(0, ref)
    await expect(vfs.readFile('/c/two.txt')).rejects.toMatchObject({ code: 'EIO' })
    await vfs.close()
  })
})
