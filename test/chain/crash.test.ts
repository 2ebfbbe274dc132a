import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { generateIdentity } from '../../src/crypto/identity.ts'
import { Chain } from '../../src/chain/store.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { record } from './crash-records.ts'
import { tempHome } from './helpers.ts'

const TRIALS = Number(process.env.CRASH_TRIALS ?? 3)
const CHILD = new URL('./crash-child.ts', import.meta.url).pathname

/** Runs the child until it has reported `afterSyncs` fsyncs plus a random delay, then SIGKILLs it. Returns the last fsync'd record. */
function runAndKill(path: string, home: string, seeds: string, afterSyncs: number, extraMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, path, home, seeds], { stdio: ['ignore', 'pipe', 'pipe'] })
    let last = -1
    let syncs = 0
    let killed = false
    let out = ''
    let err = ''
    child.stderr.on('data', d => (err += d))
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const lines = out.split('\n')
      out = lines.pop()!
      for (const line of lines) {
        const m = /^synced (\d+)$/.exec(line)
        if (!m) continue
        last = Number(m[1])
        if (++syncs === afterSyncs && !killed) {
          killed = true
          setTimeout(() => child.kill('SIGKILL'), extraMs)
        }
      }
    })
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(last)
      else reject(new Error(`child exited ${code}: ${err}`))
    })
  })
}

describe('crash safety', () => {
  it(`keeps every fsync'd byte and a verifiable chain after SIGKILL at random points (${TRIALS} trials)`, async () => {
    let t = await tempHome()
    const id = generateIdentity('tester')
    const seeds = Buffer.from(id.seeds).toString('hex')
    const identity = { ...id }
    try {
      let expectedAtLeast = -1
      for (let trial = 0; trial < TRIALS; trial++) {
        if (trial > 0 && trial % 6 === 0) {
          await t.cleanup()
          t = await tempHome()
          expectedAtLeast = -1
        }
        const synced = await runAndKill(t.path, t.home, seeds, 1 + Math.floor(Math.random() * 30), Math.floor(Math.random() * 40))
        expectedAtLeast = Math.max(expectedAtLeast, synced)
        const chain = await Chain.open(t.path, { identity, home: t.home, logger: silentLogger })
        const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
        const log = await vfs.readFile('/c/log')
        let want = 0
        let i = 0
        while (want < log.length) want += record(i++).length
        const n = i - 1
        expect(want, `trial ${trial}: the log ends inside record ${n}`).toBe(log.length)
        expect(n, `trial ${trial}: record ${synced} was fsync'd`).toBeGreaterThanOrEqual(expectedAtLeast)
        const expected = Buffer.concat(Array.from({ length: n + 1 }, (_, k) => record(k)))
        expect(log.equals(expected), `trial ${trial}: content`).toBe(true)
        for (let k = 0; k <= n; k += 7) {
          if (k % 3 === 0 && k + 3 <= synced) expect((await vfs.readFile(`/c/f${k}`)).equals(record(k))).toBe(true)
        }
        await vfs.close()
        const r = await verifyChain(t.path, { home: t.home })
        expect(r.problem).toBeUndefined()
      }
    } finally {
      await t.cleanup()
    }
  }, 60_000 + TRIALS * 8_000)
})
