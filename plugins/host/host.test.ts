import { mkdtempSync } from 'node:fs'
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createVfs, silentLogger, type ChangeEvent, type Vfs } from '../../src/index.ts'
import { runViewConformance, errnoOf as errno } from '../../src/views/testing.ts'
import { hostView } from './index.ts'

const dirs: string[] = []
async function seeded(): Promise<string> {
  const d = mkdtempSync(join(tmpdir(), 'facet-host-'))
  dirs.push(d)
  await writeFile(join(d, 'a.txt'), 'alpha\n')
  await writeFile(join(d, 'b.json'), '{"b":1}\n')
  await mkdir(join(d, 'sub'))
  await writeFile(join(d, 'sub', 'c.txt'), 'gamma')
  return d
}

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

runViewConformance('host (read-only)', async () => hostView({ dir: await seeded(), watch: false }), { expectNames: ['a.txt', 'b.json', 'sub'] })

runViewConformance('host (read-write)', async () => hostView({ dir: await seeded(), readOnly: false, watch: false }), {
  write: { existing: 'a.txt', valid: 'changed\n', invalid: [], create: { name: 'new.txt', content: 'fresh' }, remove: true },
})

describe('host view', () => {
  let vfs: Vfs | undefined
  afterEach(async () => {
    await vfs?.close()
    vfs = undefined
  })

  it('shows a file changed outside FacetFS live, with a change event', async () => {
    const dir = await seeded()
    const view = hostView({ dir }) as ReturnType<typeof hostView> & { whenWatching(): Promise<void> }
    vfs = createVfs({ mounts: { '/h': view }, logger: silentLogger })
    await view.whenWatching()
    const events: ChangeEvent[] = []
    vfs.watch('/h', e => events.push(e))
    await writeFile(join(dir, 'outside.txt'), 'from the host\n')
    await expect.poll(() => events.map(e => `${e.type} ${e.path}`), { timeout: 5000 }).toContain('create /h/outside.txt')
    expect((await vfs.readFile('/h/outside.txt')).toString()).toBe('from the host\n')
    await rm(join(dir, 'outside.txt'))
    await expect.poll(() => events.map(e => `${e.type} ${e.path}`), { timeout: 5000 }).toContain('delete /h/outside.txt')
    expect(await errno(vfs.stat('/h/outside.txt'))).toBe('ENOENT')
  })

  it('writes through to the host folder when read-write', async () => {
    const dir = await seeded()
    vfs = createVfs({ mounts: { '/h': hostView({ dir, readOnly: false, watch: false }) }, logger: silentLogger })
    await vfs.writeFile('/h/sub/d.txt', 'delta')
    await vfs.rename('/h/a.txt', '/h/sub/a2.txt')
    expect(await readFile(join(dir, 'sub', 'd.txt'), 'utf8')).toBe('delta')
    expect(await readFile(join(dir, 'sub', 'a2.txt'), 'utf8')).toBe('alpha\n')
    expect(await errno(vfs.rmdir('/h/sub'))).toBe('ENOTEMPTY')
  })

  it('refuses every change with EROFS when read-only and leaves the host folder unchanged', async () => {
    const dir = await seeded()
    vfs = createVfs({ mounts: { '/h': hostView({ dir, watch: false }) }, logger: silentLogger })
    expect(await errno(vfs.writeFile('/h/a.txt', 'x'))).toBe('EROFS')
    expect(await errno(vfs.mkdir('/h/new'))).toBe('EROFS')
    expect(await errno(vfs.rename('/h/a.txt', '/h/z.txt'))).toBe('EROFS')
    expect(await errno(vfs.chmod('/h/a.txt', 0o600))).toBe('EROFS')
    expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('alpha\n')
  })

  it('shows a host symlink pointing outside as a symlink resolved inside the VFS, never on the host', async () => {
    const dir = await seeded()
    await symlink('/etc/hostname', join(dir, 'escape'))
    vfs = createVfs({ mounts: { '/h': hostView({ dir, watch: false }) }, logger: silentLogger })
    expect(await vfs.readlink('/h/escape')).toBe('/etc/hostname')
    expect(await errno(vfs.readFile('/h/escape'))).toBe('ENOENT')
  })
})
