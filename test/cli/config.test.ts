import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { facet, ROOT } from './run.ts'

const EXPECTED = "expected `export default defineConfig({ mounts: { '/path': mount } })`"

describe('facet --config', () => {
  it('serves the README example config: a view and a memory folder', async () => {
    const args = ['--config', 'examples/hello/facet.config.ts']
    expect((await facet(['ls', '/', ...args])).stdout).toBe('greetings\nnotes\n')
    expect((await facet(['ls', '/greetings/people', ...args])).stdout).toBe('ada.txt\ngrace.txt\nlinus.txt\n')
    expect(await facet(['cat', '/greetings/people/ada.txt', ...args])).toEqual({ code: 0, stdout: 'Hello, ada!\n', stderr: '' })
    expect((await facet(['cat', '/greetings/index.txt', ...args])).stdout).toBe('ada\ngrace\nlinus\n')
  })

  it('uses facet.config.ts of the working folder when --config is not given', async () => {
    const result = await facet(['ls'], { cwd: join(ROOT, 'examples/hello') })
    expect(result).toEqual({ code: 0, stdout: 'greetings\nnotes\n', stderr: '' })
  })

  it('reports a config file that does not exist and exits 1', async () => {
    expect(await facet(['ls', '--config', 'nope.config.ts'])).toEqual({
      code: 1,
      stdout: '',
      stderr: `facet: config file not found: ${join(ROOT, 'nope.config.ts')}\n`,
    })
  })

  it('reports a mount without a root, naming the mount point', async () => {
    const file = join(ROOT, 'test/cli/fixtures/bad-shape.config.ts')
    expect(await facet(['ls', '-c', file])).toEqual({
      code: 1,
      stdout: '',
      stderr: `facet: bad config ${file}: mounts['/broken'] is not a mount (an object with a name and a dir root); ${EXPECTED}\n`,
    })
  })

  it('refuses a view whose name is not kebab-case, naming the view and its mount point', async () => {
    const file = join(ROOT, 'test/cli/fixtures/bad-name.config.ts')
    expect(await facet(['ls', '-c', file])).toEqual({
      code: 1,
      stdout: '',
      stderr: `facet: bad config ${file}: EINVAL: invalid argument (the view name 'My_Notes' is not kebab-case: use lower-case letters and digits, words joined by single dashes, e.g. 'my-view'), mount '/notes'\n`,
    })
  })

  it('reports a config without a default export', async () => {
    const file = join(ROOT, 'test/cli/fixtures/no-default.config.ts')
    expect((await facet(['ls', '-c', file])).stderr).toBe(`facet: bad config ${file}: no default export; ${EXPECTED}\n`)
  })

  it('reports a config that does not compile without a stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'facet-cli-'))
    try {
      const file = join(dir, 'facet.config.ts')
      await writeFile(file, 'export default {{\n')
      const { code, stderr } = await facet(['ls'], { cwd: dir })
      expect(code).toBe(1)
      expect(stderr).toMatch(new RegExp(`^facet: cannot load config ${file}: Transform failed`))
      expect(stderr).not.toMatch(/^\s+at /m)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('facet --config from a folder outside the repository', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facet-anywhere-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const plugin = `import { defineView, dir, file } from 'facetfs'
export default defineView((who: string) => ({ name: 'hi', root: dir({ 'hi.txt': file(\`hi \${who}\\n\`) }) }))
`
  const config = `import { defineConfig, memoryMount } from 'facetfs'
import hi from './hi.ts'
export default defineConfig({ mounts: { '/hi': hi('there'), '/m': memoryMount() } })
`

  it('loads a config with no package.json beside it, resolving facetfs and its own imports', async () => {
    await writeFile(join(dir, 'hi.ts'), plugin)
    await writeFile(join(dir, 'facet.config.ts'), config)
    const file = join(dir, 'facet.config.ts')
    expect(await facet(['ls', '/', '--config', file], { cwd: tmpdir() })).toEqual({ code: 0, stdout: 'hi\nm\n', stderr: '' })
    expect(await facet(['cat', '/hi/hi.txt', '--config', file], { cwd: tmpdir() })).toEqual({ code: 0, stdout: 'hi there\n', stderr: '' })
  })

  it("loads a config of an ES module package, whose VfsErrors print as the CLI's own", async () => {
    await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n')
    await writeFile(join(dir, 'hi.ts'), plugin)
    await writeFile(join(dir, 'facet.config.ts'), config)
    expect(await facet(['cat', '/hi/nope.txt'], { cwd: dir })).toEqual({
      code: 1,
      stdout: '',
      stderr: "facet: ENOENT: no such file or directory, open '/hi/nope.txt'\n",
    })
  })
})
