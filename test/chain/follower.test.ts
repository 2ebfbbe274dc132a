import { appendFile } from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { acquirePqPool } from '../../src/crypto/pq-pool.ts'
import { fileBackend } from '../../src/chain/backend.ts'
import { ChunkWriter } from '../../src/chain/chunk-writer.ts'
import { ROOT_INO } from '../../src/chain/format.ts'
import { Follower } from '../../src/chain/follower.ts'
import { LogHead } from '../../src/chain/log-head.ts'
import { openVerifiedLog } from '../../src/chain/open-log.ts'
import { PendingChanges } from '../../src/chain/pending-changes.ts'
import { ChunkReader } from '../../src/chain/reader.ts'
import { Chain } from '../../src/chain/store.ts'
import { TrustRecorder } from '../../src/chain/trust-recorder.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { tempHomeEach, testIdentity } from './helpers.ts'

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

/** A writer chain at `path`, and a follower of its log opened read-only as another process opens it. */
async function writerAndFollower(home: string, path: string) {
  const identity = testIdentity()
  const writer = await Chain.create(path, { identity, home, checkpoints: false })
  closers.push(() => writer.close())
  const opened = await openVerifiedLog(fileBackend(path), { identity, home, readOnly: true, logger: silentLogger, checkpoints: false }, false)
  const { tree } = opened
  const head = new LogHead(opened.fh, opened.verifier, opened.end)
  head.blockOffsets.push(...opened.offsets)
  const pq = opened.pq ?? acquirePqPool()
  closers.push(async () => {
    await pq.release()
    await head.log.close()
  })
  const chunkSize = opened.verifier.genesis!.chunkSize
  const reader = new ChunkReader({ log: () => head.log, tree, chainId: tree.chainId, chunkSize, logger: silentLogger, path }, 1024 * 1024)
  closers.push(() => reader.close())
  const pending = new PendingChanges(tree.maxIno)
  const refuse = () => {
    throw new Error('a follower writes nothing')
  }
  const chunkWriter = new ChunkWriter({ tree, chunkSize, reader, pending, blockBytes: 1024 * 1024, logger: silentLogger, path }, { writable: refuse, touch: refuse, schedule: refuse, commit: refuse })
  const trust = new TrustRecorder({ home, chainId: tree.chainId, head: () => ({ seq: head.headSeq, hash: head.headHash }), enabled: false, logger: silentLogger })
  let closed = false
  const follower = new Follower(
    { head, tree, chunkSize, ownerName: opened.verifier.genesis!.ownerName, identity, path, pending, chunkWriter, shared: undefined, trust, pool: () => pq.pool, closed: () => closed },
    { lostPlace: () => false, regained: () => {}, appended: async () => {}, commitIfWork: () => {} },
  )
  const heard: [number[], string[]][] = []
  follower.onExternalChange((inos, paths) => void heard.push([[...inos].sort((a, b) => a - b), [...paths].sort()]))
  return { writer, follower, head, tree, heard, close: () => (closed = true) }
}

describe('Follower (keeping a copy of the log up to date with what others append)', () => {
  const t = tempHomeEach()

  it('applies the blocks another process appended, moves the head to theirs, and tells the listeners what changed', async () => {
    const f = await writerAndFollower(t.home, t.path)
    const w = f.writer
    const n = w.make(w.root, 'a', 'file', 0o644, { uid: 0, gid: 0 })
    await w.write(n, 0, Buffer.from('from the writer'))
    await w.sync()
    const touched = await f.follower.catchUp()
    expect([...touched].sort((a, b) => a - b)).toEqual([ROOT_INO, n.ino])
    expect(f.heard).toEqual([[[ROOT_INO, n.ino], ['/a']]])
    expect([f.head.headSeq, f.head.tipSeq, f.head.end]).toEqual([w.headSeq, w.headSeq, w.logBytes])
    expect(f.head.headHash).toEqual(w.headHash)
    expect(f.head.blockOffsets).toEqual(w.blockOffsets)
    expect(f.follower.behind).toBe(false)
    const a = f.tree.inodes.get(n.ino)!
    expect(f.tree.names(f.tree.inodes.get(ROOT_INO)!).get('a')).toBe(n.ino)
    expect(f.tree.meta(a).size).toBe(15)
  })

  it('finds nothing when nothing was appended, and tells no one', async () => {
    const f = await writerAndFollower(t.home, t.path)
    const seq = f.head.headSeq
    expect((await f.follower.catchUp()).size).toBe(0)
    expect(f.heard).toEqual([])
    expect(f.head.headSeq).toBe(seq)
  })

  it('says it is behind when the log ends in a block still being written, and applies nothing of it', async () => {
    const f = await writerAndFollower(t.home, t.path)
    const end = f.head.end
    // the first bytes of a frame: a block another process is writing
    await appendFile(t.path, Buffer.from([0x40, 0, 0, 0, 1, 2]))
    expect((await f.follower.catchUp()).size).toBe(0)
    expect(f.follower.behind).toBe(true)
    expect(f.head.end).toBe(end)
  })

  it('reads nothing once the chain is closed, and tells the listeners it closed with no inodes and no paths', async () => {
    const f = await writerAndFollower(t.home, t.path)
    f.writer.make(f.writer.root, 'b', 'dir', 0o755, { uid: 0, gid: 0 })
    await f.writer.sync()
    f.close()
    const seq = f.head.headSeq
    expect((await f.follower.catchUp()).size).toBe(0)
    expect(f.head.headSeq).toBe(seq)
    f.follower.closing()
    expect(f.heard).toEqual([[[], []]])
  })

  it('runs catch-ups one at a time: a second asked for during the first finds what the first left', async () => {
    const f = await writerAndFollower(t.home, t.path)
    f.writer.make(f.writer.root, 'c', 'dir', 0o755, { uid: 0, gid: 0 })
    await f.writer.sync()
    const [first, second] = await Promise.all([f.follower.catchUp(), f.follower.catchUp()])
    expect(first.size).toBeGreaterThan(0)
    expect(second.size).toBe(0)
    expect(f.heard.length).toBe(1)
  })
})
