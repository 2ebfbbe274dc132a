import { readFile, stat } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { generateIdentity, type Identity } from '../src/crypto/identity.ts'
import { Chain } from '../src/chain/store.ts'
import { fileBackend } from '../src/chain/backend.ts'
import { writeCheckpoint } from '../src/chain/checkpoint.ts'
import { FORMAT_VERSION } from '../src/chain/format.ts'
import { mountFuse } from '../src/fuse/index.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import { memoryMount } from '../src/vfs/memory.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { exec, median, nodeChild, SMALL_FILES, timeCommand, type BenchContext } from './lib.ts'
import { mountBareFuse, type BareMount, type BareTree } from './baselines/bare-fuse.ts'
import { BARE_FUSE_NATIVE, fuseNativeAvailability, mountBareFuseNative } from './baselines/bare-fuse-native.ts'
import { ensureGocryptfs, mountChainSide, mountGocryptfsSide, nativeSide, type Side } from './mounts.ts'

interface Sizes {
  seqMiB: number
  smallFiles: number
  openEvents: number
  reps: number
}
const FULL: Sizes = { seqMiB: 256, smallFiles: 10_000, openEvents: 100_000, reps: 3 }
const QUICK: Sizes = { seqMiB: 32, smallFiles: 1_000, openEvents: 10_000, reps: 1 }

async function measure(b: BenchContext, side: Side, s: Sizes): Promise<{ write: number; read: number; reread: number; small: number; ls: number }> {
  const file = join(side.dir, 'seq.bin')
  const writes: number[] = []
  const reads: number[] = []
  const rereads: number[] = []
  for (let r = 0; r < s.reps; r++) {
    writes.push(await timeCommand('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${s.seqMiB}`, 'conv=fsync', 'status=none']))
    await side.remount()
    reads.push(await timeCommand('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'status=none']))
    // the same file again, unchanged, by a new open: what the kernel may keep of it
    rereads.push(await timeCommand('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'status=none']))
  }
  await exec('rm', ['-f', file])
  const { ms: smallMs } = await nodeChild<{ ms: number }>(SMALL_FILES, [join(side.dir, 'small'), String(s.smallFiles)], { timeoutMs: 600_000 })
  await exec('sync', [])
  await side.remount()
  const ls = await timeCommand('ls', ['-lR', join(side.dir, 'small')])
  const mbps = (ms: number) => (s.seqMiB * 1.048576) / (ms / 1000)
  b.log(`${side.name}: write ${writes.map(w => w.toFixed(0)).join('/')} ms, read ${reads.map(w => w.toFixed(0)).join('/')} ms, reread ${rereads.map(w => w.toFixed(0)).join('/')} ms, ${s.smallFiles} files ${smallMs.toFixed(0)} ms, ls -lR ${ls.toFixed(0)} ms`)
  return { write: mbps(median(writes)), read: mbps(median(reads)), reread: mbps(median(rereads)), small: s.smallFiles / (smallMs / 1000), ls }
}

/**
 * Opening a chain of N events against hashing the same bytes. A function of its own, so the
 * big chain it builds is garbage once it returns (a block of the caller's async frame keeps
 * its values alive, and a big live heap slows every later garbage collection).
 */
async function measureOpen(b: BenchContext, s: Sizes, id: Identity, home: string): Promise<void> {
  const path = join(home, 'open.chain')
  const chain = await Chain.create(path, { identity: id, home, trust: false })
  const files = Math.ceil(s.openEvents / 2)
  for (let i = 0; i < files; i++) {
    const n = chain.make(chain.root, `f${i}`, 'file', 0o644, { uid: 0, gid: 0 })
    await chain.write(n, 0, Buffer.from(`content of file ${i}\n`))
    if (i % 1000 === 999) await chain.sync()
  }
  await chain.close()
  const opens: number[] = []
  const fromCheckpoint: number[] = []
  const hashes: number[] = []
  let events = 0
  // a checkpoint of the chain as an open finds it (one is written by itself past 256 blocks or 16 MiB; this chain may be smaller)
  const c0 = await Chain.open(path, { identity: id, home, trust: false, readOnly: true, checkpoints: false })
  const log = await fileBackend(path).open(true)
  await writeCheckpoint(home, fileBackend(path), log, id, { tree: c0.tree, writers: c0.writers, baseSeq: c0.baseSeq, headSeq: c0.headSeq, headHash: c0.headHash, formatVersion: FORMAT_VERSION, end: c0.logBytes, offsets: c0.blockOffsets, ownBlocks: 0, blocks: c0.report.blocks, events: c0.report.events })
  await log.close()
  await c0.close()
  for (let r = 0; r < Math.max(3, s.reps); r++) {
    let t = performance.now()
    const c = await Chain.open(path, { identity: id, home, trust: false, readOnly: true, checkpoints: false })
    opens.push(performance.now() - t)
    events = c.report.events
    await c.close()
    t = performance.now()
    const k = await Chain.open(path, { identity: id, home, trust: false, readOnly: true })
    fromCheckpoint.push(performance.now() - t)
    if (!k.report.checkpoint) throw new Error('the open did not go on from a checkpoint')
    await k.close()
    t = performance.now()
    createHash('sha256').update(await readFile(path)).digest()
    hashes.push(performance.now() - t)
  }
  const size = (await stat(path)).size
  b.row({ figure: `open a chain of ${events} events (${(size / 2 ** 20).toFixed(1)} MiB, verify all)`, value: median(opens), unit: 'ms', baseline: 'read + sha256 of the log', baselineValue: median(hashes), higherIsBetter: false })
  b.row({ figure: `open the same chain from its checkpoint`, value: median(fromCheckpoint), unit: 'ms', baseline: 'read + sha256 of the log', baselineValue: median(hashes), higherIsBetter: false })
}

/** Encrypted chains: sequential I/O, small files and `ls -lR` through FUSE against gocryptfs and the native disk; opening a big chain against hashing it. */
export default async function chainBench(b: BenchContext): Promise<void> {
  const s = b.quick ? QUICK : FULL
  const id = (({ seeds: _s, ...rest }) => rest)(generateIdentity('bench'))
  const home = b.tmpdir('facet-chain-bench-')

  await measureOpen(b, s, id, home)

  const sides: Side[] = [await mountChainSide(b, { identity: id, home })]
  if (await ensureGocryptfs(b)) sides.push(await mountGocryptfsSide(b))
  sides.push(nativeSide(b))

  const results = new Map<string, Awaited<ReturnType<typeof measure>>>()
  for (const side of sides) results.set(side.name, await measure(b, side, s))
  const ch = results.get('chain')!

  // the ceiling of any reader in this process: a bare handler serving the same bytes from memory, no crypto,
  // on fuse-napi (mounted as the adapter mounts) and on fuse-native (libfuse 2, the old ceiling);
  // and the floor of small-file creates on the same handlers
  const floors: Array<{ label: string; mount: (dir: string, tree: BareTree) => Promise<BareMount> }> = [
    // answering with readBuffer, as the adapter does: the binding's read op allocates a reply buffer per call and reads at about half the rate
    { label: 'bare fuse-napi', mount: (dir, tree) => mountBareFuse(dir, tree, { writable: true, readBuffer: true }) },
  ]
  const oldFloor = fuseNativeAvailability()
  if (oldFloor.ok) floors.push({ label: BARE_FUSE_NATIVE, mount: (dir, tree) => mountBareFuseNative(dir, tree, { writable: true }) })
  else b.log(oldFloor.reason)
  const floorResults: Array<{ label: string; read: number; small: number }> = []
  for (const f of floors) {
    const dir = b.tmpdir(`facet-bare-${f.label}`)
    // every page written once: a zeroed Buffer is mapped lazily, and the first dd would time page faults of the bench's own memory
    const seq = Buffer.alloc(s.seqMiB * 2 ** 20)
    for (let i = 0; i < seq.length; i += 4096) seq.writeUInt32LE(i >>> 12, i)
    const floor = await f.mount(dir, { 'seq.bin': seq })
    const reads: number[] = []
    let smallMs: number
    try {
      for (let r = 0; r < s.reps; r++) reads.push(await timeCommand('dd', [`if=${join(dir, 'seq.bin')}`, 'of=/dev/null', 'bs=1M', 'status=none']))
      ;({ ms: smallMs } = await nodeChild<{ ms: number }>(SMALL_FILES, [join(dir, 'small'), String(s.smallFiles)], { timeoutMs: 600_000 }))
    } finally {
      await floor.unmount()
    }
    b.log(`${f.label}: read ${reads.map(w => w.toFixed(0)).join('/')} ms, ${s.smallFiles} files ${smallMs.toFixed(0)} ms`)
    floorResults.push({ label: f.label, read: (s.seqMiB * 1.048576) / (median(reads) / 1000), small: s.smallFiles / (smallMs / 1000) })
  }
  const floorRead = floorResults[0]!.read
  for (const f of floorResults) {
    b.row({ figure: `sequential read ${s.seqMiB} MiB (dd, cold)`, value: ch.read, unit: 'MB/s', baseline: `${f.label}, from memory, no crypto`, baselineValue: f.read, higherIsBetter: true, note: `the ceiling of a ${f.label.replace('bare ', '')} filesystem` })
    b.row({ figure: `create ${s.smallFiles} small files`, value: ch.small, unit: 'files/s', baseline: `${f.label}, in memory`, baselineValue: f.small, higherIsBetter: true, note: 'the floor of a create through the binding' })
  }
  // the same adapter over the memory mount: what FUSE and the router cost a small file, without a chain
  const memDir = b.tmpdir('facet-mem-')
  const memVfs = createVfs({ mounts: { '/': memoryMount() }, logger: silentLogger })
  const mem = await mountFuse(memVfs, memDir)
  let memMs: number
  try {
    ;({ ms: memMs } = await nodeChild<{ ms: number }>(SMALL_FILES, [join(memDir, 'small'), String(s.smallFiles)], { timeoutMs: 600_000 }))
  } finally {
    await mem.unmount()
    await memVfs.close()
  }
  b.row({ figure: `create ${s.smallFiles} small files`, value: ch.small, unit: 'files/s', baseline: 'memory mount, same FUSE adapter', baselineValue: s.smallFiles / (memMs / 1000), higherIsBetter: true, note: 'what the chain adds to FUSE and the router' })
  const gocrypt = results.get('gocryptfs')
  if (gocrypt) b.row({ figure: `sequential read ${s.seqMiB} MiB: the bare fuse-napi ceiling itself`, value: floorRead, unit: 'MB/s', baseline: 'gocryptfs', baselineValue: gocrypt.read, higherIsBetter: true })
  for (const base of ['gocryptfs', 'native disk']) {
    const r = results.get(base)
    if (!r) continue
    const target = base === 'gocryptfs'
    b.row({ figure: `sequential write ${s.seqMiB} MiB (dd, fsync)`, value: ch.write, unit: 'MB/s', baseline: base, baselineValue: r.write, higherIsBetter: true, note: target ? `target >= 80%: ${ch.write >= 0.8 * r.write ? 'met' : 'missed'}` : undefined })
    b.row({ figure: `sequential read ${s.seqMiB} MiB (dd, cold)`, value: ch.read, unit: 'MB/s', baseline: base, baselineValue: r.read, higherIsBetter: true, note: target ? `target >= 100%: ${ch.read >= r.read ? 'met' : 'missed'}` : undefined })
    b.row({ figure: `sequential reread ${s.seqMiB} MiB (dd, unchanged file, new open)`, value: ch.reread, unit: 'MB/s', baseline: base, baselineValue: r.reread, higherIsBetter: true })
    b.row({ figure: `create ${s.smallFiles} small files`, value: ch.small, unit: 'files/s', baseline: base, baselineValue: r.small, higherIsBetter: true, note: target ? `target >= 100%: ${ch.small >= r.small ? 'met' : 'missed'}` : undefined })
    b.row({ figure: `ls -lR of ${s.smallFiles} files (cold)`, value: ch.ls, unit: 'ms', baseline: base, baselineValue: r.ls, higherIsBetter: false, note: target ? `target <= 100%: ${ch.ls <= r.ls ? 'met' : 'missed'}` : undefined })
  }
}
