import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../../src/graphql/tokens.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = fileURLToPath(new URL('./fixtures/cli.ts', import.meta.url))
const CONFIG = fileURLToPath(new URL('./fixtures/facet.config.ts', import.meta.url))

let home: string
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'facet-gql-cli-'))
})
afterAll(async () => {
  await rm(home, { recursive: true, force: true })
})

function facet(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: ROOT,
      env: { ...process.env, FACET_HOME: home, FACET_LOG_LEVEL: 'silent' },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', d => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', d => (stderr += d))
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
    child.stdin.end(input ?? '')
  })
}

describe('facet query', () => {
  it('runs a query against a config in-process and prints the JSON result', async () => {
    const r = await facet(['query', '{ node(path: "/hello/planets/earth.json") { ... on File { json } } users { email } }', '--config', CONFIG])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ data: { node: { json: { name: 'earth', order: 3 } }, users: [{ email: 'ada@example.org' }] } })
  })

  it('takes variables and reads the operation from stdin with -', async () => {
    const r = await facet(['query', '-', '--config', CONFIG, '--variables', '{"p":"/hello/README.txt"}'], 'query($p: String!) { node(path: $p) { ... on File { text } } }')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ data: { node: { text: 'hello, world\n' } } })
  })

  it('prints the errors and exits 1 when the result has errors (EROFS)', async () => {
    const r = await facet(['query', 'mutation { writeFile(path: "/hello/x", text: "x") { path } }', '--config', CONFIG])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).errors[0]).toMatchObject({ message: "EROFS: read-only file system, open '/hello/x'", extensions: { code: 'EROFS' } })
  })

  it('refuses variables that are not a JSON object with exit code 2', async () => {
    const r = await facet(['query', '{ mounts { path } }', '--config', CONFIG, '--variables', '[1'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^facet: --variables is not valid JSON/)
  })
})

describe('facet token', () => {
  it('creates a token, prints it once and stores only its hash with mode 0600', async () => {
    const r = await facet(['token', 'create', '--name', 'laptop'])
    expect(r.code).toBe(0)
    const token = r.stdout.trim()
    expect(token).toMatch(/^facet_[A-Za-z0-9_-]{43}$/)
    expect(r.stderr).toContain(`token 'laptop' created; its SHA-256 is in ${join(home, 'tokens.json')}`)
    const file = join(home, 'tokens.json')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const text = await readFile(file, 'utf8')
    expect(text).not.toContain(token)
    expect(JSON.parse(text).tokens).toEqual([{ name: 'laptop', sha256: hashToken(token), createdAt: expect.any(String), uid: process.getuid!(), gid: process.getgid!() }])

    const list = await facet(['token', 'list'])
    expect(list.stdout).toMatch(/^laptop\t\d{4}-\d\d-\d\dT/)
    expect((await facet(['token', 'revoke', 'laptop'])).code).toBe(0)
    expect((await facet(['token', 'revoke', 'laptop'])).stderr).toBe("facet: no token named 'laptop'\n")
  })
})
