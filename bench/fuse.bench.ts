import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mountFuse, fuseAvailability } from '../src/fuse/index.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import { memoryMount } from '../src/vfs/memory.ts'
import type { VNode } from '../src/vfs/node.ts'
import { dir, file } from '../src/views/view.ts'
import { captureMountOptions, mountBareFuse, type BareTree } from './baselines/bare-fuse.ts'
import { exec, formatValue, median, nodeChild, timeCommand, type BenchContext } from './lib.ts'

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

const BARE = 'bare fuse-native'
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

/** Runs in a child: stats one path `count` times (after a short warm-up) and prints `{ ms }`. */
const HOT_STAT = `
import { statSync } from 'node:fs'
const [path, count] = [process.argv[1], Number(process.argv[2])]
for (let i = 0; i < 200; i++) statSync(path)
const t0 = process.hrtime.bigint()
for (let i = 0; i < count; i++) statSync(path)
console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - t0) / 1e6 }))
`

/** Runs in a child: stats each of `count` files of a folder once (each a first lookup) and prints `{ ms }`. */
const COLD_STAT = `
import { statSync } from 'node:fs'
const [folder, count] = [process.argv[1], Number(process.argv[2])]
const paths = Array.from({ length: count }, (_, i) => folder + '/user-' + String(i).padStart(5, '0') + '.json')
const t0 = process.hrtime.bigint()
for (const p of paths) statSync(p)
console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - t0) / 1e6 }))
`

/** Which way a target is met: ours may be at most `limit` times worse than the floor. */
function targetNote(ours: number, floor: number, higherIsBetter: boolean, limit: number, text: string): string {
  const slowdown = higherIsBetter ? floor / ours : ours / floor
  return `target ${text}: ${slowdown <= limit ? 'met' : 'MISSED'}`
}

/**
 * FUSE figures: `stat` rate of a view file, `ls -l` of a 10,000-entry view folder and a
 * sequential 256 MiB read of a memory file, each against a bare fuse-native handler
 * serving the same from memory (mounted with the adapter's own options) and against the
 * native disk. All load comes from child processes; this process only serves.
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
  const MB = s.catBytes / 1e6
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
  const { result: ours, mounts } = await captureMountOptions(() => mountFuse(vfs, oursDir))
  b.defer(() => ours.unmount())
  const seen = mounts.find(m => m.mountpoint === oursDir) ?? mounts[0]
  const bareOpts = seen ? { ...seen.opts } : {}
  b.log(seen ? `adapter mount options (bare mounted with the same): ${seen.optionString || '(none)'}` : 'could not observe the adapter mount options: bare uses fuse-native defaults')

  const bareDir = b.tmpdir('bare')
  const bareMem: BareTree = {}
  for (const name of bigNames) bareMem[name] = big
  const bare = await mountBareFuse(bareDir, { view: bareViewTree, mem: bareMem }, bareOpts)
  b.defer(() => bare.unmount())

  const nativeDir = b.tmpdir('native')
  writeFileSync(join(nativeDir, 'record.json'), recordText(42))
  nativeFolder(join(nativeDir, 'ls'), s.entries)
  writeFileSync(join(nativeDir, 'big.bin'), big)

  const oursView = join(oursDir, 'view')
  const bareView = join(bareDir, 'view')

  // stat rate, repeated: one view file statted over and over (the kernel's attribute cache as the adapter configured it)
  if (phases.has('stat')) {
    const paths = [join(oursView, 'record.json'), join(bareView, 'record.json'), join(nativeDir, 'record.json')] as const
    const rates = await interleave(s.hotReps, 0, async (side): Promise<number> => {
      const { ms } = await nodeChild<{ ms: number }>(HOT_STAT, [paths[side]!, String(s.hotStats)])
      return s.hotStats / (ms / 1000)
    })
    report(b, 'stat rate, 1 view file, repeated', 'stats/s', true, rates, 1.5, 'within 1.5x of floor', '')
  }

  // stat rate, cold: every stat is a first lookup, so each one reaches the handler's getattr
  if (phases.has('cold')) {
    const rates = await interleave(s.coldReps, 1, async (side, rep): Promise<number> => {
      const folder = [join(oursView, coldDirs[rep]!), join(bareView, coldDirs[rep]!), join(nativeDir, 'ls')][side]!
      const { ms } = await nodeChild<{ ms: number }>(COLD_STAT, [folder, String(s.entries)])
      return s.entries / (ms / 1000)
    })
    report(b, `stat rate, ${s.entries} view files, cold (first stat)`, 'stats/s', true, rates, 1.5, 'within 1.5x of floor', 'native: dentries already cached')
  }

  // ls -l of a fresh (never listed) view folder each repetition
  if (phases.has('ls')) {
    const times = await interleave(s.lsReps, 1, (side, rep) => {
      const folder = [join(oursView, lsDirs[rep]!), join(bareView, lsDirs[rep]!), join(nativeDir, 'ls')][side]!
      return timeCommand('ls', ['-l', folder])
    })
    report(b, `ls -l, ${s.entries}-entry view folder (cold)`, 'ms', false, times, 1.5, 'within 1.5x of floor', 'native: dentries already cached')
  }

  // sequential read of a memory-mount file through FUSE: a new file each repetition so the page cache is cold
  if (phases.has('read')) {
    const ddRead = async (path: string): Promise<number> => {
      const { stderr } = await exec('dd', [`if=${path}`, 'of=/dev/null', 'bs=1M'], { env: { LC_ALL: 'C' }, timeoutMs: 300_000 })
      const m = /^(\d+) bytes .* copied, ([\d.e+-]+) s/m.exec(stderr)
      if (!m || Number(m[1]) !== s.catBytes) throw new Error(`dd of ${path} read ${m?.[1]} bytes, expected ${s.catBytes}: ${stderr}`)
      return MB / Number(m[2])
    }
    let written: string | undefined
    const rates = await interleave(
      s.catReps,
      0,
      (side, rep) => {
        if (side === NATIVE_SIDE) return ddRead(join(nativeDir, 'big.bin'))
        if (side === BARE_SIDE) return ddRead(join(bareDir, 'mem', bigNames[rep]!))
        return ddRead(join(oursDir, 'mem', bigNames[rep]!))
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

/** Per-side samples of a figure, and the CPU time this (serving) process spent during each, in milliseconds. */
interface Samples {
  values: number[][]
  cpuMs: number[][]
}

/**
 * Runs `measure` for ours, the bare floor and the native disk, `reps + warmup` times,
 * rotating which side goes first each repetition so drift in machine load spreads
 * evenly; drops the first `warmup` repetitions. `prepare` runs before each measurement,
 * outside the timing and CPU window. Also records this process's CPU time
 * during each measurement: the cost of serving it, which other load on the machine
 * barely changes (unlike wall time).
 */
async function interleave(
  reps: number,
  warmup: number,
  measure: (side: number, rep: number) => Promise<number>,
  prepare?: (side: number, rep: number) => Promise<void>,
): Promise<Samples> {
  const samples: Samples = { values: [[], [], []], cpuMs: [[], [], []] }
  for (let rep = 0; rep < reps + warmup; rep++) {
    for (let k = 0; k < 3; k++) {
      const side = (rep + k) % 3
      await prepare?.(side, rep)
      const cpu = process.cpuUsage()
      const value = await measure(side, rep)
      const used = process.cpuUsage(cpu)
      if (rep < warmup) continue
      samples.values[side]!.push(value)
      samples.cpuMs[side]!.push((used.user + used.system) / 1000)
    }
  }
  return samples
}

/**
 * Prints the rows of a figure from per-side samples: against the floor (with the target),
 * against the native disk, and the serving process's CPU time against the floor's.
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
