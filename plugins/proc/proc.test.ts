import { afterEach, describe, expect, it } from 'vitest'
import { createVfs, isVfsError, memoryMount, silentLogger, type Vfs } from '../../src/index.ts'
import { runViewConformance } from '../../src/views/testing.ts'
import { sampleUsers, UserStore, usersView } from '../../test/views/helpers.ts'
import { procView, type ProcStats } from './index.ts'

runViewConformance('proc', () => procView(), { expectNames: ['mounts', 'stats.json', 'version'] })

describe('proc view', () => {
  let vfs: Vfs | undefined
  afterEach(async () => {
    await vfs?.close()
    vfs = undefined
  })

  it('lists every mount in /proc/mounts, one line each', async () => {
    vfs = createVfs({ mounts: { '/proc': procView(), '/notes': memoryMount(), '/users': usersView({ store: new UserStore(sampleUsers) }) }, logger: silentLogger })
    expect((await vfs.readFile('/proc/mounts')).toString()).toBe('proc /proc facet rw 0 0\nmemory /notes facet rw 0 0\nusers /users facet rw 0 0\n')
  })

  it('reports per-mount op counts, open handles and view cache hit rates in stats.json', async () => {
    vfs = createVfs({ mounts: { '/proc': procView(), '/users': usersView({ store: new UserStore(sampleUsers) }) }, logger: silentLogger })
    for (let i = 0; i < 3; i++) await vfs.stat('/users/alice.json')
    await vfs.readFile('/users/bob.json')
    const fh = await vfs.open('/users/carol.json')
    const stats = JSON.parse((await vfs.readFile('/proc/stats.json')).toString()) as ProcStats
    await vfs.release(fh)
    const users = stats.mounts['/users']!
    expect(users.name).toBe('users')
    expect(users.ops.stat).toBe(3)
    expect(users.ops.open).toBe(2)
    expect(users.openHandles).toBe(1)
    expect(users.view!['/']!.hits).toBe(2)
    expect(users.view!['/']!.misses).toBe(3)
    expect(users.view!['/']!.hitRate).toBeCloseTo(0.4)
    expect(stats.openHandles).toBe(1)
    expect(stats.mounts['/proc']!.ops.open).toBe(1)
  })

  it('refuses writes with EROFS', async () => {
    vfs = createVfs({ mounts: { '/proc': procView() }, logger: silentLogger })
    const code = await vfs.writeFile('/proc/mounts', 'x').then(() => 'no error', (e: unknown) => (isVfsError(e) ? e.code : 'other'))
    expect(code).toBe('EROFS')
  })
})
