import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { defaultAttrTimeout, SOLE_WRITER_ATTR_TIMEOUT } from '../../src/fuse/index.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { fuseSkip, mountForTest, run, sh, type TestMount } from '../helpers/fuse.ts'
import { tempHome, testIdentity } from './helpers.ts'

describe('the attribute timeout a FUSE mount may be given for speed (defaultAttrTimeout; the default is 0)', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  beforeAll(async () => {
    t = await tempHome()
  })
  afterAll(async () => {
    await t?.cleanup()
  })

  it('is a second for a chain this process writes alone, and 0 as soon as another mount may change behind the kernel', async () => {
    const chain = await Chain.create(t.path, { identity: testIdentity(), home: t.home })
    const alone = createVfs({ mounts: { '/': chainMount(chain, { closeChain: false }) }, logger: silentLogger })
    const mixed = createVfs({ mounts: { '/': chainMount(chain, { closeChain: false }), '/mem': memoryMount() }, logger: silentLogger })
    const followed = createVfs({ mounts: { '/': chainMount(chain, { closeChain: false, follow: true }) }, logger: silentLogger })
    try {
      expect(defaultAttrTimeout(alone)).toBe(SOLE_WRITER_ATTR_TIMEOUT)
      expect(SOLE_WRITER_ATTR_TIMEOUT).toBeGreaterThan(0)
      expect(defaultAttrTimeout(mixed)).toBe(0)
      expect(defaultAttrTimeout(followed)).toBe(0)
    } finally {
      await Promise.all([alone.close(), mixed.close(), followed.close()])
      await chain.close()
    }
    const reader = await Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true })
    const readOnly = createVfs({ mounts: { '/': chainMount(reader) }, logger: silentLogger })
    try {
      expect(defaultAttrTimeout(readOnly)).toBe(0)
    } finally {
      await readOnly.close()
    }
  })
})

describe.skipIf(fuseSkip)('a chain mount that keeps attributes in the kernel for a second, and the pages of files unchanged since their last open', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let vfs: Vfs
  let mount: TestMount
  let m: string

  beforeAll(async () => {
    t = await tempHome()
    const chain = await Chain.create(t.path, { identity: testIdentity(), home: t.home })
    vfs = createVfs({ mounts: { '/': chainMount(chain) }, logger: silentLogger })
    mount = await mountForTest(vfs, { attrTimeout: defaultAttrTimeout(vfs) })
    m = mount.dir
  })

  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
    await t?.cleanup()
  })

  /** `stat -c FORMAT` of each name, one line each. */
  const stat = async (format: string, ...names: string[]): Promise<string> => {
    await mount.invalidated()
    const r = await run('stat', ['-c', format, ...names.map(n => `${m}/${n}`)])
    expect(r.stderr).toBe('')
    return r.stdout
  }

  it('shows every name of a hard-linked file its new link count, size and mode as soon as one name changes', async () => {
    await sh(`printf abc > ${m}/a && ln ${m}/a ${m}/b && ln ${m}/a ${m}/c`)
    expect(await stat('%h %s', 'a', 'b', 'c')).toBe('3 3\n3 3\n3 3\n')
    await sh(`printf defgh >> ${m}/b`)
    expect(await stat('%h %s', 'a', 'b', 'c')).toBe('3 8\n3 8\n3 8\n')
    expect((await run('cat', [`${m}/c`])).stdout).toBe('abcdefgh')
    await sh(`chmod 600 ${m}/c`)
    expect(await stat('%a', 'a', 'b', 'c')).toBe('600\n600\n600\n')
    await sh(`rm ${m}/b`)
    expect(await stat('%h', 'a', 'c')).toBe('2\n2\n')
    await sh(`mv ${m}/c ${m}/d`)
    await sh(`rm ${m}/a`)
    expect(await stat('%h %s', 'd')).toBe('1 8\n')
  })

  const cat = async (name: string): Promise<string> => {
    await mount.invalidated()
    return (await run('cat', [`${m}/${name}`])).stdout
  }

  it('reads a file rewritten in place through another front door afresh, though its last opens kept their pages', async () => {
    await sh(`printf 'first text' > ${m}/kept.txt`)
    // a process holding the file open keeps its kernel inode (and pages) alive past the entry invalidation
    const holder = spawn('sh', ['-c', 'exec 3<"$0" && echo open && cat > /dev/null', `${m}/kept.txt`], { stdio: ['pipe', 'pipe', 'inherit'] })
    const exited = once(holder, 'exit')
    try {
      await once(holder.stdout, 'data')
      expect(await cat('kept.txt')).toBe('first text')
      expect(await cat('kept.txt')).toBe('first text')
      // same length and, set back, the same times: nothing in the attributes tells the kernel
      const before = await vfs.lstat('/kept.txt')
      await vfs.writeFile('/kept.txt', 'other text')
      await vfs.setattr('/kept.txt', { atime: before.atimeNs, mtime: before.mtimeNs })
      expect(await vfs.lstat('/kept.txt')).toMatchObject({ size: before.size, mtimeNs: before.mtimeNs })
      expect(await cat('kept.txt')).toBe('other text')
      expect(await cat('kept.txt')).toBe('other text')
    } finally {
      holder.stdin.end()
      await exited
    }
  })

  it('reads a kept file afresh after a write through FUSE, through another name, and after a rename onto it', async () => {
    await sh(`printf 'AAAA' > ${m}/k1`)
    expect(await cat('k1')).toBe('AAAA')
    expect(await cat('k1')).toBe('AAAA')
    await sh(`printf 'BBBB' | dd of=${m}/k1 conv=notrunc status=none`)
    expect(await cat('k1')).toBe('BBBB')
    await sh(`ln ${m}/k1 ${m}/k2`)
    expect(await cat('k1')).toBe('BBBB')
    expect(await cat('k2')).toBe('BBBB')
    await sh(`printf 'CCCC' | dd of=${m}/k2 conv=notrunc status=none`)
    expect(await cat('k1')).toBe('CCCC')
    await sh(`printf 'DDDD' > ${m}/k3 && mv ${m}/k3 ${m}/k1`)
    expect(await cat('k1')).toBe('DDDD')
    expect(await cat('k2')).toBe('CCCC')
  })

  it('shows a file rewritten through another front door at its new size on the next stat', async () => {
    await sh(`printf 12 > ${m}/other.txt`)
    expect(await stat('%s', 'other.txt')).toBe('2\n')
    await vfs.writeFile('/other.txt', 'written in-process, longer\n')
    expect(await stat('%s', 'other.txt')).toBe('27\n')
    expect((await run('cat', [`${m}/other.txt`])).stdout).toBe('written in-process, longer\n')
  })
})
