import { spawn } from 'node:child_process'
import { lstat, mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { generateIdentity } from '../../src/crypto/identity.ts'
import { openDatasetStore, pull, push, recoverPull } from '../../src/datasets/index.ts'
import { changeTree, makeTree, snapshot, tempDir, treeSums } from './helpers.ts'

const CHILD = new URL('./crash-child.ts', import.meta.url).pathname
const TRIALS = Number(process.env.DATASET_CRASH_TRIALS ?? 3)
const { seeds, ...identity } = generateIdentity('tester')

/** Runs the child and kills it with SIGKILL `delayMs` after it opened the store; true when it finished first. */
function runKilled(args: string[], delayMs: number): Promise<boolean> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', d => {
      out += String(d)
      if (out.includes('ready') && !child.killed) setTimeout(() => child.kill('SIGKILL'), delayMs)
    })
    child.stderr.on('data', d => (err += String(d)))
    child.on('error', fail)
    child.on('exit', (code, signal) => (signal === 'SIGKILL' || code === 0 ? done(out.includes('done')) : fail(new Error(`child failed (${code}): ${err}`))))
  })
}

describe('datasets killed with SIGKILL', () => {
  let root: string
  beforeEach(async () => {
    root = await tempDir()
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  /** A store holding v1 of a tree whose files (a bigger one now) changed since: `src` holds v2. */
  async function setUp(home: string): Promise<{ src: string; v1: string; v2: string }> {
    const src = join(root, 'src')
    await mkdir(src)
    await makeTree(src)
    await writeFile(join(src, 'data/large.bin'), Buffer.alloc(24 << 20, 7))
    const open = await openDatasetStore({ identity, home })
    await push(open.store, src, 'corpus', 'v1')
    await snapshot(src, join(root, 'v1'))
    await changeTree(src)
    await writeFile(join(src, 'data/large.bin'), (await import('node:crypto')).randomBytes(24 << 20))
    await snapshot(src, join(root, 'v2'))
    await open.close()
    return { src, v1: join(root, 'v1'), v2: join(root, 'v2') }
  }

  it('leaves no visible half version when a push is killed', async () => {
    const home = join(root, 'home')
    const { src, v2 } = await setUp(home)
    for (let i = 0; i < TRIALS; i++) {
      const finished = await runKilled(['push', home, Buffer.from(seeds).toString('hex'), src], 30 + i * 150)
      const open = await openDatasetStore({ identity, home })
      try {
        const tags = (await open.store.tags('corpus')).filter(t => t.history.at(-1)?.version).map(t => t.tag)
        if (tags.includes('v2')) {
          const out = join(root, `check-${i}`)
          await pull(open.store, 'corpus', 'v2', out)
          expect(await treeSums(out)).toEqual(await treeSums(v2))
        } else expect(finished).toBe(false)
        expect((await open.store.versions('corpus')).length).toBe(tags.includes('v2') ? 2 : 1)
        await open.store.moveTag('corpus', 'v2', null).catch(() => {})
        await open.store.gc(undefined, { graceMs: 0 })
      } finally {
        await open.close()
      }
    }
  })

  it('leaves the old tree or the new one when a pull is killed', async () => {
    const home = join(root, 'home')
    const { src, v1, v2 } = await setUp(home)
    let open = await openDatasetStore({ identity, home })
    await push(open.store, src, 'corpus', 'v2')
    const out = join(root, 'out')
    const [sums1, sums2] = [await treeSums(v1), await treeSums(v2)]
    for (let i = 0; i < TRIALS; i++) {
      await pull(open.store, 'corpus', 'v1', out, { force: true })
      await open.close()
      await runKilled(['pull', home, Buffer.from(seeds).toString('hex'), out], 20 + i * 120)
      const present = await lstat(out).then(() => true, () => false)
      // only between the swap's two renames is the folder absent; the next pull (or recoverPull) completes the swap
      if (!present) await recoverPull(out)
      const sums = await treeSums(out)
      expect([sums1, sums2]).toContainEqual(sums)
      await recoverPull(out)
      open = await openDatasetStore({ identity, home })
    }
    await open.close()
  })
})
