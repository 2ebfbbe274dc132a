import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createDevServer, type DevServer, type ReloadResult } from '../../src/cli/commands/dev.ts'
import { isVfsError, silentLogger } from '../../src/index.ts'

const views = resolve(import.meta.dirname, '../../src/views/index.ts')
const config = resolve(import.meta.dirname, '../../src/config.ts')

function plugin(text: string): string {
  return `import { defineView, dir, file, collection } from '${views}'
export default defineView(() => ({
  name: 'greeting',
  root: dir({
    'v.txt': file(${JSON.stringify(text)}),
    items: collection({ list: [{ id: 'a' }], key: r => r.id, get: k => (k === 'a' ? { id: 'a' } : undefined) }),
  }),
}))
`
}

describe('facet dev reloading', () => {
  let dir: string
  let server: DevServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
    await rm(dir, { recursive: true, force: true })
  })

  it('swaps a changed plugin in place while a handle open on the old one keeps reading it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'facet-dev-'))
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n')
    await writeFile(join(dir, 'plugin.ts'), plugin('one\n'))
    await writeFile(join(dir, 'facet.config.ts'), `import { defineConfig } from '${config}'\nimport greeting from './plugin.ts'\nexport default defineConfig({ mounts: { '/p': greeting() } })\n`)
    const reloads: Array<ReloadResult | Error> = []
    server = await createDevServer({ configFile: join(dir, 'facet.config.ts'), logger: silentLogger, onReload: r => reloads.push(r), debounceMs: 20 })
    await server.ready()
    expect([...server.files].map(f => f.replace(dir, ''))).toEqual(expect.arrayContaining(['/facet.config.ts', '/plugin.ts']))
    const { vfs } = server
    expect((await vfs.readFile('/p/v.txt')).toString()).toBe('one\n')
    const fh = await vfs.open('/p/v.txt')

    await writeFile(join(dir, 'plugin.ts'), plugin('two\n'))
    await expect.poll(() => reloads.length, { timeout: 10_000 }).toBe(1)
    expect(reloads[0]).toEqual({ replaced: ['/p'], added: [], removed: [] })
    expect((await vfs.readFile('/p/v.txt')).toString()).toBe('two\n')
    expect(Buffer.from(await vfs.read(fh, 0, 100)).toString()).toBe('one\n')
    await vfs.release(fh)

    const missing = await vfs.stat('/p/items/zzz.json').catch((e: unknown) => e)
    expect(isVfsError(missing, 'ENOENT')).toBe(true)
    const refused = await vfs.writeFile('/p/items/a.json', '{"id":"a"}').catch((e: unknown) => e)
    expect(isVfsError(refused, 'EROFS')).toBe(true)

    await writeFile(join(dir, 'plugin.ts'), 'export default {{ broken')
    await expect.poll(() => reloads.length, { timeout: 10_000 }).toBe(2)
    expect(reloads[1]).toBeInstanceOf(Error)
    expect((await vfs.readFile('/p/v.txt')).toString()).toBe('two\n')
  })
})
