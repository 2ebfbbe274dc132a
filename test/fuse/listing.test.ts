import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/vfs/log.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { collection, defineView } from '../../src/views/index.ts'
import { fuseSkip, mountForTest, sh, type TestMount } from '../helpers/fuse.ts'

const COUNT = 20_000

describe.skipIf(fuseSkip)('listing large folders through FUSE a page at a time', () => {
  let vfs: Vfs
  let mount: TestMount
  const limits: number[] = []
  let gets = 0

  beforeAll(async () => {
    const numbers = defineView(() => ({
      name: 'numbers',
      root: collection({
        list: async function* () {
          for (let i = 0; i < COUNT; i++) yield { n: i }
        },
        key: r => String(r.n),
      }),
    }))()
    const rows = defineView(() => ({
      name: 'rows',
      root: collection({
        list: () => Array.from({ length: 2000 }, (_, i) => ({ id: `r${i}`, text: 'x'.repeat(i % 50) })),
        key: 'id',
        listIsComplete: true,
        get: id => {
          gets++
          const i = Number(id.slice(1))
          return Number.isInteger(i) && i >= 0 && i < 2000 ? { id, text: 'x'.repeat(i % 50) } : undefined
        },
      }),
    }))()
    vfs = createVfs({ logger: silentLogger, mounts: { '/numbers': numbers, '/rows': rows, '/mem': memoryMount() } })
    const readdir = vfs.readdir.bind(vfs)
    vfs.readdir = (path, options, caller) => {
      limits.push(options?.limit ?? -1)
      return readdir(path, options, caller)
    }
    mount = await mountForTest(vfs)
  })
  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
  })

  it('lists every record of a 20,000-record folder exactly once, asking the router for pages of 512', async () => {
    limits.length = 0
    const out = await sh(`ls -f ${mount.dir}/numbers | grep -v '^\\.' | sort -n | uniq | wc -l; ls -f ${mount.dir}/numbers | grep -c json`)
    expect(out.stdout).toBe(`${COUNT}\n${COUNT}\n`)
    expect(limits.length).toBeGreaterThanOrEqual(2 * Math.ceil(COUNT / 512))
    expect(Math.max(...limits)).toBe(512)
  })

  it('answers ls -l of 2,000 records from the pages it listed, without a get per record', async () => {
    gets = 0
    const out = await sh(`ls -l ${mount.dir}/rows | grep -c json`)
    expect(out.stdout).toBe('2000\n')
    expect(gets).toBeLessThan(20)
    const sizes = await sh(`stat -c %s ${mount.dir}/rows/r7.json; cat ${mount.dir}/rows/r7.json | wc -c`)
    const [a, b] = sizes.stdout.trim().split('\n')
    expect(a).toBe(b)
  })

  it('lists a folder being filled, with . and .. once and no name twice', async () => {
    await sh(`mkdir ${mount.dir}/mem/d && cd ${mount.dir}/mem/d && for i in $(seq 1 1500); do : > f$i; done`)
    const out = await sh(`ls -fa ${mount.dir}/mem/d | sort | uniq -d | wc -l; ls -fa ${mount.dir}/mem/d | wc -l`)
    expect(out.stdout).toBe('0\n1502\n')
  })
})
