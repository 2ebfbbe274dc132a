import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { CHECKPOINT_BLOCKS, checkpointPath } from '../../src/chain/checkpoint.ts'
import { fileBackend } from '../../src/chain/backend.ts'
import { compactChain } from '../../src/chain/compact.ts'
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES } from '../../src/chain/format.ts'
import { ChainIntegrityError } from '../../src/chain/log.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { shareChainPath } from '../../src/chain/sharing.ts'
import { Chain, type ChainOptions } from '../../src/chain/store.ts'
import { RollbackError } from '../../src/chain/trust.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { person } from './people.ts'

const alice = person('alice')
const bob = person('bob')
const BLOCKS = CHECKPOINT_BLOCKS + 20

/** Frame offsets of a closed log. */
function frames(log: Buffer): number[] {
  const out: number[] = []
  for (let p = FILE_HEADER_BYTES; p < log.length; p += FRAME_HEADER_BYTES + log.readUInt32LE(p + 4)) out.push(p)
  return out
}

/** Everything a mount of the chain shows, as text: paths, modes, sizes, link counts, xattrs and content digests. */
async function picture(vfs: Vfs, dir = '/c'): Promise<string[]> {
  const out: string[] = []
  for (const e of (await vfs.readdirAll(dir)).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = `${dir}/${e.name}`
    const st = await vfs.lstat(p)
    const xattrs = (await vfs.listxattr(p)).sort().join(',')
    let body = ''
    if (st.kind === 'file') body = Buffer.from(await vfs.readFile(p)).toString('base64').slice(0, 40)
    else if (st.kind === 'symlink') body = await vfs.readlink(p)
    out.push(`${p} ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.nlink} [${xattrs}] ${body}`)
    if (st.kind === 'dir') out.push(...(await picture(vfs, p)))
  }
  return out
}

describe('signed checkpoints: an open verifies the blocks after the newest checkpoint, not the whole history', () => {
  let base = ''
  let work = ''
  let log = ''
  const home = () => join(work, 'alice')
  const opened: Vfs[] = []

  /** Opens the chain as alice (read-write unless told) and mounts it at /c. */
  async function open(options: Partial<ChainOptions> = {}): Promise<{ vfs: Vfs; chain: Chain }> {
    const chain = await Chain.open(log, { identity: alice, home: home(), logger: silentLogger, ...options })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    opened.push(vfs)
    return { vfs, chain }
  }
  async function close(vfs: Vfs): Promise<void> {
    opened.splice(opened.indexOf(vfs), 1)
    await vfs.close()
  }

  // one chain of BLOCKS blocks, made once, without checkpoints; each test works on a copy at the same path
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'facet-checkpoint-base-'))
    work = join(base, 'work')
    log = join(work, 'files.chain')
    await mkdir(work)
    const chain = await Chain.create(log, { identity: alice, home: home(), checkpoints: false })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    await vfs.mkdir('/c/d', 0o750)
    await vfs.writeFile('/c/d/shared.txt', 'for bob\n')
    await vfs.setxattr('/c/d/shared.txt', 'user.tag', Buffer.from('t'))
    await vfs.link('/c/d/shared.txt', '/c/hard')
    await vfs.symlink('d/shared.txt', '/c/sym')
    await shareChainPath(chain, '/d/shared.txt', bob)
    for (let i = 0; chain.headSeq < BLOCKS; i++) {
      await vfs.writeFile(`/c/d/f${i % 40}.txt`, `version ${i}\n`.repeat(i % 7 + 1))
      await chain.sync()
    }
    await vfs.close()
    await cp(work, `${base}/pristine`, { recursive: true })
  })
  afterAll(() => rm(base, { recursive: true, force: true }))
  beforeEach(async () => {
    await rm(work, { recursive: true, force: true })
    await cp(`${base}/pristine`, work, { recursive: true })
  })
  afterEach(async () => {
    for (const v of opened.splice(0)) await v.close()
  })

  it('writes one at the first open past the threshold, and the next open goes on from it with the same tree, then from the tail after it', async () => {
    const full = await open({ checkpoints: false })
    const expected = await picture(full.vfs)
    expect(expected.length).toBeGreaterThan(40)
    expect(full.chain.report.checkpoint).toBeUndefined()
    await close(full.vfs)
    await expect(stat(checkpointPath(home(), fileBackend(log)))).rejects.toMatchObject({ code: 'ENOENT' })

    const first = await open()
    expect(first.chain.report.checkpoint).toBeUndefined()
    expect(first.chain.report.checkpointWritten).toEqual({ seq: BLOCKS, end: (await stat(log)).size })
    await close(first.vfs)

    const second = await open()
    expect(second.chain.report).toMatchObject({ headSeq: BLOCKS, checkpoint: { seq: BLOCKS, tailBlocks: 0 }, blocks: BLOCKS + 1 })
    expect(await picture(second.vfs)).toEqual(expected)
    // new blocks after the checkpoint: the next open verifies those alone and shows them
    await second.vfs.writeFile('/c/d/after.txt', 'after the checkpoint\n')
    await second.chain.sync()
    await second.vfs.rename('/c/d/f1.txt', '/c/d/renamed.txt')
    await second.chain.sync()
    const after = await picture(second.vfs)
    await close(second.vfs)

    const third = await open({ readOnly: true })
    expect(third.chain.report).toMatchObject({ headSeq: BLOCKS + 2, checkpoint: { seq: BLOCKS, tailBlocks: 2 } })
    expect(await picture(third.vfs)).toEqual(after)
    expect((await third.vfs.readFile('/c/d/after.txt')).toString()).toBe('after the checkpoint\n')
    // and bob's grant of the one file came through the checkpoint as well
    await close(third.vfs)
    const b = await Chain.open(log, { identity: bob, home: join(work, 'bob'), readOnly: true })
    expect(b.report.checkpoint).toBeUndefined() // bob has none of his own yet: alice's is hers
    await b.close()
    expect((await verifyChain(log, { home: home() })).problem).toBeUndefined()
  })

  it('writes one at the close of a chain that committed enough blocks since its open, and the remount goes on from there', async () => {
    const path = join(work, 'busy.chain')
    const chain = await Chain.create(path, { identity: alice, home: home() })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    for (let i = 0; chain.headSeq < CHECKPOINT_BLOCKS + 5; i++) {
      await vfs.writeFile(`/c/f${i % 10}`, `${i}\n`)
      await chain.sync()
    }
    expect(chain.report.checkpointWritten).toBeUndefined()
    const head = chain.headSeq
    const expected = await picture(vfs)
    await vfs.close()
    expect(chain.report.checkpointWritten).toEqual({ seq: head, end: (await stat(path)).size })

    const again = await Chain.open(path, { identity: alice, home: home(), readOnly: true })
    expect(again.report).toMatchObject({ headSeq: head, checkpoint: { seq: head, tailBlocks: 0 } })
    const v = createVfs({ mounts: { '/c': chainMount(again) }, logger: silentLogger })
    opened.push(v)
    expect(await picture(v)).toEqual(expected)
  })

  it('replays the whole log when the checkpoint is damaged, another identity’s, or for a log compacted since', async () => {
    await (await open()).chain.close()
    const file = checkpointPath(home(), fileBackend(log))
    const good = await readFile(file)
    const expected = await picture((await open({ checkpoints: false, readOnly: true })).vfs)

    // a flipped byte in the payload: the signature fails
    const bad = Buffer.from(good)
    bad[bad.length - 100]! ^= 1
    await writeFile(file, bad)
    const a = await open({ readOnly: true })
    expect(a.chain.report.checkpoint).toBeUndefined()
    expect(await picture(a.vfs)).toEqual(expected)

    // a truncated file, and an empty one
    for (const bytes of [good.subarray(0, 2000), Buffer.alloc(0)]) {
      await writeFile(file, bytes)
      const c = await open({ readOnly: true })
      expect(c.chain.report.checkpoint).toBeUndefined()
      await close(c.vfs)
    }

    // alice's checkpoint put in bob's home does not open for bob (it is signed with alice's key)
    await writeFile(file, good)
    await cp(join(home(), 'checkpoints'), join(work, 'bob', 'checkpoints'), { recursive: true })
    const b = await Chain.open(log, { identity: bob, home: join(work, 'bob'), readOnly: true })
    expect(b.report.checkpoint).toBeUndefined()
    await b.close()

    // compaction writes a new log: the old checkpoint names blocks it no longer holds
    const owner = await open()
    expect(owner.chain.report.checkpoint?.seq).toBe(BLOCKS)
    await compactChain(owner.chain)
    await close(owner.vfs)
    const again = await open({ readOnly: true })
    expect(again.chain.report.checkpoint).toBeUndefined()
    expect(await picture(again.vfs)).toEqual(expected)
  })

  it('still refuses a rolled-back log and a damaged tail, and reads of damaged old blocks fail while facet verify names them', async () => {
    const first = await open()
    const expected = await picture(first.vfs)
    await first.vfs.writeFile('/c/d/tail.txt', 'in the tail\n')
    await first.chain.sync()
    await first.vfs.writeFile('/c/d/tail2.txt', 'in the tail too\n')
    await first.chain.sync()
    await close(first.vfs)
    const bytes = await readFile(log)
    const starts = frames(bytes)

    // the log cut back before the checkpoint: the trust store's head says rolled back
    await truncate(log, starts[starts.length - 4]!)
    await expect(open()).rejects.toThrow(RollbackError)

    // a flipped byte in the tail, which is verified as always
    const tail = Buffer.from(bytes)
    tail[starts[starts.length - 2]! + FRAME_HEADER_BYTES + 60]! ^= 1
    await writeFile(log, tail)
    await expect(open()).rejects.toThrow(ChainIntegrityError)

    // a flipped byte in the content of an old block, before the checkpoint: the open goes on from it, the read fails, verify names the block
    const old = Buffer.from(bytes)
    await writeFile(log, bytes)
    const plain = (await open({ readOnly: true, checkpoints: false })).chain
    const f = plain.lookup(plain.lookup(plain.root, 'd')!, 'shared.txt')!
    const at = [...f.chunks.values()][0]!.pos
    old[at + 20]! ^= 1
    await writeFile(log, old)
    const c = await open({ readOnly: true })
    expect(c.chain.report.checkpoint?.seq).toBe(BLOCKS)
    await expect(c.vfs.readFile('/c/d/shared.txt')).rejects.toMatchObject({ code: 'EIO' })
    const v = await verifyChain(log, { home: home() })
    expect(v.ok).toBe(false)
    expect(v.problem?.seq).toBeLessThan(BLOCKS)
    expect(expected.length).toBeGreaterThan(40)
    expect(await readdir(join(home(), 'checkpoints'))).toHaveLength(1)
  })
})
