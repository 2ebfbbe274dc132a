import { constants as fsc } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { chainVfs, tempHomeEach } from './helpers.ts'

describe('chain mount basics', () => {
  const t = tempHomeEach()

  it('keeps files, folders and symlinks across close and reopen', async () => {
    let { vfs } = await chainVfs(t.path, t.home)
    await vfs.mkdir('/c/docs')
    await vfs.writeFile('/c/docs/a.txt', 'hello chain\n')
    await vfs.symlink('docs/a.txt', '/c/link')
    const big = Buffer.alloc(300_000)
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff
    await vfs.writeFile('/c/big.bin', big)
    await vfs.close()
    ;({ vfs } = await chainVfs(t.path, t.home))
    expect((await vfs.readFile('/c/docs/a.txt')).toString()).toBe('hello chain\n')
    expect(await vfs.readlink('/c/link')).toBe('docs/a.txt')
    expect((await vfs.readFile('/c/link')).toString()).toBe('hello chain\n')
    expect((await vfs.readFile('/c/big.bin')).equals(big)).toBe(true)
    expect((await vfs.readdirAll('/c')).map(e => e.name).sort()).toEqual(['big.bin', 'docs', 'link'])
    await vfs.close()
  })

  it('reads holes as zeros and truncates', async () => {
    const { vfs } = await chainVfs(t.path, t.home)
    const fh = await vfs.open('/c/sparse', fsc.O_RDWR | fsc.O_CREAT)
    await vfs.write(fh, 200_000, Buffer.from('end'))
    expect((await vfs.fstat(fh)).size).toBe(200_003)
    const head = await vfs.read(fh, 0, 10)
    expect(Buffer.from(head).equals(Buffer.alloc(10))).toBe(true)
    expect(Buffer.from(await vfs.read(fh, 200_000, 10)).toString()).toBe('end')
    await vfs.ftruncate(fh, 200_001)
    await vfs.ftruncate(fh, 200_010)
    expect(Buffer.from(await vfs.read(fh, 200_000, 10)).toString('hex')).toBe('65' + '00'.repeat(9))
    await vfs.release(fh)
    await vfs.close()
  })

  it('renames over an existing file and refuses a missing source with ENOENT', async () => {
    const { vfs } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/a', 'A')
    await vfs.writeFile('/c/b', 'B')
    await vfs.rename('/c/a', '/c/b')
    expect((await vfs.readFile('/c/b')).toString()).toBe('A')
    await expect(vfs.stat('/c/a')).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(vfs.rename('/c/a', '/c/x')).rejects.toMatchObject({ code: 'ENOENT' })
    await vfs.close()
  })

  it('refuses O_EXCL on an existing file with EEXIST and appends with O_APPEND', async () => {
    const { vfs } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/log', 'one\n')
    await expect(vfs.open('/c/log', fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL)).rejects.toMatchObject({ code: 'EEXIST' })
    const fh = await vfs.open('/c/log', fsc.O_WRONLY | fsc.O_APPEND)
    await vfs.write(fh, 0, Buffer.from('two\n'))
    await vfs.release(fh)
    expect((await vfs.readFile('/c/log')).toString()).toBe('one\ntwo\n')
    await vfs.close()
  })

  it('refuses rmdir of a non-empty folder with ENOTEMPTY', async () => {
    const { vfs } = await chainVfs(t.path, t.home)
    await vfs.mkdir('/c/d')
    await vfs.writeFile('/c/d/f', 'x')
    await expect(vfs.rmdir('/c/d')).rejects.toMatchObject({ code: 'ENOTEMPTY' })
    await vfs.unlink('/c/d/f')
    await vfs.rmdir('/c/d')
    await expect(vfs.stat('/c/d')).rejects.toMatchObject({ code: 'ENOENT' })
    await vfs.close()
  })

  it('keeps chmod, chown and utimens across reopen', async () => {
    let { vfs } = await chainVfs(t.path, t.home)
    await vfs.writeFile('/c/f', 'x')
    await vfs.chmod('/c/f', 0o600)
    await vfs.chown('/c/f', 1234, 5678)
    await vfs.utimens('/c/f', 1_000_000, 2_000_000)
    await vfs.close()
    ;({ vfs } = await chainVfs(t.path, t.home))
    const s = await vfs.stat('/c/f')
    expect(s.mode & 0o7777).toBe(0o600)
    expect([s.uid, s.gid, s.atimeMs, s.mtimeMs]).toEqual([1234, 5678, 1_000_000, 2_000_000])
    await vfs.close()
  })
})
