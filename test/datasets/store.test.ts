import { execFile } from 'node:child_process'
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { datasetsMount, GC_GRACE_MS, NameError, openDatasetStore, pull, PullRefusedError, push, PushError, type OpenDatasetStore } from '../../src/datasets/index.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { fuseSkip, mountForTest } from '../helpers/fuse.ts'
import { changeTree, makeTree, snapshot, tempDir, testIdentity, treeSums } from './helpers.ts'

const run = promisify(execFile)

describe('dataset store', () => {
  let root: string
  let src: string
  let open: OpenDatasetStore
  beforeEach(async () => {
    root = await tempDir()
    src = join(root, 'src')
    await mkdir(src)
    await makeTree(src)
    open = await openDatasetStore({ identity: testIdentity(), home: join(root, 'home') })
  })
  afterEach(async () => {
    await open?.close()
    await rm(root, { recursive: true, force: true })
  })

  /** Pushes the tree as v1, changes it, pushes v2; returns snapshots of both. */
  async function twoVersions(): Promise<{ v1: string; v2: string; r1: Awaited<ReturnType<typeof push>>; r2: Awaited<ReturnType<typeof push>> }> {
    const r1 = await push(open.store, src, 'corpus', 'v1')
    await snapshot(src, join(root, 'v1'))
    await changeTree(src)
    await snapshot(src, join(root, 'v2'))
    const r2 = await push(open.store, src, 'corpus', 'v2')
    return { v1: join(root, 'v1'), v2: join(root, 'v2'), r1, r2 }
  }

  function chunkIds(m: { entries: { chunks?: [string, number][] }[] }): Set<string> {
    return new Set(m.entries.flatMap(e => (e.chunks ?? []).map(c => c[0])))
  }

  it('stores a second version with an insertion in a big file as only the chunks around the change', async () => {
    const { r1, r2 } = await twoVersions()
    expect(r1.bytesReused).toBe(0)
    expect(r2.bytesReused).toBeGreaterThan(3_000_000)
    // the insertion touches one or two chunks of the big file, plus the small changed files
    expect(r2.bytesNew).toBeLessThan(0.15 * r2.bytes)
    expect(r2.version).not.toBe(r1.version)
  })

  it('pulls the second tag over the first reading only the chunks the folder lacks, byte for byte', async () => {
    const { v1, v2 } = await twoVersions()
    const out = join(root, 'out')
    const p1 = await pull(open.store, 'corpus', 'v1', out)
    expect(p1.chunksLocal).toBe(0)
    expect(await treeSums(out)).toEqual(await treeSums(v1))
    const p2 = await pull(open.store, 'corpus', 'v2', out)
    expect(await treeSums(out)).toEqual(await treeSums(v2))
    const m1 = (await open.store.resolve('corpus', 'v1')).manifest
    const m2 = (await open.store.resolve('corpus', 'v2')).manifest
    const missing = [...chunkIds(m2)].filter(id => !chunkIds(m1).has(id))
    expect(p2.chunksFetched).toBe(missing.length)
    expect(p2.chunksLocal).toBeGreaterThan(0)
  })

  it('refuses a pull into a folder with local edits unless forced', async () => {
    await twoVersions()
    const out = join(root, 'out')
    await pull(open.store, 'corpus', 'v1', out)
    await writeFile(join(out, 'docs/note-1.txt'), 'edited here\n')
    await expect(pull(open.store, 'corpus', 'v2', out)).rejects.toThrow(PullRefusedError)
    await expect(pull(open.store, 'corpus', 'v2', out)).rejects.toThrow(/docs\/note-1.txt changed/)
    await pull(open.store, 'corpus', 'v2', out, { force: true })
    expect(await treeSums(out)).toEqual(await treeSums(join(root, 'v2')))
    await expect(pull(open.store, 'corpus', 'v1', src)).rejects.toThrow(/no pull put there/)
  })

  it('frees exactly the chunks no tag reaches after a tag is removed', async () => {
    await twoVersions()
    const m1 = (await open.store.resolve('corpus', 'v1')).manifest
    const m2 = (await open.store.resolve('corpus', 'v2')).manifest
    const only1 = [...chunkIds(m1)].filter(id => !chunkIds(m2).has(id))
    expect((await open.store.gc(undefined, { graceMs: 0 })).chunks).toBe(0)
    await open.store.moveTag('corpus', 'v1', null)
    const report = await open.store.gc(undefined, { graceMs: 0 })
    expect(report).toMatchObject({ chunks: only1.length, versions: 1, kept: 0 })
    expect((await open.store.chunks.list()).size).toBe(chunkIds(m2).size)
    const out = join(root, 'out')
    await pull(open.store, 'corpus', 'v2', out)
    expect(await treeSums(out)).toEqual(await treeSums(join(root, 'v2')))
  })

  it('keeps the chunks of a file open through the mount across a tag move and gc, and frees them after close', async () => {
    const { v1 } = await twoVersions()
    const m1 = (await open.store.resolve('corpus', 'v1')).manifest
    const m2 = (await open.store.resolve('corpus', 'v2')).manifest
    const only1 = [...chunkIds(m1)].filter(id => !chunkIds(m2).has(id))
    const vfs = createVfs({ mounts: { '/datasets': datasetsMount(open.store) }, logger: silentLogger })
    try {
      const fh = await vfs.open('/datasets/corpus/v1/data/big.bin')
      await open.store.moveTag('corpus', 'v1', (await open.store.resolve('corpus', 'v2')).id)
      expect(await open.store.gc(undefined, { graceMs: 0 })).toMatchObject({ chunks: 0, versions: 0, kept: 1 })
      const want = await readFile(join(v1, 'data/big.bin'))
      const got: Buffer[] = []
      for (let at = 0; at < want.length; at += 1 << 20) got.push(Buffer.from(await vfs.read(fh, at, 1 << 20)))
      expect(Buffer.concat(got).equals(want)).toBe(true)
      await vfs.release(fh)
      expect(await open.store.gc(undefined, { graceMs: 0 })).toMatchObject({ chunks: only1.length, versions: 1, kept: 0 })
      expect((await open.store.chunks.list()).size).toBe(chunkIds(m2).size)
    } finally {
      await vfs.close()
    }
  })

  it('keeps a version a tag left within the grace period, for readers in other processes', async () => {
    await twoVersions()
    await open.store.moveTag('corpus', 'v1', null)
    expect(await open.store.gc()).toMatchObject({ chunks: 0, versions: 0, kept: 1 })
    const report = await open.store.gc(undefined, { now: Date.now() + GC_GRACE_MS + 1000 })
    expect(report).toMatchObject({ versions: 1, kept: 0 })
    expect(report.chunks).toBeGreaterThan(0)
  })

  it('keeps the history of a moved tag', async () => {
    const { r1, r2 } = await twoVersions()
    await open.store.moveTag('corpus', 'stable', r1.version)
    await open.store.moveTag('corpus', 'stable', r2.version)
    const record = await open.store.tag('corpus', 'stable')
    expect(record!.history.map(h => h.version)).toEqual([r1.version, r2.version])
    expect(record!.history[0]!.by).toBe('tester')
  })

  it('names special files and symlink loops, and leaves them out with skipErrors', async () => {
    await run('mkfifo', [join(src, 'docs/pipe')])
    await symlink('loop-b', join(src, 'loop-a'))
    await symlink('loop-a', join(src, 'loop-b'))
    const err = (await push(open.store, src, 'corpus', 'v1').catch((e: unknown) => e)) as PushError
    expect(err).toBeInstanceOf(PushError)
    expect(err.message).toMatch(/docs\/pipe: special file \(fifo\)/)
    expect(err.message).toMatch(/loop-a: symlink loop/)
    expect(await open.store.datasets()).toEqual([])
    const r = await push(open.store, src, 'corpus', 'v1', { skipErrors: true })
    expect(r.skipped.map(p => p.path)).toEqual(['docs/pipe', 'loop-a', 'loop-b'])
  })

  it('refuses invalid dataset and tag names', async () => {
    for (const [name, tag] of [['corpus', '../x'], ['corpus', '-rc'], ['corpus', 'a b'], ['Bad/Name', 'v1'], ['corpus', '']]) {
      await expect(push(open.store, src, name!, tag!)).rejects.toThrow(NameError)
    }
  })

  it('shows a moved tag in the mount on the next lookup', async () => {
    const { r1 } = await twoVersions()
    const vfs = createVfs({ mounts: { '/datasets': datasetsMount(open.store) }, logger: silentLogger })
    expect((await vfs.readdir('/datasets/corpus')).entries.map(e => e.name)).toEqual(['v1', 'v2'])
    await open.store.moveTag('corpus', 'v2', r1.version)
    expect((await vfs.readFile('/datasets/corpus/v2/docs/note-3.txt')).toString()).toBe(`note 3\n`.repeat(170))
    await vfs.close()
  })

  it('announces a tag moved by another writer as a change event, and shows it on the next read', async () => {
    const { r1 } = await twoVersions()
    const follower = await openDatasetStore({ identity: testIdentity(), home: join(root, 'home'), readOnly: true })
    const vfs = createVfs({ mounts: { '/datasets': datasetsMount(follower.store, { onChange: l => follower.onChange(l), close: () => follower.close() }) }, logger: silentLogger })
    expect((await vfs.readFile('/datasets/corpus/v2/docs/note-3.txt')).toString()).toBe('rewritten\n')
    const moved = new Promise<string>(done => vfs.watch('/datasets', e => e.path === '/datasets/corpus/v2' && done(e.type)))
    await open.store.moveTag('corpus', 'v2', r1.version)
    await open.store.sync()
    expect(await moved).toBe('update')
    expect((await vfs.readFile('/datasets/corpus/v2/docs/note-3.txt')).toString()).toBe(`note 3\n`.repeat(170))
    await vfs.close()
  })

  describe.skipIf(fuseSkip)('through FUSE', () => {
    it('mounts both tags read-only and reads them back byte for byte', async () => {
      const { v1, v2 } = await twoVersions()
      const vfs = createVfs({ mounts: { '/datasets': datasetsMount(open.store) }, logger: silentLogger })
      const m = await mountForTest(vfs)
      try {
        expect(await treeSums(join(m.dir, 'datasets/corpus/v1'), false)).toEqual(await treeSums(v1, false))
        expect(await treeSums(join(m.dir, 'datasets/corpus/v2'), false)).toEqual(await treeSums(v2, false))
        await expect(writeFile(join(m.dir, 'datasets/corpus/v1/docs/x'), 'x')).rejects.toMatchObject({ code: expect.stringMatching(/EROFS|EACCES/) })
      } finally {
        await m.unmount()
        await vfs.close()
      }
    })
  })
})
