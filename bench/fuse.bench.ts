import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mountFuse, fuseAvailability } from '../src/fuse/index.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import { memoryMount } from '../src/vfs/memory.ts'
import type { VNode } from '../src/vfs/node.ts'
import { dir, file } from '../src/views/view.ts'
import { fuseMountOptions } from '../src/fuse/options.ts'
import { mountBareFuse, type BareMount, type BareTree } from './baselines/bare-fuse.ts'
import { BARE_FUSE_NATIVE, fuseNativeAvailability, mountBareFuseNative } from './baselines/bare-fuse-native.ts'
import { COLD_STAT, ddRead, formatValue, HOT_STAT, interleave, median, nodeChild, timeCommand, type BenchContext, type Samples } from './lib.ts'

/** Sizes of one run. */
interface Sizes {
  /** `stat` calls of one file per sample (after 200 unmeasured ones). */
  hotStats: number
  /** Files per view folder (the `ls -l` folders and the cold-stat folders). */
  entries: number
  /** Measured `ls -l` repetitions per side (plus one warm-up). */
  lsReps: number
  /** Measured cold-stat repetitions per side (plus one warm-up). */
  coldReps: number
  /** Samples of the repeated-stat loop per side. */
  hotReps: number
  /** Bytes of the sequential read. */
  catBytes: number
  /** Measured sequential reads per side (each of a file never read before). */
  catReps: number
}

const FULL: Sizes = { hotStats: 20_000, entries: 10_000, lsReps: 7, coldReps: 5, hotReps: 7, catBytes: 256 * 2 ** 20, catReps: 7 }
const QUICK: Sizes = { hotStats: 2_000, entries: 1_000, lsReps: 2, coldReps: 1, hotReps: 2, catBytes: 16 * 2 ** 20, catReps: 1 }

const BARE = 'bare fuse-napi'
const NATIVE = 'native disk'
const PHASES = ['stat', 'cold', 'ls', 'read'] as const

/** The phases to run: all, or those named in `FUSE_BENCH_ONLY` (comma-separated, e.g. `read,ls`) when profiling one. */
function selectedPhases(): Set<string> {
  const only = process.env.FUSE_BENCH_ONLY?.split(',').map(p => p.trim()).filter(Boolean)
  if (!only?.length) return new Set(PHASES)
  const unknown = only.filter(p => !(PHASES as readonly string[]).includes(p))
  if (unknown.length) throw new Error(`FUSE_BENCH_ONLY: unknown phase ${unknown.join(', ')} (phases: ${PHASES.join(', ')})`)
  return new Set(only)
}

const recordName = (i: number): string => `user-${String(i).padStart(5, '0')}.json`
const recordText = (i: number): string =>
  JSON.stringify({ id: i, name: `user ${i}`, email: `user${i}@example.org`, groups: ['staff', i % 2 ? 'odd' : 'even'] }, null, 2) + '\n'

/** A folder of `n` rendered record files, as a view builds it (fresh nodes each call). */
function viewFolder(n: number): VNode {
  const children: Record<string, VNode> = {}
  for (let i = 0; i < n; i++) children[recordName(i)] = file(() => recordText(i))
  return dir(children)
}

/** The same folder for the bare handler: the same names and bytes, rendered once. */
function bareFolder(n: number): BareTree {
  const children: BareTree = {}
  for (let i = 0; i < n; i++) children[recordName(i)] = Buffer.from(recordText(i))
  return children
}

function nativeFolder(path: string, n: number): void {
  mkdirSync(path, { recursive: true })
  for (let i = 0; i < n; i++) writeFileSync(join(path, recordName(i)), recordText(i))
}

/** Which way a target is met: ours may be at most `limit` times worse than the floor. */
function targetNote(ours: number, floor: number, higherIsBetter: boolean, limit: number, text: string): string {
  const slowdown = higherIsBetter ? floor / ours : ours / floor
  return `target ${text}: ${slowdown <= limit ? 'met' : 'MISSED'}`
}

/**
 * FUSE figures: `stat` rate of a view file, `ls -l` of a 10,000-entry view folder and a
 * sequential 256 MiB read of a memory file, each against a bare fuse-napi handler
 * serving the same from memory (mounted with the adapter's own options), the same bare
 * handler on fuse-native (libfuse 2, the binding FacetFS ran on before) and the native
 * disk. All load comes from child processes; this process only serves.
 */
export default async function fuseBench(b: BenchContext): Promise<void> {
  const available = await fuseAvailability()
  if (!available.ok) {
    b.log(`skipped: ${available.reason}`)
    return
  }
  const s = b.quick ? QUICK : FULL
  const phases = selectedPhases()
  const lsDirs = Array.from({ length: s.lsReps + 1 }, (_, r) => `ls-${r}`)
  const coldDirs = Array.from({ length: s.coldReps + 1 }, (_, r) => `cold-${r}`)
  const bigNames = Array.from({ length: s.catReps }, (_, r) => `big-${r}.bin`)
  b.log(`sizes: ${s.entries} entries per folder, ${s.hotStats} stats per sample, ${s.catBytes / 2 ** 20} MiB read`)

  const viewChildren: Record<string, VNode> = { 'record.json': file(() => recordText(42)) }
  const bareViewTree: BareTree = { 'record.json': Buffer.from(recordText(42)) }
  for (const name of [...lsDirs, ...coldDirs]) {
    viewChildren[name] = viewFolder(s.entries)
    bareViewTree[name] = bareFolder(s.entries)
  }
  const big = Buffer.alloc(s.catBytes)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i >>> 12, i)

  const vfs = createVfs({ mounts: { '/view': { name: 'bench-view', root: dir(viewChildren) }, '/mem': memoryMount() } })
  b.defer(() => vfs.close())

  const oursDir = b.tmpdir('ours')
  const ours = await mountFuse(vfs, oursDir)
  b.defer(() => ours.unmount())
  b.log(`adapter mount options (both bare floors mounted with the same meaning): ${JSON.stringify(fuseMountOptions())}`)

  const bareTree: BareTree = { view: bareViewTree, mem: {} }
  for (const name of bigNames) (bareTree.mem as BareTree)[name] = big
  const bareDir = b.tmpdir('bare')
  const bare = await mountBareFuse(bareDir, bareTree)
  b.defer(() => bare.unmount())
  // the old floor: a fourth side when fuse-native (libfuse 2) loads here, else rows say why not
  const oldFloor = fuseNativeAvailability()
  const oldDir = b.tmpdir('bare-fuse-native')
  let old: BareMount | undefined
  if (oldFloor.ok) {
    old = await mountBareFuseNative(oldDir, bareTree)
    b.defer(() => old!.unmount())
  } else b.log(oldFloor.reason)
  const sides = old ? 4 : 3

  const nativeDir = b.tmpdir('native')
  writeFileSync(join(nativeDir, 'record.json'), recordText(42))
  nativeFolder(join(nativeDir, 'ls'), s.entries)
  writeFileSync(join(nativeDir, 'big.bin'), big)

  const oursView = join(oursDir, 'view')
  const bareView = join(bareDir, 'view')
  const oldView = join(oldDir, 'view')

  // stat rate, repeated: one view file statted over and over (the kernel's attribute cache as the adapter configured it)
  if (phases.has('stat')) {
    const paths = [join(oursView, 'record.json'), join(bareView, 'record.json'), join(nativeDir, 'record.json'), join(oldView, 'record.json')] as const
    const rates = await interleave(sides, s.hotReps, 0, async (side): Promise<number> => {
      const { ms } = await nodeChild<{ ms: number }>(HOT_STAT, [paths[side]!, String(s.hotStats)])
      return s.hotStats / (ms / 1000)
    })
    report(b, 'stat rate, 1 view file, repeated', 'stats/s', true, rates, 1.5, 'within 1.5x of floor', '')
  }

  // stat rate, cold: every stat is a first lookup, so each one reaches the handler's getattr
  if (phases.has('cold')) {
    const rates = await interleave(sides, s.coldReps, 1, async (side, rep): Promise<number> => {
      const folder = [join(oursView, coldDirs[rep]!), join(bareView, coldDirs[rep]!), join(nativeDir, 'ls'), join(oldView, coldDirs[rep]!)][side]!
      const { ms } = await nodeChild<{ ms: number }>(COLD_STAT, [folder, String(s.entries)])
      return s.entries / (ms / 1000)
    })
    report(b, `stat rate, ${s.entries} view files, cold (first stat)`, 'stats/s', true, rates, 1.5, 'within 1.5x of floor', 'native: dentries already cached')
  }

  // ls -l of a fresh (never listed) view folder each repetition
  if (phases.has('ls')) {
    const times = await interleave(sides, s.lsReps, 1, (side, rep) => {
      const folder = [join(oursView, lsDirs[rep]!), join(bareView, lsDirs[rep]!), join(nativeDir, 'ls'), join(oldView, lsDirs[rep]!)][side]!
      return timeCommand('ls', ['-l', folder])
    })
    report(b, `ls -l, ${s.entries}-entry view folder (cold)`, 'ms', false, times, 1.5, 'within 1.5x of floor', 'native: dentries already cached')
  }

  // sequential read of a memory-mount file through FUSE: a new file each repetition so the page cache is cold
  if (phases.has('read')) {
    let written: string | undefined
    const rates = await interleave(
      sides,
      s.catReps,
      0,
      (side, rep) => {
        if (side === NATIVE_SIDE) return ddRead(join(nativeDir, 'big.bin'), s.catBytes)
        if (side === BARE_SIDE) return ddRead(join(bareDir, 'mem', bigNames[rep]!), s.catBytes)
        if (side === OLD_SIDE) return ddRead(join(oldDir, 'mem', bigNames[rep]!), s.catBytes)
        return ddRead(join(oursDir, 'mem', bigNames[rep]!), s.catBytes)
      },
      async (side, rep) => {
        if (written !== undefined) await vfs.unlink(written)
        written = undefined
        if (side !== OURS_SIDE) return
        written = `/mem/${bigNames[rep]!}`
        await vfs.writeFile(written, big)
      },
    )
    report(b, `sequential read, ${s.catBytes / 2 ** 20} MiB memory file (dd)`, 'MB/s', true, rates, 1 / 0.7, '>= 70% of floor', 'native: file in page cache')
  }
}

const OURS_SIDE = 0
const BARE_SIDE = 1
const NATIVE_SIDE = 2
const OLD_SIDE = 3

/**
 * Prints the rows of a figure from per-side samples: against the floor (with the target),
 * against the old fuse-native floor (when it ran), against the native disk, and the
 * serving process's CPU time against the floor's.
 */
function report(b: BenchContext, figure: string, unit: string, higherIsBetter: boolean, samples: Samples, limit: number, target: string, nativeNote: string): void {
  const [ours, floor, native] = samples.values.map(median) as [number, number, number]
  const best = (xs: number[]): number => (higherIsBetter ? Math.max(...xs) : Math.min(...xs))
  const spread = (xs: number[]): string => `${formatValue(Math.min(...xs))}–${formatValue(Math.max(...xs))}`
  const oursAll = samples.values[OURS_SIDE]!
  const floorAll = samples.values[BARE_SIDE]!
  const bestRatio = best(oursAll) / best(floorAll)
  const note =
    `${targetNote(ours, floor, higherIsBetter, limit, target)}; median of ${oursAll.length} ` +
    `(ours ${spread(oursAll)}, floor ${spread(floorAll)}; best vs best ${bestRatio.toFixed(2)}x)`
  b.row({ figure, value: ours, unit, baseline: BARE, baselineValue: floor, higherIsBetter, note })
  const oldAll = samples.values[OLD_SIDE]
  if (oldAll?.length) {
    const old = median(oldAll)
    b.row({ figure, value: ours, unit, baseline: BARE_FUSE_NATIVE, baselineValue: old, higherIsBetter, note: `the old floor, same options; fuse-napi floor/old floor ${(floor / old).toFixed(2)}x (old ${spread(oldAll)})` })
  }
  b.row({ figure, value: ours, unit, baseline: NATIVE, baselineValue: native, higherIsBetter, ...(nativeNote ? { note: nativeNote } : {}) })
  const [oursCpu, floorCpu] = samples.cpuMs.map(xs => (xs.length ? median(xs) : NaN)) as [number, number]
  b.row({
    figure: `  serving CPU per run of the above`,
    value: oursCpu,
    unit: 'ms',
    baseline: BARE,
    baselineValue: floorCpu,
    higherIsBetter: false,
    note: 'median CPU time (user+sys, all threads) of the serving process per run; less swayed by other load than wall time',
  })
}
