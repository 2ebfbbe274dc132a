import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { chainVfs, tempHome } from '../chain/helpers.ts'
import { fuseSkip, mountForTest, sh, type TestMount } from '../helpers/fuse.ts'

/** Big reads are answered from buffers kept between requests (reply-buffers.ts): many at once must never share one. */
describe.skipIf(fuseSkip)('big reads at once through FUSE from a chain, whose reads wait on its chunk workers', () => {
  let home: Awaited<ReturnType<typeof tempHome>>
  let vfs: Vfs
  let mount: TestMount
  const files = Array.from({ length: 8 }, (_, i) => ({ name: `big-${i}.bin`, data: randomBytes(3 * 1024 * 1024 + i * 4099) }))

  beforeAll(async () => {
    home = await tempHome()
    const written = await chainVfs(home.path, home.home)
    for (const f of files) await written.vfs.writeFile(`/c/${f.name}`, f.data)
    await written.vfs.close()
    // opened again: nothing is in its chunk cache, so every read waits on the chunk workers
    vfs = (await chainVfs(home.path, home.home)).vfs
    mount = await mountForTest(vfs)
  })

  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
    await home?.cleanup()
  })

  it('reads eight files of 3 MiB at once with dd bs=1M, each byte for byte', async () => {
    const sums = files.map(f => `$(dd if='${mount.dir}/c/${f.name}' bs=1M status=none | sha256sum)`)
    // the eight run at once: each in the background, their sums gathered in order after
    const r = await sh(`${files.map((_, i) => `(echo ${sums[i]} > ${home.home}/sum-${i}) &`).join(' ')} wait; cat ${files.map((_, i) => `${home.home}/sum-${i}`).join(' ')}`, { timeoutMs: 60_000 })
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe(files.map(f => `${createHash('sha256').update(f.data).digest('hex')} -\n`).join(''))
  })
})
