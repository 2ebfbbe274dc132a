import { afterEach, describe, expect, it } from 'vitest'
import { fileBackend } from '../../src/chain/backend.ts'
import { BlockCommitter } from '../../src/chain/block-committer.ts'
import { ChunkWriter } from '../../src/chain/chunk-writer.ts'
import { CommitQueue } from '../../src/chain/commit-queue.ts'
import { ROOT_INO, type UnsignedBlock } from '../../src/chain/format.ts'
import { newGenesis } from '../../src/chain/genesis.ts'
import { LogHead } from '../../src/chain/log-head.ts'
import { openVerifiedLog } from '../../src/chain/open-log.ts'
import { PendingChanges } from '../../src/chain/pending-changes.ts'
import { ChunkReader } from '../../src/chain/reader.ts'
import { signBlock, type SignedBody } from '../../src/chain/signing.ts'
import { Chain } from '../../src/chain/store.ts'
import { TrustRecorder } from '../../src/chain/trust-recorder.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { tempHomeEach, testIdentity } from './helpers.ts'

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

/**
 * A new chain's log opened as a Chain opens it, and a block committer on it with the
 * pieces it works with (pending changes, a chunk writer, a commit queue); blocks are
 * signed on this thread, through `sign` when given.
 */
async function committerOnNewLog(home: string, path: string, sign?: (block: UnsignedBlock) => Promise<SignedBody>) {
  const identity = testIdentity()
  const backend = fileBackend(path)
  await backend.create(newGenesis({ identity, home }))
  const opened = await openVerifiedLog(backend, { identity, home, logger: silentLogger, checkpoints: false }, true)
  closers.push(async () => {
    await opened.pq?.release()
    await head.log.close()
    await opened.unlock?.()
  })
  const { tree } = opened
  const head = new LogHead(opened.fh, opened.verifier, opened.end)
  head.blockOffsets.push(...opened.offsets)
  const pending = new PendingChanges(tree.maxIno)
  const reader = new ChunkReader({ log: () => head.log, tree, chainId: tree.chainId, chunkSize: opened.verifier.genesis!.chunkSize, logger: silentLogger, path }, 1024 * 1024)
  closers.push(() => reader.close())
  let committer!: BlockCommitter
  const commits = new CommitQueue({ commit: signed => committer.commit(signed), delayMs: 1000, logger: silentLogger, path })
  closers.push(async () => commits.close())
  const chunkWriter = new ChunkWriter(
    { tree, chunkSize: opened.verifier.genesis!.chunkSize, reader, pending, blockBytes: 1024 * 1024, logger: silentLogger, path },
    { writable: () => {}, touch: n => void pending.dirtyMeta.add(n), schedule: () => commits.schedule(), commit: () => commits.request() },
  )
  const trust = new TrustRecorder({ home, chainId: tree.chainId, head: () => ({ seq: head.headSeq, hash: head.headHash }), enabled: false, logger: silentLogger })
  committer = new BlockCommitter({
    head,
    tree,
    author: identity.keyId,
    pending,
    chunkWriter,
    commits,
    shared: undefined,
    trust,
    blockBytes: 1024 * 1024,
    sign: block => (sign ? sign(block) : Promise.resolve(signBlock(block, identity))),
    logger: silentLogger,
    path,
  })
  /** Changes the root's mode, as a chmod does: its metadata waits for the next block. */
  const chmodRoot = (mode: number) => {
    const root = tree.inodes.get(ROOT_INO)!
    tree.meta(root).mode = mode
    pending.dirtyMeta.add(root)
  }
  return { tree, head, pending, commits, committer, chunkWriter, chmodRoot }
}

/** The root's permission bits in the chain at `path`, opened afresh (every block verified). */
async function rootModeOnDisk(home: string, path: string): Promise<{ mode: number; headSeq: number }> {
  const chain = await Chain.open(path, { identity: testIdentity(), home, readOnly: true, checkpoints: false })
  try {
    return { mode: chain.attr(chain.root).mode & 0o7777, headSeq: chain.headSeq }
  } finally {
    await chain.close()
  }
}

describe('BlockCommitter (pending changes into signed blocks, appended in order)', () => {
  const t = tempHomeEach()

  it('signs what waits into the next block and appends it after the head, which it moves', async () => {
    const c = await committerOnNewLog(t.home, t.path)
    const end = c.head.end
    c.chmodRoot(0o700)
    expect(c.committer.hasWork).toBe(true)
    await c.commits.request()
    expect(c.committer.hasWork).toBe(false)
    expect([c.head.headSeq, c.head.tipSeq, c.head.blockOffsets]).toEqual([1, 1, [c.head.blockOffsets[0], end]])
    expect(c.head.end).toBeGreaterThan(end)
    expect(await rootModeOnDisk(t.home, t.path)).toEqual({ mode: 0o700, headSeq: 1 })
  })

  it('commits nothing when nothing waits', async () => {
    const c = await committerOnNewLog(t.home, t.path)
    const end = c.head.end
    await c.commits.request()
    expect([c.head.headSeq, c.head.end]).toEqual([0, end])
  })

  it('puts the changes of a block it could not sign back for the next commit, and rejects with EIO', async () => {
    let refuse = true
    const identity = testIdentity()
    const c = await committerOnNewLog(t.home, t.path, async block => {
      if (refuse) throw new Error('signer gone')
      return signBlock(block, identity)
    })
    c.chmodRoot(0o711)
    await expect(c.commits.request()).rejects.toMatchObject({ code: 'EIO', message: expect.stringContaining('(commit could not be signed: signer gone)') })
    expect(c.committer.failed).toBeUndefined()
    expect(c.pending.dirtyMeta.size).toBe(1)
    expect(c.head.headSeq).toBe(0)
    refuse = false
    await c.commits.request()
    expect(await rootModeOnDisk(t.home, t.path)).toEqual({ mode: 0o711, headSeq: 1 })
  })

  it('fails for good once a block does not land: later commits reject with EIO and nothing more is appended', async () => {
    const c = await committerOnNewLog(t.home, t.path)
    const log = c.head.log
    const append = log.append.bind(log)
    log.append = async () => {
      throw new Error('disk gone')
    }
    c.chmodRoot(0o750)
    await expect(c.commits.request()).rejects.toMatchObject({ code: 'EIO', message: expect.stringContaining('(commit failed: disk gone)') })
    expect(c.committer.failed?.message).toBe('disk gone')
    log.append = append
    c.chmodRoot(0o755)
    await expect(c.commits.request()).rejects.toMatchObject({ code: 'EIO', message: expect.stringContaining('(disk gone)') })
    expect(c.head.headSeq).toBe(0)
    expect((await rootModeOnDisk(t.home, t.path)).headSeq).toBe(0)
  })

  it('seals the dirty chunks of written files into the block, whose chunks are then read from the log', async () => {
    const c = await committerOnNewLog(t.home, t.path)
    const file = c.tree.inode(2)
    file.keyParent = ROOT_INO
    file.meta = { ...c.tree.meta(c.tree.inodes.get(ROOT_INO)!), name: 'f', parent: ROOT_INO, kind: 'file', size: 0, key: Buffer.alloc(32, 1) }
    await c.chunkWriter.write(file, 0, Buffer.from('content'))
    expect(c.chunkWriter.dirtyInodes.size).toBe(1)
    await c.commits.request()
    expect(c.chunkWriter.dirtyInodes.size).toBe(0)
    const ref = file.chunks.get(0)!
    expect(ref.sealed).toBeUndefined()
    expect(ref.pos).toBeGreaterThan(c.head.blockOffsets[1]!)
    expect(ref.pos).toBeLessThan(c.head.end)
    const chain = await Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true, checkpoints: false })
    try {
      const f = chain.lookup(chain.root, 'f')!
      expect(Buffer.from(await chain.read(f, 0, 100)).toString()).toBe('content')
    } finally {
      await chain.close()
    }
  })
})
