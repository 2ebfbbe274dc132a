import { execFile } from 'node:child_process'
import { constants as fsc } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { ChainIntegrityError, INLINE_SIGNATURE_BLOCKS } from '../../src/chain/log.ts'
import { bodyCrc, FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from '../../src/chain/format.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { fuseSkip, mountForTest } from '../helpers/fuse.ts'
import { chainVfs, tempHomeEach, testIdentity } from './helpers.ts'

const run = promisify(execFile)
const skipFuse = fuseSkip
const BLOCKS = INLINE_SIGNATURE_BLOCKS + 8

/** Frame offsets of a closed log. */
function frames(log: Buffer): number[] {
  const out: number[] = []
  for (let p = FILE_HEADER_BYTES; p < log.length; p += FRAME_HEADER_BYTES + log.readUInt32LE(p + 4)) out.push(p)
  return out
}

/** Flips a byte `back` bytes before the end of the body of frame `i` and fixes the frame CRC (a forgery, not a torn write). */
function forge(log: Buffer, i: number, back: number): Buffer {
  const out = Buffer.from(log)
  const at = frames(out)[i]!
  const len = out.readUInt32LE(at + 4)
  const body = out.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + len)
  body[len - back]! ^= 0x5a
  out.writeUInt32LE(bodyCrc(body), at + 8)
  return out
}

describe('chain signing and verification on worker threads', () => {
  const t = tempHomeEach()

  it('signs blocks on a worker thread, and opening checks a long log on worker threads', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    for (let i = 0; i < BLOCKS; i++) {
      await vfs.writeFile(`/c/f${i}.txt`, `file ${i}`)
      await chain.sync()
    }
    expect(chain.headSeq).toBe(BLOCKS)
    await vfs.close()
    expect(await verifyChain(t.path, { home: t.home })).toMatchObject({ ok: true, headSeq: BLOCKS, blocks: BLOCKS + 1 })
    const again = await chainVfs(t.path, t.home, { readOnly: true })
    expect(again.chain.report.blocks).toBe(BLOCKS + 1)
    expect((await again.vfs.readFile(`/c/f${BLOCKS - 1}.txt`)).toString()).toBe(`file ${BLOCKS - 1}`)
    await again.vfs.close()
  })

  it('names a forged signature checked on a worker thread (ChainIntegrityError, bad signature), before a later structural fault', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    for (let i = 0; i < BLOCKS; i++) {
      await vfs.writeFile(`/c/f${i}.txt`, `file ${i}`)
      await chain.sync()
    }
    await vfs.close()
    const pristine = await readFile(t.path)
    const bad = INLINE_SIGNATURE_BLOCKS + 3
    await writeFile(t.path, forge(pristine, bad, 100))
    await expect(Chain.open(t.path, { identity: testIdentity(), home: t.home })).rejects.toMatchObject({ name: 'ChainIntegrityError', seq: bad, reason: 'bad signature' })
    expect(await verifyChain(t.path, { home: t.home })).toMatchObject({ ok: false, problem: { seq: bad, reason: 'bad signature' } })
    // a later block whose chain id is changed fails on the JS thread first; the earlier forged signature is still the one named
    const twice = forge(forge(pristine, bad, 100), bad + 2, 1)
    const later = frames(twice)[bad + 2]! + FRAME_HEADER_BYTES + 1
    twice[later]! ^= 1
    twice.writeUInt32LE(bodyCrc(twice.subarray(frames(twice)[bad + 2]! + FRAME_HEADER_BYTES, frames(twice)[bad + 3]!)), frames(twice)[bad + 2]! + 8)
    await writeFile(t.path, twice)
    const err = await Chain.open(t.path, { identity: testIdentity(), home: t.home }).catch(e => e as ChainIntegrityError)
    expect(err).toBeInstanceOf(ChainIntegrityError)
    expect(err).toMatchObject({ seq: bad, reason: 'bad signature' })
  })

  it('puts changes made while a block is signed into the next block; each sync resolves after its own block', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home, { commitDelayMs: 60_000 })
    await vfs.writeFile('/c/seed', 'x')
    const base = chain.headSeq
    const release = chain.signer!.holdForTest()
    const seqs: Record<string, number> = {}
    const file = (name: string) => chain.make(chain.root, name, 'file', 0o644, { uid: 0, gid: 0 })
    await chain.write(file('a'), 0, Buffer.from('first'))
    const s1 = chain.sync().then(() => (seqs.a = chain.headSeq))
    await new Promise(setImmediate)
    await chain.write(file('b'), 0, Buffer.from('second'))
    const s2 = chain.sync().then(() => (seqs.b = chain.headSeq))
    await chain.write(file('c'), 0, Buffer.from('third'))
    const s3 = chain.sync().then(() => (seqs.c = chain.headSeq))
    await new Promise(setImmediate)
    expect(seqs).toEqual({})
    await release()
    await Promise.all([s1, s2, s3])
    expect(seqs).toEqual({ a: base + 1, b: base + 2, c: base + 2 })
    await vfs.close()
    const again = await chainVfs(t.path, t.home)
    expect(again.chain.headSeq).toBe(base + 2)
    expect((await again.vfs.readFile('/c/b')).toString()).toBe('second')
    expect((await again.vfs.readFile('/c/c')).toString()).toBe('third')
    await again.vfs.close()
  })

  it('surfaces a worker crash during signing as EIO on fsync and loses nothing: the next fsync commits it', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home, { commitDelayMs: 60_000 })
    await vfs.writeFile('/c/before.txt', 'committed before the crash')
    const fh = await vfs.open('/c/during.txt', fsc.O_WRONLY | fsc.O_CREAT)
    await vfs.write(fh, 0, Buffer.from('written while the worker crashed'))
    await vfs.mkdir('/c/dir')
    chain.signer!.crashNextJob()
    await expect(vfs.fsync(fh)).rejects.toMatchObject({ code: 'EIO' })
    expect((await vfs.readFile('/c/during.txt')).toString()).toBe('written while the worker crashed')
    await vfs.fsync(fh)
    await vfs.release(fh)
    await vfs.writeFile('/c/dir/after.txt', 'after')
    await vfs.close()
    expect(await verifyChain(t.path, { home: t.home })).toMatchObject({ ok: true })
    const again = await chainVfs(t.path, t.home)
    expect((await again.vfs.readFile('/c/before.txt')).toString()).toBe('committed before the crash')
    expect((await again.vfs.readFile('/c/during.txt')).toString()).toBe('written while the worker crashed')
    expect((await again.vfs.readFile('/c/dir/after.txt')).toString()).toBe('after')
    await again.vfs.close()
  })

  it('lets a follower apply new blocks only after their signatures pass on a worker thread (ChainIntegrityError, bad signature)', async () => {
    let { vfs, chain } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/a.txt', 'first')
    await vfs.close()
    const first = await readFile(t.path)
    ;({ vfs, chain } = await chainVfs(t.path, t.home))
    await vfs.writeFile('/c/b.txt', 'second')
    await chain.sync()
    await vfs.close()
    const full = await readFile(t.path)
    await writeFile(t.path, first)
    const reader = await Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true, trust: false })
    const head = reader.headSeq
    const forged = forge(full, frames(first).length, 7).subarray(first.length)
    await writeFile(t.path, Buffer.concat([first, forged]))
    await expect(reader.catchUp()).rejects.toMatchObject({ name: 'ChainIntegrityError', seq: head + 1, reason: 'bad signature' })
    expect(reader.headSeq).toBe(head)
    expect(reader.lookup(reader.root, 'b.txt')).toBeUndefined()
    await writeFile(t.path, full)
    const touched = await reader.catchUp()
    expect(touched.size).toBeGreaterThan(0)
    const b = reader.lookup(reader.root, 'b.txt')!
    expect(Buffer.from(await reader.read(b, 0, 100)).toString()).toBe('second')
    await reader.close()
  })

  describe.skipIf(skipFuse)(`through FUSE${skipFuse ? ` (skipped: ${skipFuse})` : ''}`, () => {
    it('answers ls while a commit is being signed: ls completes before the commit does', async () => {
      const chain = await Chain.create(t.path, { identity: testIdentity(), home: t.home, commitDelayMs: 60_000 })
      const vfs = createVfs({ mounts: { '/': chainMount(chain) }, logger: silentLogger })
      const m = await mountForTest(vfs)
      try {
        await vfs.writeFile('/listed.txt', 'x')
        await chain.write(chain.make(chain.root, 'big.bin', 'file', 0o644, { uid: 0, gid: 0 }), 0, Buffer.alloc(4 << 20, 7))
        const release = chain.signer!.holdForTest()
        const order: string[] = []
        const commit = chain.sync().then(() => order.push('commit'))
        const { stdout } = await run('ls', ['-l', m.dir])
        order.push('ls')
        expect(stdout).toContain('listed.txt')
        expect(stdout).toContain('big.bin')
        await release()
        await commit
        expect(order).toEqual(['ls', 'commit'])
      } finally {
        await m.unmount()
        await vfs.close()
      }
    })
  })
})
