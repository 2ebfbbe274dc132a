import { appendFile, copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateIdentity } from '../../src/crypto/identity.ts'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from '../../src/chain/format.ts'
import { openChainMount } from '../../src/chain/mount.ts'
import { NoAccessError } from '../../src/chain/store.ts'
import { Chain } from '../../src/chain/store.ts'
import { pinPath, readPin, readTrust, RollbackError, trustDir, trustPath, TrustStoreError, UntrustedChainError, writeTrust } from '../../src/chain/trust.ts'
import { acceptChain, verifyChain } from '../../src/chain/verify.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { forgeChain } from './forge.ts'
import { chainVfs, tempHomeEach, testIdentity } from './helpers.ts'

/** A logger that keeps its warnings. */
function warnings(): { logger: typeof silentLogger; lines: string[] } {
  const lines: string[] = []
  return { lines, logger: { ...silentLogger, warn: (_o: unknown, msg?: string) => void lines.push(msg ?? '') } }
}

/** Frame offsets of a closed log. */
function frames(log: Buffer): number[] {
  const out: number[] = []
  for (let p = FILE_HEADER_BYTES; p < log.length; p += FRAME_HEADER_BYTES + log.readUInt32LE(p + 4)) out.push(p)
  return out
}

/** Writes `n` files into a fresh chain at `path`, one block each, and closes it. */
async function chainOf(path: string, home: string, n: number): Promise<void> {
  const { vfs, chain } = await chainVfs(path, home)
  for (let i = 0; i < n; i++) {
    await vfs.writeFile(`/c/f${i}.txt`, `file ${i}`)
    await chain.sync()
  }
  await vfs.close()
}

describe('a chain pinned to its path (issue 12, case 1: a forged chain served as your own)', () => {
  const t = tempHomeEach()

  it('refuses a forged chain at your chain path (new id, the attacker as owner, root key also wrapped for you) in verify, open and mount, even with allowRollback, and leaves it untouched', async () => {
    const me = testIdentity()
    const mine = await openChainMount({ home: t.home, identity: me, path: t.path })
    await createVfs({ mounts: { '/': mine }, logger: silentLogger }).writeFile('/mine.txt', 'my own file')
    await mine.dispose!()
    const myChain = (await readPin(t.home, resolve(t.path)))!
    expect(myChain.owner.keyId).toBe(Buffer.from(me.keyId).toString('hex'))

    await forgeChain(`${t.path}.forged`, me, { 'mine.txt': 'attacker content' })
    await rename(`${t.path}.forged`, t.path)
    const forged = await readFile(t.path)

    const v = await verifyChain(t.path, { home: t.home })
    expect(v).toMatchObject({ ok: false, problem: { kind: 'trust', offset: -1 } })
    expect(v.problem!.reason).toContain(`is not the chain pinned for it: pinned chain ${myChain.chainId}, owner 'tester'`)
    expect(v.problem!.reason).toMatch(/found chain [0-9a-f]{32}, owner 'default' \(key [0-9a-f]{16}\)\. If you replaced it on purpose, run 'facet trust accept /)
    await expect(Chain.open(t.path, { identity: me, home: t.home })).rejects.toMatchObject({ name: 'UntrustedChainError', reason: 'mismatch' })
    await expect(Chain.open(t.path, { identity: me, home: t.home, readOnly: true, allowRollback: true })).rejects.toBeInstanceOf(UntrustedChainError)
    await expect(openChainMount({ home: t.home, identity: me, path: t.path })).rejects.toBeInstanceOf(UntrustedChainError)
    expect((await readFile(t.path)).equals(forged)).toBe(true)
    expect((await readPin(t.home, resolve(t.path)))!.chainId).toBe(myChain.chainId)
  })

  it('opens a chain whose owner changed only after `trust accept`, which says what it replaced', async () => {
    const me = testIdentity()
    await chainOf(t.path, t.home, 1)
    const before = (await readPin(t.home, resolve(t.path)))!
    await forgeChain(`${t.path}.forged`, me, { 'note.txt': 'theirs' })
    await rename(`${t.path}.forged`, t.path)
    const r = await acceptChain(t.path, { home: t.home })
    expect(r.previous).toEqual(before)
    expect(r.pin).toMatchObject({ path: resolve(t.path), owner: { name: 'default' }, accepted: expect.any(String) })
    expect(r.recordedHead).toMatchObject({ seq: r.report.headSeq })
    const { vfs } = await chainVfs(t.path, t.home)
    expect((await vfs.readFile('/c/note.txt')).toString()).toBe('theirs')
    await vfs.close()
    expect(await verifyChain(t.path, { home: t.home })).toMatchObject({ ok: true, pin: { chainId: r.pin.chainId } })
  })

  it('says on first use what it pinned, and that the owner is not the identity opening it', async () => {
    const me = testIdentity()
    const attacker = await forgeChain(t.path, me, { 'a.txt': 'a' })
    const w = warnings()
    const c = await Chain.open(t.path, { identity: me, home: t.home, logger: w.logger })
    expect(c.report.pinned).toMatchObject({ path: resolve(t.path), owner: { name: 'default', keyId: Buffer.from(attacker.keyId).toString('hex') } })
    await c.close()
    expect(w.lines.join('\n')).toMatch(/first use here; pinned chain [0-9a-f]{32}, owner 'default' \(key [0-9a-f]{16}\) — not the identity opening it \('tester', key [0-9a-f]{16}\)/)
    const again = warnings()
    await (await Chain.open(t.path, { identity: me, home: t.home, logger: again.logger })).close()
    expect(again.lines).toEqual([])
  })

  it('pins a chain it creates without a warning, and refuses another chain created later at the same path', async () => {
    const w = warnings()
    const first = await Chain.create(t.path, { identity: testIdentity(), home: t.home, logger: w.logger })
    await first.close()
    expect(w.lines).toEqual([])
    await rm(t.path)
    const second = await Chain.create(t.path, { identity: testIdentity(), home: t.home }).catch(e => e as Error)
    expect(second).toBeInstanceOf(UntrustedChainError)
  })
})

describe('a damaged or lost trust store (issue 12, case 2)', () => {
  const t = tempHomeEach()

  it('refuses to open or verify with a damaged head record — garbage, {}, wrong shape — naming the file and saying it is damaged', async () => {
    await chainOf(t.path, t.home, 1)
    const chainId = Buffer.from((await readPin(t.home, resolve(t.path)))!.chainId, 'hex')
    const file = trustPath(t.home, chainId)
    for (const bad of ['{"seq": 3, "ha', '{}', '[]', 'null', '{"seq": "3", "hash": "00"}', '{"seq": -1, "hash": "' + '0'.repeat(64) + '"}']) {
      await writeFile(file, bad)
      for (const attempt of [() => Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true }), () => verifyChain(t.path, { home: t.home })]) {
        const err = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(err, bad).toBeInstanceOf(TrustStoreError)
        expect((err as TrustStoreError).file).toBe(file)
        expect((err as Error).message).toContain(`the trust store file ${file} is damaged`)
      }
    }
  })

  it('refuses to open or verify with a damaged pin file, naming it', async () => {
    await chainOf(t.path, t.home, 1)
    const file = pinPath(t.home, resolve(t.path))
    for (const bad of ['garbage', '{}', '{"format":"facet-trust-pin/1","path":"/elsewhere","chainId":"00","owner":{}}']) {
      await writeFile(file, bad)
      await expect(Chain.open(t.path, { identity: testIdentity(), home: t.home })).rejects.toThrow(`the trust store file ${file} is damaged`)
      await expect(verifyChain(t.path, { home: t.home })).rejects.toBeInstanceOf(TrustStoreError)
    }
    // an explicit accept replaces it
    expect((await acceptChain(t.path, { home: t.home })).replacedDamaged).toEqual([file])
    await (await Chain.open(t.path, { identity: testIdentity(), home: t.home })).close()
  })

  it('writes the trust store atomically: readers never see a partial record and no temporary file is left', async () => {
    const id = Buffer.alloc(16, 7)
    await writeTrust(t.home, id, { seq: 0, hash: 'a'.repeat(64) })
    let stop = false
    let reads = 0
    const reader = (async () => {
      while (!stop) {
        await readTrust(t.home, id)
        reads++
      }
    })()
    for (let i = 1; i <= 100; i++) await writeTrust(t.home, id, { seq: i, hash: (i % 16).toString(16).repeat(64) })
    stop = true
    await reader
    expect(reads).toBeGreaterThan(0)
    expect(await readTrust(t.home, id)).toEqual({ seq: 100, hash: '4'.repeat(64) })
    expect((await readdir(trustDir(t.home))).filter(f => f.endsWith('.tmp'))).toEqual([])
  })

  it('refuses a rolled-back log whose trust store was deleted, because it holds blocks the opening identity signed, until accepted or allowRollback', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/a.txt', 'one')
    await chain.sync()
    await copyFile(t.path, `${t.path}.old`)
    await vfs.writeFile('/c/b.txt', 'two')
    await vfs.close()
    await rm(trustDir(t.home), { recursive: true })
    await rename(`${t.path}.old`, t.path)
    const old = await readFile(t.path)
    await expect(Chain.open(t.path, { identity: testIdentity(), home: t.home })).rejects.toMatchObject({ name: 'UntrustedChainError', reason: 'lost' })
    await expect(Chain.open(t.path, { identity: testIdentity(), home: t.home })).rejects.toThrow(/pinned nowhere in .*, yet it holds 1 block\(s\) signed by the identity opening it: the trust store was deleted or lost/)
    expect((await readFile(t.path)).equals(old)).toBe(true)
    // without an identity, verify cannot tell: it says the path is not pinned
    expect(await verifyChain(t.path, { home: t.home })).toMatchObject({ ok: true, pin: undefined })
    const c = await Chain.open(t.path, { identity: testIdentity(), home: t.home, allowRollback: true })
    expect(c.report.rollbackAccepted).toMatch(/trust store was deleted or lost/)
    await c.close()
    await (await Chain.open(t.path, { identity: testIdentity(), home: t.home })).close()
  })

  it('opens a chain nobody here has written to when the trust store is gone (first use: nothing to tell it from)', async () => {
    await forgeChain(t.path, testIdentity(), { 'x.txt': 'x' })
    await (await Chain.open(t.path, { identity: testIdentity(), home: t.home })).close()
    expect(await readPin(t.home, resolve(t.path))).toBeDefined()
  })
})

describe('nothing cut before every check passes (issue 12, case 3)', () => {
  const t = tempHomeEach()

  it('says "damaged" for a last block damaged after it was seen, and leaves the log byte for byte as it was', async () => {
    await chainOf(t.path, t.home, 3)
    const log = await readFile(t.path)
    const last = frames(log).at(-1)!
    const bad = Buffer.from(log)
    bad[last + FRAME_HEADER_BYTES + 100]! ^= 1
    await writeFile(t.path, bad)
    const err = (await Chain.open(t.path, { identity: testIdentity(), home: t.home }).catch(e => e)) as RollbackError
    expect(err).toBeInstanceOf(RollbackError)
    expect(err).toMatchObject({ kind: 'damaged', seq: 3 })
    expect(err.message).toMatch(/^chain damaged: its last block 3 \(at byte \d+\) is damaged \(checksum mismatch\), yet this machine saw the log reach block 3 .* not a write cut short by a crash; the log is left as it is$/)
    expect(err.message).not.toMatch(/rolled back/)
    expect((await readFile(t.path)).equals(bad)).toBe(true)
    const v = await verifyChain(t.path, { home: t.home })
    expect(v).toMatchObject({ ok: false, problem: { seq: 3, offset: last, kind: 'block' } })
    expect(v.problem!.reason).toMatch(/^chain damaged: its last block 3/)
    expect((await readFile(t.path)).equals(bad)).toBe(true)
  })

  it('says "rolled back" for a log whose last block is gone, and leaves it as it was', async () => {
    await chainOf(t.path, t.home, 3)
    const log = await readFile(t.path)
    const cut = log.subarray(0, frames(log).at(-1)!)
    await writeFile(t.path, cut)
    await expect(Chain.open(t.path, { identity: testIdentity(), home: t.home })).rejects.toMatchObject({ name: 'RollbackError', kind: 'rollback', message: expect.stringMatching(/^chain rolled back: the log ends at block 2 but block 3 was seen before/) })
    expect((await readFile(t.path)).equals(cut)).toBe(true)
  })

  it('cuts a damaged last block only when allowRollback accepts it, and trusts the cut log from then on', async () => {
    await chainOf(t.path, t.home, 2)
    const log = await readFile(t.path)
    const last = frames(log).at(-1)!
    const bad = Buffer.from(log)
    bad[last + FRAME_HEADER_BYTES + 10]! ^= 1
    await writeFile(t.path, bad)
    const w = warnings()
    const c = await Chain.open(t.path, { identity: testIdentity(), home: t.home, allowRollback: true, logger: w.logger })
    expect(c.report.rollbackAccepted).toMatch(/^chain damaged/)
    expect(c.report.tornTail).toMatchObject({ offset: last, seq: 2 })
    await c.close()
    expect(w.lines.join('\n')).toMatch(/accepted by override \(--allow-rollback\): chain damaged/)
    expect((await stat(t.path)).size).toBe(last)
    expect(await verifyChain(t.path, { home: t.home })).toMatchObject({ ok: true, headSeq: 1 })
  })

  it('keeps a torn tail from a crash when a later check refuses the open (no key for this identity)', async () => {
    await chainOf(t.path, t.home, 1)
    await appendFile(t.path, Buffer.from([0x46, 0x43, 0x42, 0x31, 0xff, 0, 0, 0, 1, 2]))
    const before = await readFile(t.path)
    const stranger = (({ seeds: _s, ...id }) => id)(generateIdentity('stranger'))
    await expect(Chain.open(t.path, { identity: stranger, home: t.home })).rejects.toBeInstanceOf(NoAccessError)
    expect((await readFile(t.path)).equals(before)).toBe(true)
    // a crash's torn tail (a block never seen here) is cut by the next open that passes every check
    const c = await Chain.open(t.path, { identity: testIdentity(), home: t.home })
    expect(c.report.tornTail).toMatchObject({ bytes: 10, seq: 2, reason: 'incomplete frame header' })
    await c.close()
    expect((await stat(t.path)).size).toBe(before.length - 10)
  })
})

describe('a writer whose log is replaced or moved (issue 12, case 5)', () => {
  const t = tempHomeEach()

  for (const how of ['replaced by another file', 'moved away'] as const) {
    it(`fails the commit with EIO and never acks an fsync once its log is ${how}, then refuses every write with EIO`, async () => {
      const { vfs, chain } = await chainVfs(t.path, t.home)
      await vfs.writeFile('/c/kept.txt', 'durable')
      await chain.sync()
      if (how === 'moved away') await rename(t.path, `${t.path}.moved`)
      else {
        await copyFile(t.path, `${t.path}.copy`)
        await rename(`${t.path}.copy`, t.path)
      }
      const logAt = how === 'moved away' ? `${t.path}.moved` : t.path
      const size = (await stat(logAt)).size
      // the close of the file commits it: that close fails, as does every fsync after
      await expect(vfs.writeFile('/c/lost.txt', 'x'.repeat(70_000))).rejects.toMatchObject({ code: 'EIO', message: expect.stringMatching(how === 'moved away' ? /was moved or deleted while open for writing; block 2 is not acknowledged/ : /was replaced by another file while open for writing; block 2 is not acknowledged/) })
      await expect(vfs.writeFile('/c/after.txt', 'y')).rejects.toMatchObject({ code: 'EIO' })
      await expect(chain.sync()).rejects.toMatchObject({ code: 'EIO' })
      await vfs.close().catch(() => {})
      // nothing of the failed commit reached either file
      expect((await stat(logAt)).size).toBe(size)
      if (how === 'moved away') await rename(logAt, t.path)
      const again = await chainVfs(t.path, t.home)
      expect((await again.vfs.readdirAll('/c')).map(e => e.name)).toEqual(['kept.txt'])
      await again.vfs.close()
    })
  }
})

describe('trust store layout', () => {
  const t = tempHomeEach()

  it('keeps one pin per chain path, beside the head record of each chain id', async () => {
    await chainOf(t.path, t.home, 1)
    const other = join(t.home, 'other', 'x.chain')
    await mkdir(join(t.home, 'other'))
    await chainOf(other, t.home, 1)
    const a = (await readPin(t.home, resolve(t.path)))!
    const b = (await readPin(t.home, resolve(other)))!
    expect(a.chainId).not.toBe(b.chainId)
    expect(JSON.parse(await readFile(pinPath(t.home, resolve(t.path)), 'utf8'))).toMatchObject({ format: 'facet-trust-pin/1', path: resolve(t.path) })
    expect(await readTrust(t.home, Buffer.from(a.chainId, 'hex'))).toMatchObject({ seq: 1 })
  })
})
