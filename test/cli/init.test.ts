import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { packageName } from '../../src/cli/commands/init.ts'
import { facet, ROOT } from './run.ts'

const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter(e => e.isFile()).map(e => join(e.parentPath, e.name).slice(dir.length + 1)).sort()
}

describe('facet init', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facet-init-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('makes a plugin project depending on this version of facetfs, and says what to run next', async () => {
    const result = await facet(['init', 'My Notes'], { cwd: dir })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('\nNext:\n  cd My Notes\n  npm install\n  npm test')
    const project = join(dir, 'My Notes')
    expect(await filesUnder(project)).toEqual(['.gitignore', 'README.md', 'facet.config.ts', 'package.json', 'src/view.ts', 'test/view.test.ts', 'tsconfig.json'])
    const pkg = JSON.parse(await readFile(join(project, 'package.json'), 'utf8'))
    expect(pkg).toMatchObject({ name: 'my-notes', type: 'module', private: true, scripts: { test: 'tsc && vitest run' } })
    expect(pkg.dependencies).toEqual({ facetfs: `^${version}`, zod: expect.any(String) })
    expect(Object.keys(pkg.devDependencies).sort()).toEqual(['@types/node', 'typescript', 'vitest'])
    expect(await readFile(join(project, 'README.md'), 'utf8')).toMatch(/^# my-notes\n/)
    expect(await readFile(join(project, 'test/view.test.ts'), 'utf8')).toContain("from 'facetfs/testing'")
  })

  it('takes the facetfs dependency from --facetfs, else from FACET_INIT_FACETFS', async () => {
    await facet(['init', 'a', '--facetfs', 'file:../facetfs.tgz'], { cwd: dir })
    await facet(['init', 'b', '--name', 'bee'], { cwd: dir, env: { FACET_INIT_FACETFS: 'file:/x/facetfs.tgz' } })
    const a = JSON.parse(await readFile(join(dir, 'a/package.json'), 'utf8'))
    const b = JSON.parse(await readFile(join(dir, 'b/package.json'), 'utf8'))
    expect([a.dependencies.facetfs, b.name, b.dependencies.facetfs]).toEqual(['file:../facetfs.tgz', 'bee', 'file:/x/facetfs.tgz'])
  })

  it('refuses a folder that has any of the files, naming them, and writes nothing', async () => {
    await writeFile(join(dir, 'facet.config.ts'), '// mine\n')
    const result = await facet(['init'], { cwd: dir })
    expect(result).toEqual({ code: 1, stdout: '', stderr: `facet: cannot init: ${dir} already has facet.config.ts; nothing was written\n` })
    expect(await readdir(dir)).toEqual(['facet.config.ts'])
  })

  it('makes a folder name a valid npm package name', () => {
    expect([packageName('My Notes'), packageName('.hidden_thing'), packageName('ÜBER'), packageName('---')]).toEqual(['my-notes', 'hidden_thing', 'ber', 'facet-plugin'])
  })
})
