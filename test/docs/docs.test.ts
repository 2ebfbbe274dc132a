// The docs a plugin author starts from are run: README's "Write your first view" and
// examples/README.md. Every TypeScript block introduced by a paragraph ending in "`path.ts`:"
// is written to a temp folder at that path (`from 'facetfs'` rewritten to this checkout's
// src/index.ts), each config a `$ npx facet … --config` line names is loaded and mounted
// in-process with createVfs, and every command in the section's console blocks must print
// exactly what the docs show.
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collection, createVfs, defineView, isVfsError, silentLogger, type FacetConfig, type Vfs } from '../../src/index.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const SRC_INDEX = join(ROOT, 'src/index.ts')

interface Block {
  lang: string
  body: string
  /** The text between the previous block (or the section start) and this one. */
  before: string
}

/** The part of a markdown file from the heading `title` to the next heading of the same or higher level (the whole file without a title). */
function section(markdown: string, title?: string): string {
  if (!title) return markdown
  const lines = markdown.split('\n')
  const start = lines.findIndex(l => /^#+ /.test(l) && l.replace(/^#+ /, '') === title)
  if (start < 0) throw new Error(`no section "${title}"`)
  const level = /^#+/.exec(lines[start]!)![0].length
  const end = lines.findIndex((l, i) => i > start && new RegExp(`^#{1,${level}} `).test(l))
  return lines.slice(start, end < 0 ? undefined : end).join('\n')
}

function blocks(text: string): Block[] {
  const out: Block[] = []
  const re = /^```(\w*)\n([\s\S]*?)^```$/gm
  let last = 0
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push({ lang: m[1]!, body: m[2]!, before: text.slice(last, m.index) })
    last = m.index + m[0].length
  }
  return out
}

/** The file a ts block is meant to be saved as: the last `x.ts` of a paragraph ending in ':' just before it; undefined for a snippet. */
function fileOf(block: Block): string | undefined {
  const paragraph = block.before.trimEnd().split(/\n\s*\n/).at(-1) ?? ''
  if (!paragraph.trimEnd().endsWith(':')) return undefined
  return [...paragraph.matchAll(/`([\w./-]+\.ts)`/g)].at(-1)?.[1]
}

interface Command {
  line: string
  expected: string
}

/** The `$ …` commands of the console blocks and the output shown under each. */
function commands(consoleBlocks: Block[]): Command[] {
  const out: Command[] = []
  for (const b of consoleBlocks) {
    for (const line of b.body.replace(/\n$/, '').split('\n')) {
      if (line.startsWith('$ ')) out.push({ line: line.slice(2), expected: '' })
      else if (line !== '' || out.length > 0) {
        if (out.length === 0) throw new Error(`console output before any command: ${line}`)
        out.at(-1)!.expected += line + '\n'
      }
    }
  }
  return out
}

interface Doc {
  name: string
  file: string
  section?: string
  /** How many runnable files the doc must have: a reworded intro must not silently drop its code from the test. */
  files: number
  /** Files that must equal the repository's own copies. */
  sameAs?: Record<string, string>
}

const DOCS: Doc[] = [
  {
    name: 'README: Write your first view',
    file: 'README.md',
    section: 'Write your first view',
    files: 2,
    sameAs: { 'examples/hello/greetings.ts': 'examples/hello/greetings.ts', 'examples/hello/facet.config.ts': 'examples/hello/facet.config.ts' },
  },
  { name: 'examples/README.md', file: 'examples/README.md', files: 4 },
]

let work: string
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'facet-docs-'))
  // the docs' other imports (zod) resolve as in a project that installed them
  await symlink(join(ROOT, 'node_modules'), join(work, 'node_modules'))
})
afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

const vfses = new Map<string, Vfs>()
afterAll(async () => {
  for (const vfs of vfses.values()) await vfs.close()
})

async function open(dir: string, config: string): Promise<{ vfs: Vfs; config: FacetConfig }> {
  const file = join(dir, config)
  const mod = (await import(/* @vite-ignore */ pathToFileURL(file).href)) as { default: FacetConfig }
  let vfs = vfses.get(file)
  if (!vfs) {
    vfs = createVfs({ mounts: mod.default.mounts, logger: silentLogger })
    vfses.set(file, vfs)
  }
  return { vfs, config: mod.default }
}

/** Runs one documented command in-process, as the `facet` CLI would print it. */
async function run(dir: string, line: string): Promise<string> {
  const m = /^(?:echo (\S+|'[^']*') \| )?npx facet (ls|cat|write|up) (\S+)(.*)$/.exec(line)
  const config = /--config (\S+)/.exec(line)?.[1]
  if (!m || !config) throw new Error(`the docs test cannot run this command (say \`npx facet ls|cat|write|up … --config F\`): ${line}`)
  const [, echo, command, arg] = m
  const { vfs, config: cfg } = await open(dir, config)
  try {
    switch (command) {
      case 'ls':
        return (await vfs.readdirAll(arg!)).map(e => e.name).sort().map(n => n + '\n').join('')
      case 'cat':
        return String(await vfs.readFile(arg!))
      case 'write': {
        if (echo === undefined) throw new Error(`write needs its input from echo: ${line}`)
        await vfs.writeFile(arg!, echo.replace(/^'|'$/g, '') + '\n')
        return ''
      }
      case 'up':
        return `FacetFS mounted at /…/mnt (mounts: ${Object.keys(cfg.mounts).join(', ')})\n`
    }
  } catch (err) {
    if (isVfsError(err)) return `facet: ${err.message}\n`
    throw err
  }
  throw new Error('unreachable')
}

describe.each(DOCS)('$name', doc => {
  let text: string
  let dir: string
  let files: Array<{ path: string; body: string }>
  beforeAll(async () => {
    text = section(await readFile(join(ROOT, doc.file), 'utf8'), doc.section)
    dir = join(work, doc.file.replace(/\W/g, '_'))
    files = []
    for (const b of blocks(text)) {
      const path = b.lang === 'ts' ? fileOf(b) : undefined
      if (path) files.push({ path, body: b.body })
    }
    for (const f of files) {
      const target = join(dir, f.path)
      await mkdir(dirname(target), { recursive: true })
      await writeFile(target, f.body.replace(/from 'facetfs'/g, `from ${JSON.stringify(SRC_INDEX)}`))
    }
  })

  it('has its runnable files', () => {
    expect(files.map(f => f.path)).toHaveLength(doc.files)
  })

  it.runIf(doc.sameAs)('shows the example files as they are in the repository', async () => {
    for (const [shown, real] of Object.entries(doc.sameAs!)) {
      expect(files.find(f => f.path === shown)?.body, shown).toBe(await readFile(join(ROOT, real), 'utf8'))
    }
  })

  it('prints what its console blocks show', async () => {
    const cmds = commands(blocks(text).filter(b => b.lang === 'console'))
    expect(cmds.length).toBeGreaterThan(0)
    for (const c of cmds) expect(await run(dir, c.line), c.line).toBe(c.expected)
  })
})

describe('what examples/README.md says about errors from a custom format', () => {
  const view = (parse: (text: string) => unknown) =>
    defineView(() => ({
      name: 'notes',
      root: collection<{ id: string }>({ list: [{ id: 'a' }], key: 'id', put: () => {}, format: { name: 'x', ext: 'x', render: () => 'x\n', parse } }),
    }))()

  it('a plain Error thrown by parse is EINVAL with its message, in .errors', async () => {
    const vfs = createVfs({ mounts: { '/n': view(() => { throw new Error('no closing brace') }) }, logger: silentLogger })
    await expect(vfs.writeFile('/n/a.x', 'y\n')).rejects.toMatchObject({ code: 'EINVAL' })
    expect(String(await vfs.readFile('/n/.errors'))).toBe('a.x: EINVAL: malformed x: no closing brace\n')
    await vfs.close()
  })
})
