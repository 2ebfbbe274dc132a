import { join } from 'node:path'
import { fuseAvailability } from '../src/fuse/index.ts'
import { fuseMountOptions } from '../src/fuse/options.ts'
import { FUSE_CAP, mountBareFuse, type BareFuseOptions, type BareMount, type BareTree } from './baselines/bare-fuse.ts'
import { BARE_FUSE_NATIVE, fuseNativeAvailability, fuseNativeOptionList, mountBareFuseNative } from './baselines/bare-fuse-native.ts'
import { CAT_LOOP, COLD_STAT, ddRead, formatValue, HOT_STAT, interleave, median, nodeChild, SMALL_FILES, timeCommand, type BenchContext, type Samples } from './lib.ts'

/** Sizes of one run. */
interface Sizes {
  /** Names per listed (and per cold-statted) folder. */
  entries: number
  /** Measured repetitions of each figure per side (plus one warm-up where a figure has one). */
  reps: number
  /** `stat` calls of one file per sample. */
  hotStats: number
  /** Bytes of the sequential read. */
  readBytes: number
  /** Small files written per create sample. */
  creates: number
  /** Whole-file reads of one small file per cat sample. */
  cats: number
}

const FULL: Sizes = { entries: 10_000, reps: 5, hotStats: 20_000, readBytes: 256 * 2 ** 20, creates: 10_000, cats: 3_000 }
const TUNE: Sizes = { ...FULL, reps: 3 }
const QUICK: Sizes = { entries: 1_000, reps: 1, hotStats: 2_000, readBytes: 16 * 2 ** 20, creates: 500, cats: 300 }

const FIGURES = ['read', 'reread', 'write', 'ls', 'cold', 'stat', 'cat', 'create'] as const
type Figure = (typeof FIGURES)[number]

/** A fuse-napi variant of the floor tried by `FLOOR_TUNE`, measured on the figures it can change. */
interface Variant {
  group: string
  name: string
  options: BareFuseOptions
  figures: readonly Figure[]
}

const NAPI_DEFAULT = 'bare fuse-napi, adapter options'

function variants(): Variant[] {
  const base = fuseMountOptions()
  const all = FIGURES
  return [
    ...[1, 2, 4, 16].map(w => ({ group: 'workers', name: `workers ${w}`, options: { fuseOptions: { ...base, maxConcurrency: w } }, figures: all })),
    { group: 'timeout', name: 'call timer off', options: { fuseOptions: { ...base, timeout: false } }, figures: all },
    { group: 'readBuffer', name: 'readBuffer', options: { readBuffer: true }, figures: ['read', 'reread', 'cat'] },
    { group: 'maxRead', name: 'maxRead 1 MiB', options: { fuseOptions: { ...base, maxRead: 1 << 20 } }, figures: ['read', 'cat'] },
    { group: 'keepCache', name: 'keepCache on open', options: { keepCache: true }, figures: ['read', 'reread', 'cat'] },
    { group: 'readdir', name: 'readdir with attributes', options: { readdirStats: true }, figures: ['ls', 'cold'] },
    { group: 'readdir', name: 'readdirplus off', options: { unwant: FUSE_CAP.READDIRPLUS | FUSE_CAP.READDIRPLUS_AUTO }, figures: ['ls', 'cold'] },
    { group: 'attr', name: 'attrTimeout 1 s', options: { fuseOptions: { ...base, attrTimeout: 1 } }, figures: ['ls', 'cold', 'stat', 'cat', 'create'] },
    { group: 'writeback', name: 'writeback cache', options: { want: FUSE_CAP.WRITEBACK_CACHE }, figures: ['write', 'create', 'cat'] },
    // what the measurements above recommend for the adapter, on every figure
    { group: 'candidate', name: 'workers 2 + readBuffer', options: { fuseOptions: { ...base, maxConcurrency: 2 }, readBuffer: true }, figures: all },
  ]
}

/** The variants `FLOOR_TUNE` asks for: none when unset, all for `1`, else the named groups (comma-separated). */
function selectedVariants(): Variant[] {
  const wanted = process.env.FLOOR_TUNE?.trim()
  if (!wanted || wanted === '0') return []
  const all = variants()
  if (wanted === '1' || wanted === 'all') return all
  const groups = wanted.split(',').map(g => g.trim())
  const unknown = groups.filter(g => !all.some(v => v.group === g))
  if (unknown.length) throw new Error(`FLOOR_TUNE: unknown group ${unknown.join(', ')} (groups: ${[...new Set(all.map(v => v.group))].join(', ')})`)
  return all.filter(v => groups.includes(v.group))
}

/** The figures to run: all, or those named in `FLOOR_ONLY` (comma-separated, e.g. `read,ls`). */
function selectedFigures(): Set<Figure> {
  const only = process.env.FLOOR_ONLY?.split(',').map(f => f.trim()).filter(Boolean)
  if (!only?.length) return new Set(FIGURES)
  const unknown = only.filter(f => !(FIGURES as readonly string[]).includes(f))
  if (unknown.length) throw new Error(`FLOOR_ONLY: unknown figure ${unknown.join(', ')} (figures: ${FIGURES.join(', ')})`)
  return new Set(only as Figure[])
}

const recordName = (i: number): string => `user-${String(i).padStart(5, '0')}.json`
const recordText = (i: number): string =>
  JSON.stringify({ id: i, name: `user ${i}`, email: `user${i}@example.org`, groups: ['staff', i % 2 ? 'odd' : 'even'] }, null, 2) + '\n'

interface Side {
  label: string
  mount: BareMount
  figures: ReadonlySet<Figure>
  /** Also compared with the old floor. */
  candidate?: boolean
}

/**
 * The two bare floors side by side: the fuse-napi (FUSE 3) handler mounted with the
 * adapter's options against the same handler on fuse-native (libfuse 2) mounted with the
 * same meaning, on a sequential 256 MiB read (and re-read) and write, `ls -l` of 10,000
 * names, cold and repeated stats, cat of one small file and 10,000 small-file creates. With `FLOOR_TUNE=1` (or a
 * list of groups: `workers,timeout,readBuffer,maxRead,keepCache,readdir,attr,writeback,candidate`) it also mounts fuse-napi
 * variants and reports each against the adapter's options: the measurements behind the
 * adapter's defaults. `FLOOR_ONLY=read,ls` runs some figures only, `FLOOR_REPS=n` sets the
 * runs per side. All load comes from child processes; this process only serves.
 */
export default async function fuseFloorsBench(b: BenchContext): Promise<void> {
  const napi = await fuseAvailability()
  if (!napi.ok) return b.log(`skipped: ${napi.reason}`)
  const tune = selectedVariants()
  const reps = Number(process.env.FLOOR_REPS) || undefined
  const s = { ...(b.quick ? QUICK : tune.length ? TUNE : FULL), ...(reps ? { reps } : {}) }
  const figures = selectedFigures()
  const MB = s.readBytes / 1e6

  const folders = (prefix: string): BareTree => {
    const out: BareTree = {}
    for (let r = 0; r <= s.reps; r++) {
      const names: BareTree = {}
      for (let i = 0; i < s.entries; i++) names[recordName(i)] = Buffer.from(recordText(i))
      out[`${prefix}-${r}`] = names
    }
    return out
  }
  const big = Buffer.alloc(s.readBytes)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i >>> 12, i)
  const mem: BareTree = {}
  for (let r = 0; r <= s.reps; r++) mem[`big-${r}.bin`] = big
  const tree: BareTree = { view: { 'record.json': Buffer.from(recordText(42)), ...folders('ls'), ...folders('cold') }, mem, w: {} }

  const sides: Side[] = []
  const mountSide = async (label: string, figures: readonly Figure[], mount: (dir: string) => Promise<BareMount>, candidate = false): Promise<BareMount> => {
    const dir = b.tmpdir(`floor-${label}`)
    const m = await mount(dir)
    b.defer(() => m.unmount())
    sides.push({ label, mount: m, figures: new Set(figures), candidate })
    return m
  }

  const napiMount = await mountSide(NAPI_DEFAULT, FIGURES, dir => mountBareFuse(dir, tree, { writable: true }))
  const c = napiMount.connection
  b.log(`fuse-napi floor: ${JSON.stringify(fuseMountOptions())}`)
  if (c) b.log(`fuse-napi init: proto 7.${c.protoMinor}, max_write ${c.maxWrite}, max_read ${c.maxRead}, max_readahead ${c.maxReadahead}, max_background ${c.maxBackground}, want 0x${c.want.toString(16)} of 0x${c.capable.toString(16)}`)
  const native = fuseNativeAvailability()
  if (native.ok) {
    await mountSide(BARE_FUSE_NATIVE, FIGURES, dir => mountBareFuseNative(dir, tree, { writable: true }))
    b.log(`fuse-native floor: -o ${fuseNativeOptionList().join(',')}`)
  } else b.log(native.reason)
  for (const v of tune) await mountSide(v.name, v.figures, dir => mountBareFuse(dir, tree, { writable: true, ...v.options }), v.group === 'candidate')
  b.log(`sizes: ${s.entries} names per folder, ${s.readBytes / 2 ** 20} MiB read, ${s.creates} creates, ${s.reps} runs per side${tune.length ? `; tuning ${tune.map(v => v.name).join(', ')}` : ''}`)

  const measures: Record<Figure, { figure: string; unit: string; higherIsBetter: boolean; warmup: number; run: (dir: string, rep: number) => Promise<number> }> = {
    read: {
      figure: `sequential read, ${s.readBytes / 2 ** 20} MiB (dd bs=1M, cold)`,
      unit: 'MB/s',
      higherIsBetter: true,
      warmup: 0,
      run: (dir, rep) => ddRead(join(dir, 'mem', `big-${rep + 1}.bin`), s.readBytes),
    },
    reread: {
      figure: `sequential re-read, ${s.readBytes / 2 ** 20} MiB (dd, read before)`,
      unit: 'MB/s',
      higherIsBetter: true,
      warmup: 1,
      run: dir => ddRead(join(dir, 'mem', 'big-0.bin'), s.readBytes),
    },
    write: {
      figure: `sequential write, ${s.readBytes / 2 ** 20} MiB (dd bs=1M, fsync)`,
      unit: 'MB/s',
      higherIsBetter: true,
      warmup: 1,
      run: async dir => {
        const ms = await timeCommand('dd', ['if=/dev/zero', `of=${join(dir, 'w', 'seq.bin')}`, 'bs=1M', `count=${s.readBytes / 2 ** 20}`, 'conv=notrunc,fsync', 'status=none'])
        return MB / (ms / 1000)
      },
    },
    ls: {
      figure: `ls -l, ${s.entries} names (cold)`,
      unit: 'ms',
      higherIsBetter: false,
      warmup: 1,
      run: (dir, rep) => timeCommand('ls', ['-l', join(dir, 'view', `ls-${rep}`)]),
    },
    cold: {
      figure: `stat rate, ${s.entries} files, cold (first stat)`,
      unit: 'stats/s',
      higherIsBetter: true,
      warmup: 1,
      run: async (dir, rep) => s.entries / ((await nodeChild<{ ms: number }>(COLD_STAT, [join(dir, 'view', `cold-${rep}`), String(s.entries)])).ms / 1000),
    },
    stat: {
      figure: 'stat rate, 1 file, repeated',
      unit: 'stats/s',
      higherIsBetter: true,
      warmup: 0,
      run: async dir => s.hotStats / ((await nodeChild<{ ms: number }>(HOT_STAT, [join(dir, 'view', 'record.json'), String(s.hotStats)])).ms / 1000),
    },
    cat: {
      figure: 'cat of one small file (open+read+close)',
      unit: 'µs',
      higherIsBetter: false,
      warmup: 0,
      run: async dir => ((await nodeChild<{ ms: number }>(CAT_LOOP, [join(dir, 'view', 'record.json'), String(s.cats)])).ms * 1000) / s.cats,
    },
    create: {
      figure: `create ${s.creates} small files (open, write, close)`,
      unit: 'files/s',
      higherIsBetter: true,
      warmup: 0,
      run: async (dir, rep) => s.creates / ((await nodeChild<{ ms: number }>(SMALL_FILES, [join(dir, 'w', `small-${rep}`), String(s.creates)], { timeoutMs: 600_000 })).ms / 1000),
    },
  }

  for (const key of FIGURES) {
    if (!figures.has(key)) continue
    const m = measures[key]
    const on = sides.filter(side => side.figures.has(key))
    const getattrs = on.map(() => 0)
    const reads = on.map(() => 0)
    const samples = await interleave(on.length, s.reps, m.warmup, async (i, rep) => {
      const { getattr, read } = on[i]!.mount.counts
      const value = await m.run(on[i]!.mount.mountpoint, rep)
      if (rep >= m.warmup) {
        getattrs[i]! += on[i]!.mount.counts.getattr - getattr
        reads[i]! += on[i]!.mount.counts.read - read
      }
      return value
    })
    const perRun = (i: number): string => `${formatValue(getattrs[i]! / s.reps)} getattr, ${formatValue(reads[i]! / s.reps)} read/run`
    b.log(`${m.figure}: ${on.map((side, i) => `${side.label} ${samples.values[i]!.map(formatValue).join('/')} (${perRun(i)}, CPU ${formatValue(median(samples.cpuMs[i]!))} ms)`).join('; ')}`)
    const nativeAt = on.findIndex(side => side.label === BARE_FUSE_NATIVE)
    if (nativeAt >= 0) row(b, m.figure, m.unit, m.higherIsBetter, samples, 0, nativeAt, BARE_FUSE_NATIVE)
    for (let i = 0; i < on.length; i++) {
      if (i === 0 || i === nativeAt) continue
      row(b, `${m.figure} · ${on[i]!.label}`, m.unit, m.higherIsBetter, samples, i, 0, NAPI_DEFAULT)
      if (on[i]!.candidate && nativeAt >= 0) row(b, `${m.figure} · ${on[i]!.label}`, m.unit, m.higherIsBetter, samples, i, nativeAt, BARE_FUSE_NATIVE)
    }
  }
}

function row(b: BenchContext, figure: string, unit: string, higherIsBetter: boolean, samples: Samples, ours: number, base: number, baseline: string): void {
  const spread = (xs: number[]): string => `${formatValue(Math.min(...xs))}–${formatValue(Math.max(...xs))}`
  const [v, bv] = [samples.values[ours]!, samples.values[base]!]
  b.row({
    figure,
    value: median(v),
    unit,
    baseline,
    baselineValue: median(bv),
    higherIsBetter,
    note: `median of ${v.length} (${spread(v)} vs ${spread(bv)}); serving CPU ${formatValue(median(samples.cpuMs[ours]!))} vs ${formatValue(median(samples.cpuMs[base]!))} ms`,
  })
}
