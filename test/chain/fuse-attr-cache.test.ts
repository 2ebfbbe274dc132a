import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { defaultAttrTimeout, SOLE_WRITER_ATTR_TIMEOUT } from '../../src/fuse/index.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { fuseSkip, mountForTest, run, sh, type TestMount } from '../helpers/fuse.ts'
import { tempHome, testIdentity } from './helpers.ts'

describe('the attribute timeout a FUSE mount gets by default', () => {
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

describe.skipIf(fuseSkip)('a chain mount that keeps attributes in the kernel for a second', () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let vfs: Vfs
  let mount: TestMount
  let m: string

  beforeAll(async () => {
    t = await tempHome()
    const chain = await Chain.create(t.path, { identity: testIdentity(), home: t.home })
    vfs = createVfs({ mounts: { '/': chainMount(chain) }, logger: silentLogger })
    mount = await mountForTest(vfs)
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

  it('shows a file rewritten through another front door at its new size on the next stat', async () => {
    await sh(`printf 12 > ${m}/other.txt`)
    expect(await stat('%s', 'other.txt')).toBe('2\n')
    await vfs.writeFile('/other.txt', 'written in-process, longer\n')
    expect(await stat('%s', 'other.txt')).toBe('27\n')
    expect((await run('cat', [`${m}/other.txt`])).stdout).toBe('written in-process, longer\n')
  })
})
