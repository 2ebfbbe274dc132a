import { spawn } from 'node:child_process'
import { appendFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parsePublicIdentity } from '../../src/crypto/contacts.ts'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from '../../src/chain/format.ts'
import { facet, FACET, ROOT } from '../cli/run.ts'
import { forgeChain } from './forge.ts'

/** Runs `facet up` on the demo until it says where it serves, then stops it with SIGTERM; returns its output. */
async function upOnce(env: Record<string, string>, args: string[] = []): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const dir = await mkdtemp(join(tmpdir(), 'facet-up-'))
  const child = spawn(process.execPath, [FACET, 'up', '--no-graphql', '--mount', dir, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', d => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', d => (stderr += d))
  const exited = new Promise<number | null>(done => child.on('exit', code => done(code)))
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`facet up said nothing in time\n${stdout}\n${stderr}`)), 30_000)
      const look = () => {
        if (/^FacetFS (mounted at|is running without a mount)/m.test(stdout)) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout.on('data', look)
      void exited.then(() => reject(new Error(`facet up exited\n${stdout}\n${stderr}`)))
    })
    child.kill('SIGTERM')
    return { stdout, stderr, code: await exited }
  } finally {
    child.kill('SIGKILL')
    await exited
    await rm(dir, { recursive: true, force: true }).catch(() => {})
  }
}

/** Frame offsets of a closed log. */
function frames(log: Buffer): number[] {
  const out: number[] = []
  for (let p = FILE_HEADER_BYTES; p < log.length; p += FRAME_HEADER_BYTES + log.readUInt32LE(p + 4)) out.push(p)
  return out
}

describe('the demo /files chain against the trust store (issue 12, cases 1, 3 and 4)', () => {
  let home: string
  let env: Record<string, string>
  let log: string
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'facet-demo-trust-'))
    env = { FACET_HOME: home, FACET_PASSPHRASE: 'demo pass' }
    log = join(home, 'chains', 'files.chain')
    expect(await facet(['write', '/files/mine.txt'], { input: 'my own\n', env })).toMatchObject({ code: 0, stderr: '' })
  })
  afterEach(async () => {
    await rm(home, { recursive: true, force: true })
  })

  it('refuses to mount a forged /files built from your exported public keys, until `facet trust accept files`', async () => {
    const exported = await facet(['identity', 'export', 'default'], { env })
    const me = parsePublicIdentity(exported.stdout)
    await forgeChain(`${log}.forged`, me, { 'mine.txt': 'attacker content\n' })
    await rename(`${log}.forged`, log)

    const verify = await facet(['verify', 'files'], { env })
    expect(verify.code).toBe(1)
    expect(verify.stderr).toMatch(/^facet: .*files\.chain: refused by the trust store: .*files\.chain is not the chain pinned for it: pinned chain [0-9a-f]{32}, owner 'default'/)
    const ls = await facet(['ls', '/'], { env })
    expect(ls.stdout).toBe('db\nhello\nproc\nscratch\n')
    expect(ls.stderr).toMatch(/^\/files \(encrypted chain\) is not mounted: .*files\.chain is not the chain pinned for it: .* If you replaced it on purpose, run 'facet trust accept .*files\.chain'\n$/)
    expect((await facet(['cat', '/files/mine.txt'], { env })).code).toBe(1)

    const accept = await facet(['trust', 'accept', 'files'], { env })
    expect(accept).toMatchObject({ code: 0, stdout: expect.stringMatching(/^pinned .*files\.chain: chain [0-9a-f]{32}, owner 'default' \(key [0-9a-f]{16}\) — a key this home does not know\n  was .* — your identity 'default'\n/) })
    expect(await facet(['cat', '/files/mine.txt'], { env })).toMatchObject({ code: 0, stdout: 'attacker content\n' })
  })

  it('facet up prints the torn tail it cuts at open', async () => {
    await appendFile(log, Buffer.from([0x46, 0x43, 0x42, 0x31, 0xff, 0, 0, 0, 1, 2]))
    const up = await upOnce(env)
    expect(up.stdout).toMatch(/\(mounts: .*\/files\)/)
    expect(up.stderr).toMatch(/files\.chain: torn tail of 10 bytes after block \d+ cut \(an unfinished write from a crash: incomplete frame header\)/)
    expect(up.code).toBe(0)
  })

  it('facet up leaves out a /files whose last block was damaged, saying "damaged", and mounts it with --allow-rollback', async () => {
    const bytes = await readFile(log)
    bytes[frames(bytes).at(-1)! + FRAME_HEADER_BYTES + 50]! ^= 1
    await writeFile(log, bytes)
    const refused = await upOnce(env)
    expect(refused.stdout).not.toMatch(/\/files/)
    expect(refused.stderr).toMatch(/\/files \(encrypted chain\) is not mounted: chain damaged: its last block \d+ \(at byte \d+\) is damaged \(checksum mismatch\)/)
    expect((await readFile(log)).equals(bytes)).toBe(true)
    const accepted = await upOnce(env, ['--allow-rollback'])
    expect(accepted.stdout).toMatch(/\(mounts: .*\/files\)/)
    expect(accepted.stderr).toMatch(/accepted by override \(--allow-rollback\): chain damaged/)
    expect(await facet(['ls', '/files'], { env })).toMatchObject({ code: 0, stdout: '' })
  })
})
