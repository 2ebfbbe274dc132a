import { spawn } from 'node:child_process'
import { readFile, rmdir } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { fuseSkip, sh, testMountDir } from '../helpers/fuse.ts'
import { FACET, ROOT, type RunResult } from './run.ts'

async function isMounted(dir: string): Promise<boolean> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').some(line => line.split(' ')[1] === dir)
}

/** Runs `facet ...args` to its end, killing it after `timeoutMs`. */
function run(args: string[], timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FACET, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', d => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', d => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', code => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe.skipIf(fuseSkip)('facet up and dev on a GraphQL port that is taken', () => {
  let busy: Server
  let port: number
  let dir: string
  beforeAll(async () => {
    busy = createServer()
    await new Promise<void>(done => busy.listen(0, '127.0.0.1', done))
    port = (busy.address() as { port: number }).port
  })
  afterAll(() => new Promise<void>(done => busy.close(() => done())))
  beforeEach(async () => {
    dir = await testMountDir()
    return async () => {
      if (await isMounted(dir)) await sh(`fusermount -uz '${dir}' || umount -l '${dir}'`)
      await rmdir(dir).catch(() => {})
    }
  })

  for (const command of ['up', 'dev']) {
    it(`says which flags get past it, unmounts and says so, exit code 1 (facet ${command})`, async () => {
      const result = await run([command, '--config', 'examples/hello/facet.config.ts', '--mount', dir, '--graphql', `127.0.0.1:${port}`])
      expect(result.code).toBe(1)
      expect(result.stderr).toBe(
        `facet: cannot serve GraphQL: 127.0.0.1:${port} is in use; choose another address with --graphql HOST:PORT (port 0 picks a free one), or leave GraphQL out with --no-graphql\n`,
      )
      expect(result.stdout).toMatch(new RegExp(`^FacetFS mounted at ${dir} .*\nFacetFS unmounted\n$`))
      expect(await isMounted(dir)).toBe(false)
    })
  }
})
