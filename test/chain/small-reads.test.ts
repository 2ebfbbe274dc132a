import { open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readsWaitOnlyForDisk, servedFilesystem } from '../../src/chain/fd-filesystem.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { fuseSkip, mountForTest } from '../helpers/fuse.ts'
import { chainVfs, tempHomeEach, testIdentity } from './helpers.ts'

describe('small chunks read on the JS thread', () => {
  const t = tempHomeEach()

  it('tells a descriptor on a local filesystem from none at all, looking only at /proc', async () => {
    const f = join(t.home, 'plain.bin')
    await writeFile(f, 'x')
    const fh = await open(f, 'r')
    try {
      expect(readsWaitOnlyForDisk(fh.fd)).toBe(true)
    } finally {
      await fh.close()
    }
    expect(readsWaitOnlyForDisk(1 << 20)).toBe(false)
  })

  it('counts FUSE and network filesystems as served, local ones as disks', () => {
    for (const served of ['fuse', 'fuseblk', 'fuse.facet', 'fuse.sshfs', 'nfs', 'nfs4', 'cifs', 'smb3', '9p', 'ceph', '']) expect(servedFilesystem(served), served).toBe(true)
    for (const local of ['ext4', 'xfs', 'btrfs', 'tmpfs', 'overlay', 'zfs', 'f2fs']) expect(servedFilesystem(local), local).toBe(false)
  })

  it.skipIf(fuseSkip)('never reads synchronously from a file on a FUSE mount, even one this process serves', async () => {
    const vfs = createVfs({ mounts: { '/': memoryMount() }, logger: silentLogger })
    const m = await mountForTest(vfs)
    try {
      await writeFile(join(m.dir, 'on-fuse.bin'), 'y')
      const fh = await open(join(m.dir, 'on-fuse.bin'), 'r')
      try {
        // would hang forever were it to stat or read the file: this process is the server
        expect(readsWaitOnlyForDisk(fh.fd)).toBe(false)
      } finally {
        await fh.close()
      }
    } finally {
      await m.unmount()
      await vfs.close()
    }
  })

  /** Writes small files, closes the chain, and opens it again with nothing read yet; returns where file `name`'s only chunk lies in the log. */
  async function reopened(names: string[]): Promise<{ chain: Chain; vfs: ReturnType<typeof createVfs>; chunkOf(name: string): { pos: number; len: number } }> {
    const first = await chainVfs(t.path, t.home)
    for (const name of names) await first.vfs.writeFile(`/c/${name}`, `content of ${name}\n`.repeat(200))
    await first.vfs.close()
    const chain = await Chain.open(t.path, { identity: testIdentity(), home: t.home })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    const chunkOf = (name: string) => {
      const ref = chain.tree.inode(chain.tree.names(chain.root).get(name)!).chunks.get(0)!
      return { pos: ref.pos, len: ref.len }
    }
    return { chain, vfs, chunkOf }
  }

  it('reads small files back exactly from a reopened chain, one after another and at once', async () => {
    const names = Array.from({ length: 40 }, (_, i) => `f${i}.txt`)
    const { vfs, chunkOf } = await reopened(names)
    try {
      expect(chunkOf('f3.txt').len).toBeLessThan(64 * 1024)
      for (const name of names.slice(0, 20)) expect((await vfs.readFile(`/c/${name}`)).toString()).toBe(`content of ${name}\n`.repeat(200))
      const rest = await Promise.all(names.slice(20).map(name => vfs.readFile(`/c/${name}`)))
      rest.forEach((got, i) => expect(got.toString()).toBe(`content of ${names[20 + i]}\n`.repeat(200)))
    } finally {
      await vfs.close()
    }
  })

  it('answers EIO for a small chunk changed on disk after the open, and for one cut off the log, and still reads the others', async () => {
    const { vfs, chunkOf } = await reopened(['a.txt', 'b.txt', 'c.txt'])
    try {
      const a = chunkOf('a.txt')
      const log = await open(t.path, 'r+')
      try {
        // one byte of a's sealed chunk, changed behind the chain's back
        const byte = Buffer.alloc(1)
        await log.read(byte, 0, 1, a.pos + 20)
        await log.write(Buffer.from([byte[0]! ^ 0x5a]), 0, 1, a.pos + 20)
        await expect(vfs.readFile('/c/a.txt')).rejects.toMatchObject({ code: 'EIO' })
        expect((await vfs.readFile('/c/b.txt')).toString()).toBe('content of b.txt\n'.repeat(200))
        // the log cut in the middle of the last chunk: that chunk lies past its end
        const last = ['b.txt', 'c.txt'].map(n => ({ n, ...chunkOf(n) })).sort((x, y) => y.pos - x.pos)[0]!
        await log.truncate(last.pos + 10)
        await expect(vfs.readFile(`/c/${last.n}`)).rejects.toMatchObject({ code: 'EIO' })
      } finally {
        await log.close()
      }
    } finally {
      await vfs.close().catch(() => {})
    }
  })
})
