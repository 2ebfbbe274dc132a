import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fuseSkip, testMountDir } from '../helpers/fuse.ts'

// What a plugin author does, outside this repository: install the packed facetfs, run
// `facet init`, `npm test` the new project, and mount it with `npx facet up`.

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * The environment of every command here: this Node first on PATH, and nothing of the
 * run that started us (vitest's own variables, npm's `npm_*` from `npm test`, FACET_*).
 */
const ENV: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(VITEST|npm_|FACET_|NODE_ENV$|NODE_OPTIONS$|FORCE_COLOR$|TEST$)/.test(name))),
  PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
  NO_COLOR: '1',
}

/** Runs `command args` in `cwd` and resolves its output; rejects with the output when it fails. */
function run(command: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: { ...ENV, ...env }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${err.message}\n${stdout}\n${stderr}`))
      else resolve({ stdout, stderr })
    })
  })
}

let work: string
let tarball: string
let app: string

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'facet-package-'))
  // Built into a folder of its own rather than dist/, so a test run never rebuilds under
  // another; npm pack there then applies package.json `files` as a publish would.
  const stage = join(work, 'stage')
  await run(process.execPath, ['scripts/build.mjs', '--out', join(stage, 'dist')], ROOT, 120_000)
  for (const file of ['package.json', 'README.md', 'bin', 'templates']) await cp(join(ROOT, file), join(stage, file), { recursive: true })
  for (const name of await readdir(join(ROOT, 'plugins'))) await cp(join(ROOT, 'plugins', name, 'README.md'), join(stage, 'plugins', name, 'README.md')).catch(() => {})
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], stage, 60_000)
  const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [{ filename: string }]
  tarball = join(work, filename)
}, 180_000)

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

describe('the packed facetfs in a project of its own', () => {
  it('installs from the tarball, and `facet init` makes a project whose npm test passes as generated', async () => {
    const host = join(work, 'host')
    await mkdir(host)
    await writeFile(join(host, 'package.json'), '{ "name": "host", "private": true, "type": "module" }\n')
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], host, 90_000)
    expect(await readdir(join(host, 'node_modules/facetfs'))).not.toContain('src')

    app = join(work, 'notes')
    await run(join(host, 'node_modules/.bin/facet'), ['init', app], host, 20_000, { FACET_INIT_FACETFS: `file:${tarball}` })
    expect(JSON.parse(await readFile(join(app, 'package.json'), 'utf8')).dependencies.facetfs).toBe(`file:${tarball}`)
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], app, 90_000)
    const tested = await run('npm', ['test'], app, 60_000)
    const report = tested.stdout.replace(/\x1b\[[0-9;]*m/g, '')
    expect(report).toMatch(/Tests\s+\d+ passed/)
    expect(report).not.toMatch(/failed|skipped/)
  }, 240_000)

  describe.skipIf(fuseSkip)('mounted with npx facet up', () => {
    let up: ChildProcess | undefined
    /** Resolves when npx and the facet it started have exited and closed their output. */
    let closed: Promise<void> | undefined
    let mnt: string
    let stdout = ''
    let stderr = ''

    afterAll(async () => {
      // the whole process group (npx and the facet it starts), whatever happened
      if (up?.pid && up.exitCode === null) {
        try {
          process.kill(-up.pid, 'SIGKILL')
        } catch {}
        await closed
      }
      if (mnt && (await readFile('/proc/mounts', 'utf8')).split('\n').some(l => l.split(' ')[1] === mnt)) {
        await run('sh', ['-c', `fusermount -uz '${mnt}' || umount -l '${mnt}'`], tmpdir(), 10_000).catch(() => {})
      }
      if (mnt) await rmdir(mnt).catch(() => {})
    })

    it('serves ls, cat and an edit through FUSE and a GraphQL query, and unmounts on SIGTERM', async () => {
      expect(app, 'the project was made by the test before').toBeDefined()
      mnt = await testMountDir()
      up = spawn('npx', ['facet', 'up', '--mount', mnt, '--graphql', '127.0.0.1:0'], { cwd: app, env: ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      closed = new Promise(done => up!.on('close', () => done()))
      up.stdout!.setEncoding('utf8').on('data', d => (stdout += d))
      up.stderr!.setEncoding('utf8').on('data', d => (stderr += d))
      await expect.poll(() => (up!.exitCode === null ? stdout : `exited: ${stdout}\n${stderr}`), { timeout: 30_000, interval: 100 }).toMatch(/GraphQL at http:\/\/\S+/)
      expect(stdout).toContain(`FacetFS mounted at ${mnt} (mounts: /notes)\n`)
      const url = /GraphQL at (http:\/\/\S+)/.exec(stdout)![1]!

      expect((await run('ls', [join(mnt, 'notes')], tmpdir(), 10_000)).stdout).toBe('welcome.json\n')
      const welcome = '{\n  "id": "welcome",\n  "title": "Edit me, or create a note next to me",\n  "done": false\n}\n'
      expect((await run('cat', [join(mnt, 'notes/welcome.json')], tmpdir(), 10_000)).stdout).toBe(welcome)
      await run('sed', ['-i', 's/"done": false/"done": true/', join(mnt, 'notes/welcome.json')], tmpdir(), 10_000)
      expect(JSON.parse(await readFile(join(app, 'notes.json'), 'utf8'))).toEqual([{ id: 'welcome', title: 'Edit me, or create a note next to me', done: true }])

      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ node(path: "/notes/welcome.json") { name ... on File { text } } }' }),
      })
      expect(await res.json()).toEqual({ data: { node: { name: 'welcome.json', text: welcome.replace('"done": false', '"done": true') } } })

      // like Ctrl-C in a terminal: the signal goes to npx and facet alike
      process.kill(-up.pid!, 'SIGTERM')
      await closed
      expect(stdout).toMatch(/FacetFS unmounted\n$/)
      expect((await readFile('/proc/mounts', 'utf8')).split('\n').some(l => l.split(' ')[1] === mnt)).toBe(false)
    }, 60_000)
  })
})
