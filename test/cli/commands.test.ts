import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { facet, maskTimes } from './run.ts'

const uid = process.getuid?.() ?? 0
const gid = process.getgid?.() ?? 0

const EARTH = `{
  "name": "earth",
  "order": 3,
  "kind": "rocky",
  "rings": false
}
`

describe('facet ls, cat, stat and write on the built-in demo', () => {
  it('lists the root as the demo mounts, one name per line', async () => {
    expect(await facet(['ls'])).toEqual({ code: 0, stdout: 'db\nhello\nproc\nscratch\n', stderr: '' })
  })

  it('lists a view folder sorted by name', async () => {
    expect(await facet(['ls', '/hello'])).toEqual({ code: 0, stdout: 'README.txt\nplanets\nsummary.txt\n', stderr: '' })
  })

  it('lists a folder in long form with mode, links, owner, exact sizes and names', async () => {
    const { code, stdout } = await facet(['ls', '-l', '/hello'])
    expect(code).toBe(0)
    expect(maskTimes(stdout)).toBe(
      `-r--r--r-- 1 ${uid} ${gid}  241 <time> README.txt\n` +
        `dr-xr-xr-x 2 ${uid} ${gid} 4096 <time> planets\n` +
        `-r--r--r-- 1 ${uid} ${gid}   92 <time> summary.txt\n`,
    )
  })

  it('lists a file path as the path itself', async () => {
    expect((await facet(['ls', '/hello/planets/earth.json'])).stdout).toBe('/hello/planets/earth.json\n')
  })

  it('prints a rendered record byte for byte', async () => {
    expect(await facet(['cat', '/hello/planets/earth.json'])).toEqual({ code: 0, stdout: EARTH, stderr: '' })
  })

  it('prints several files in order', async () => {
    const { stdout } = await facet(['cat', '/hello/summary.txt', '/hello/planets/earth.json'])
    expect(stdout).toBe('8 planets: 4 rocky, 2 gas giants, 2 ice giants\nwith rings: jupiter, saturn, uranus, neptune\n' + EARTH)
  })

  it('describes a file as key: value lines', async () => {
    const { code, stdout } = await facet(['stat', '/scratch/README.txt'])
    expect(code).toBe(0)
    expect(maskTimes(stdout).replace(/^ino: {3}\d+$/m, 'ino:   <n>')).toBe(
      [
        'path:  /scratch/README.txt',
        'kind:  file',
        'size:  166',
        'mode:  0644 (-rw-r--r--)',
        `uid:   ${uid}`,
        `gid:   ${gid}`,
        'nlink: 1',
        'ino:   <n>',
        'atime: <iso>',
        'mtime: <iso>',
        'ctime: <iso>',
        '',
      ].join('\n'),
    )
  })

  it('describes a file as JSON with --json, its size equal to what cat prints', async () => {
    const { code, stdout } = await facet(['stat', '--json', '/hello/planets/earth.json'])
    expect(code).toBe(0)
    const st = JSON.parse(stdout)
    expect(st).toMatchObject({ path: '/hello/planets/earth.json', kind: 'file', mode: 0o100444, size: Buffer.byteLength(EARTH), nlink: 1 })
  })

  it('writes stdin to a file and exits 0 silently', async () => {
    expect(await facet(['write', '/scratch/note.txt'], { input: 'hello\n' })).toEqual({ code: 0, stdout: '', stderr: '' })
  })

  it('writes stdin byte for byte through a writable mount of a config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'facet-cli-'))
    try {
      const out = join(dir, 'out.txt')
      await writeFile(out, 'old content that is longer than the new one\n')
      const data = Buffer.from([0, 1, 2, 255, 10, 0x68, 0x69])
      const result = await facet(['write', '/disk/out.txt', '--config', 'test/cli/fixtures/disk-file.config.ts'], {
        input: data,
        env: { FACET_TEST_OUT: out },
      })
      expect(result).toEqual({ code: 0, stdout: '', stderr: '' })
      expect(await readFile(out)).toEqual(data)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('facet errors', () => {
  it('reports a missing path with ENOENT and exit code 1', async () => {
    expect(await facet(['stat', '/x'])).toEqual({ code: 1, stdout: '', stderr: "facet: ENOENT: no such file or directory, stat '/x'\n" })
  })

  it('reports cat of a missing record with ENOENT and exit code 1', async () => {
    expect(await facet(['cat', '/hello/planets/pluto.json'])).toEqual({
      code: 1,
      stdout: '',
      stderr: "facet: ENOENT: no such file or directory, open '/hello/planets/pluto.json'\n",
    })
  })

  it('reports ls of a missing folder with ENOENT', async () => {
    const { code, stderr } = await facet(['ls', '/nope'])
    expect([code, stderr]).toEqual([1, "facet: ENOENT: no such file or directory, stat '/nope'\n"])
  })

  it('refuses a write into the read-only view with EROFS and exit code 1', async () => {
    expect(await facet(['write', '/hello/x.txt'], { input: 'x' })).toEqual({
      code: 1,
      stdout: '',
      stderr: "facet: EROFS: read-only file system, open '/hello/x.txt'\n",
    })
  })

  it('refuses cat of a folder with EISDIR', async () => {
    const { code, stderr } = await facet(['cat', '/hello'])
    expect([code, stderr]).toEqual([1, "facet: EISDIR: illegal operation on a directory, open '/hello'\n"])
  })

  it('exits 2 with a usage message when an argument is missing', async () => {
    expect(await facet(['cat'])).toEqual({ code: 2, stdout: '', stderr: "facet: missing required argument 'path'\n" })
  })

  it('exits 2 on an unknown command or option', async () => {
    expect(await facet(['frob'])).toEqual({ code: 2, stdout: '', stderr: "facet: unknown command 'frob'\n" })
    expect(await facet(['ls', '--frob'])).toEqual({ code: 2, stdout: '', stderr: "facet: unknown option '--frob'\n" })
  })
})

describe('facet --help and --version', () => {
  it('prints help for the program and every command and exits 0', async () => {
    const top = await facet(['--help'])
    expect(top.code).toBe(0)
    for (const name of ['up', 'ls', 'cat', 'stat', 'write']) expect(top.stdout).toMatch(new RegExp(`^  ${name} `, 'm'))
    for (const name of ['up', 'ls', 'cat', 'stat', 'write']) {
      const sub = await facet([name, '--help'])
      expect(sub.code).toBe(0)
      expect(sub.stdout).toContain(`Usage: facet ${name} [options]`)
      expect(sub.stdout).toContain('--config <file>')
    }
  })

  it('prints the package version', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'))
    expect(await facet(['--version'])).toEqual({ code: 0, stdout: version + '\n', stderr: '' })
  })
})

describe('the demo encrypted chain at /files', () => {
  it('mounts /files when FACET_PASSPHRASE is set, and keeps what one process wrote for the next', async () => {
    const home = await mkdtemp(join(tmpdir(), 'facet-cli-home-'))
    try {
      const env = { FACET_HOME: home, FACET_PASSPHRASE: 'correct horse' }
      expect(await facet(['write', '/files/note.txt'], { input: 'kept\n', env })).toEqual({ code: 0, stdout: '', stderr: '' })
      expect(await facet(['cat', '/files/note.txt'], { env })).toEqual({ code: 0, stdout: 'kept\n', stderr: '' })
      expect((await facet(['ls', '/'], { env })).stdout).toBe('datasets\ndb\nfiles\nhello\nproc\nscratch\n')
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })

  it('leaves /files out with a reason on stderr when the passphrase is wrong, and still serves the rest', async () => {
    const home = await mkdtemp(join(tmpdir(), 'facet-cli-home-'))
    try {
      await facet(['write', '/files/x'], { input: 'x', env: { FACET_HOME: home, FACET_PASSPHRASE: 'right' } })
      expect(await facet(['ls', '/'], { env: { FACET_HOME: home, FACET_PASSPHRASE: 'wrong' } })).toEqual({
        code: 0,
        stdout: 'db\nhello\nproc\nscratch\n',
        stderr: "/files (encrypted chain) is not mounted: wrong passphrase for identity 'default'\n",
      })
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })
})
