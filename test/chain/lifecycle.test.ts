import { readFile, stat } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { compactChain } from '../../src/chain/compact.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { RollbackError } from '../../src/chain/trust.ts'
import { ChainLockedError } from '../../src/chain/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { chainVfs, tempHomeEach, testIdentity } from './helpers.ts'

describe('chain lifecycle', () => {
  const t = tempHomeEach()

  it('compacts to a smaller log that keeps the live tree, verifies, and is trusted', async () => {
    let { vfs, chain } = await chainVfs(t.path, t.home)
    for (let i = 0; i < 20; i++) {
      await vfs.writeFile('/c/churn.bin', Buffer.alloc(100_000, i))
      await chain.sync()
    }
    await vfs.mkdir('/c/keep')
    await vfs.writeFile('/c/keep/a.txt', 'kept')
    await vfs.symlink('keep/a.txt', '/c/l')
    await chain.sync()
    const before = (await stat(t.path)).size
    const r = await compactChain(chain)
    expect(r.afterBytes).toBeLessThan(before / 5)
    expect((await vfs.readFile('/c/keep/a.txt')).toString()).toBe('kept')
    await vfs.writeFile('/c/after.txt', 'written after compaction')
    await vfs.close()
    expect(await verifyChain(t.path, { home: t.home })).toMatchObject({ ok: true })
    ;({ vfs, chain } = await chainVfs(t.path, t.home))
    expect((await vfs.readFile('/c/churn.bin')).equals(Buffer.alloc(100_000, 19))).toBe(true)
    expect((await vfs.readFile('/c/l')).toString()).toBe('kept')
    expect((await vfs.readFile('/c/after.txt')).toString()).toBe('written after compaction')
    await vfs.close()
  })

  it('refuses the pre-compaction log as a rollback once the compacted one was seen', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/a', 'one')
    await chain.sync()
    const old = await readFile(t.path)
    await compactChain(chain)
    await vfs.writeFile('/c/a', 'two')
    await vfs.close()
    await import('node:fs/promises').then(f => f.writeFile(t.path, old))
    await expect(Chain.open(t.path, { identity: testIdentity(), home: t.home })).rejects.toBeInstanceOf(RollbackError)
  })

  it('shows the tree as it was after each block under /.history/<seq>, read-only (EROFS)', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/f.txt', 'first')
    await chain.sync()
    const s1 = chain.headSeq
    await vfs.writeFile('/c/f.txt', 'second version')
    await chain.sync()
    const s2 = chain.headSeq
    await vfs.writeFile('/c/g.txt', 'g')
    await vfs.unlink('/c/f.txt')
    await chain.sync()
    const s3 = chain.headSeq
    expect((await vfs.readFile(`/c/.history/${s1}/f.txt`)).toString()).toBe('first')
    expect((await vfs.readFile(`/c/.history/${s2}/f.txt`)).toString()).toBe('second version')
    expect((await vfs.readdirAll(`/c/.history/${s1}`)).map(e => e.name)).toEqual(['f.txt'])
    await expect(vfs.stat(`/c/.history/${s3}/f.txt`)).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(vfs.writeFile(`/c/.history/${s1}/f.txt`, 'x')).rejects.toMatchObject({ code: 'EROFS', message: expect.stringContaining(`history is read-only: /.history/${s1} is the tree as it was after block ${s1}`) })
    expect((await vfs.readdirAll('/c')).map(e => e.name)).toEqual(['g.txt'])
    await vfs.close()
  })

  it('lets a second, read-only opener follow new blocks live', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/a.txt', 'one')
    await chain.sync()
    const reader = await Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true })
    const rvfs = createVfs({ mounts: { '/r': chainMount(reader, { follow: true }) }, logger: silentLogger })
    expect((await rvfs.readFile('/r/a.txt')).toString()).toBe('one')
    await expect(rvfs.writeFile('/r/b.txt', 'x')).rejects.toMatchObject({ code: 'EROFS', message: expect.stringContaining('the chain is open read-only') })
    const changed = new Promise<void>(resolve => rvfs.watch('/r', () => resolve()))
    await vfs.writeFile('/c/b.txt', 'two')
    await vfs.writeFile('/c/a.txt', 'one, edited')
    await chain.sync()
    await changed
    for (let i = 0; i < 50 && reader.headSeq < chain.headSeq; i++) await new Promise(r => setTimeout(r, 50))
    expect((await rvfs.readFile('/r/b.txt')).toString()).toBe('two')
    expect((await rvfs.readFile('/r/a.txt')).toString()).toBe('one, edited')
    await rvfs.close()
    await vfs.close()
  })

  it('keeps a follower following after the writer compacts the log under it', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/a.txt', 'one')
    await vfs.writeFile('/c/gone.txt', 'soon deleted')
    await chain.sync()
    const reader = await Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true })
    const rvfs = createVfs({ mounts: { '/r': chainMount(reader, { follow: true }) }, logger: silentLogger })
    expect((await rvfs.readFile('/r/gone.txt')).toString()).toBe('soon deleted')
    await vfs.unlink('/c/gone.txt')
    await chain.sync()
    await compactChain(chain)
    // written into the new log only
    await vfs.writeFile('/c/b.txt', 'after compaction')
    await chain.sync()
    let seen = ''
    for (let i = 0; i < 100 && seen !== 'after compaction'; i++) {
      await new Promise(r => setTimeout(r, 50))
      seen = await rvfs.readFile('/r/b.txt').then(b => b.toString(), () => '')
    }
    expect(seen).toBe('after compaction')
    expect((await rvfs.readFile('/r/a.txt')).toString()).toBe('one')
    await expect(rvfs.stat('/r/gone.txt')).rejects.toMatchObject({ code: 'ENOENT' })
    await rvfs.close()
    await vfs.close()
  })

  it('refuses a second writer while the chain is open', async () => {
    const { vfs } = await chainVfs(t.path, t.home)
    await expect(Chain.open(t.path, { identity: testIdentity(), home: t.home })).rejects.toBeInstanceOf(ChainLockedError)
    await vfs.close()
  })

  it('cuts a torn tail on open, warns, and reports it', async () => {
    const { vfs, chain } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/a.txt', 'durable')
    await chain.sync()
    await vfs.close()
    const good = (await stat(t.path)).size
    await import('node:fs/promises').then(f => f.appendFile(t.path, Buffer.from([0x46, 0x43, 0x42, 0x31, 0xff, 0, 0, 0, 1, 2])))
    const warnings: string[] = []
    const logger = { ...silentLogger, warn: (_o: unknown, msg?: string) => void warnings.push(msg ?? '') }
    const c = await Chain.open(t.path, { identity: testIdentity(), home: t.home, logger })
    expect(c.report.tornTail).toMatchObject({ offset: good, bytes: 10 })
    expect(warnings.join()).toMatch(/torn tail of 10 bytes/)
    await c.close()
    expect((await stat(t.path)).size).toBe(good)
    expect(await verifyChain(t.path, { home: t.home })).toMatchObject({ ok: true })
  })
})
