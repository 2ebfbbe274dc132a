import { execFileSync, spawn, type StdioOptions } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir as osTmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/** One measured figure beside one baseline measured in the same run. */
export interface BenchRow {
  /** What was measured, e.g. `'stat rate, view file'`. */
  figure: string
  /** Our figure. */
  value: number
  /** Unit of both values, e.g. `'stats/s'`, `'ms'`, `'MB/s'`. */
  unit: string
  /** What we compare against, e.g. `'bare fuse-native'`. */
  baseline: string
  /** The baseline's figure, in the same unit. */
  baselineValue: number
  /** True when a bigger value is better (throughput), false for times. */
  higherIsBetter: boolean
  /** A short remark shown after the row (sizes, target met or missed). */
  note?: string
}

/** What a bench file's default export receives from the runner. */
export interface BenchContext {
  /** The bench's name: its file name without `.bench.ts`. */
  readonly name: string
  /** True when `BENCH_QUICK=1`: use small sizes so a smoke run takes seconds. */
  readonly quick: boolean
  /** Prints one row: figure, value, baseline, baseline value and the ratio. */
  row(row: BenchRow): void
  /** Makes a fresh temp folder under the OS temp folder; it is removed (after lazily unmounting anything left in it) when the bench ends. */
  tmpdir(prefix: string): string
  /** Registers cleanup (unmount!) run when the bench ends, also on failure or Ctrl-C; last registered runs first. */
  defer(fn: () => unknown): void
  /** Prints a progress line that is not a figure. */
  log(message: string): void
}

/** The default export of a `bench/*.bench.ts` file. */
export type Bench = (b: BenchContext) => Promise<void>

/** A row as the runner keeps it, with the bench it came from. */
export interface RecordedRow extends BenchRow {
  bench: string
}

/** How a row compares with its baseline. */
export interface Comparison {
  /** `value / baselineValue`. */
  ratio: number
  /** How many times worse than the baseline we are (≥ 1 means worse, < 1 better), whichever direction is better. */
  slowdown: number
  /** E.g. `'1.25x worse'`, `'1.10x better'`, `'even'`. */
  verdict: string
}

/** Compares a row with its baseline. */
export function compare(row: BenchRow): Comparison {
  const ratio = row.value / row.baselineValue
  const slowdown = row.higherIsBetter ? row.baselineValue / row.value : row.value / row.baselineValue
  let verdict: string
  if (!Number.isFinite(slowdown)) verdict = 'n/a'
  else if (Math.abs(slowdown - 1) < 0.005) verdict = 'even'
  else if (slowdown > 1) verdict = `${slowdown.toFixed(2)}x worse`
  else verdict = `${(1 / slowdown).toFixed(2)}x better`
  return { ratio, slowdown, verdict }
}

/** Formats a figure with three significant digits, and thousands separators above 1000. */
export function formatValue(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  const abs = Math.abs(n)
  if (abs >= 1000) return Math.round(n).toLocaleString('en-US')
  if (abs >= 100) return n.toFixed(0)
  if (abs >= 10) return n.toFixed(1)
  if (abs >= 1) return n.toFixed(2)
  return n.toPrecision(3)
}

const COLUMNS = ['bench', 'figure', 'ours', 'baseline', 'baseline value', 'ours/base', 'verdict', 'note'] as const
const WIDTHS = [5, 52, 16, 16, 16, 9, 12, 0]

function cells(row: RecordedRow): string[] {
  const c = compare(row)
  return [
    row.bench,
    row.figure,
    `${formatValue(row.value)} ${row.unit}`,
    row.baseline,
    `${formatValue(row.baselineValue)} ${row.unit}`,
    Number.isFinite(c.ratio) ? `${c.ratio.toFixed(2)}x` : 'n/a',
    c.verdict,
    row.note ?? '',
  ]
}

function line(values: readonly string[], widths: number[]): string {
  return ('| ' + values.map((v, i) => v.padEnd(widths[i] ?? 0)).join(' | ') + ' |').replace(/ +\|$/, ' |')
}

/** Renders rows as an aligned Markdown table (readable in a terminal and pasteable in a note). */
export function formatTable(rows: RecordedRow[]): string {
  const body = rows.map(cells)
  const widths = COLUMNS.map((h, i) => Math.max(h.length, ...body.map(r => r[i]!.length)))
  const out = [line(COLUMNS, widths), line(widths.map(w => '-'.repeat(w)), widths)]
  for (const r of body) out.push(line(r, widths))
  return out.join('\n')
}

/** Renders one row for live output, padded to fixed widths so consecutive rows line up. */
export function formatLiveRow(row: RecordedRow): string {
  return line(cells(row), WIDTHS)
}

/** Renders the live header matching {@link formatLiveRow}. */
export function formatLiveHeader(): string {
  return line(COLUMNS, WIDTHS) + '\n' + line(WIDTHS.map(w => '-'.repeat(Math.max(w, 3))), WIDTHS)
}

/** Mount points currently listed in `/proc/mounts` at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  let table: string
  try {
    table = readFileSync('/proc/mounts', 'utf8')
  } catch {
    return []
  }
  const root = resolve(dir)
  const found: string[] = []
  for (const entry of table.split('\n')) {
    const field = entry.split(' ')[1]
    if (!field) continue
    const mp = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    if (mp === root || mp.startsWith(root + '/')) found.push(mp)
  }
  return found.sort((a, b) => b.length - a.length)
}

/**
 * Lazily unmounts (`fusermount -uz`, else `umount -l`) every mount at or below `dir`.
 * Synchronous so it can run from an `exit` handler; returns the mount points it could not unmount.
 */
export function lazyUnmountUnder(dir: string): string[] {
  for (const mp of mountsUnder(dir)) {
    try {
      execFileSync('fusermount', ['-uz', mp], { stdio: 'ignore', timeout: 10_000 })
    } catch {
      try {
        execFileSync('umount', ['-l', mp], { stdio: 'ignore', timeout: 10_000 })
      } catch {
        // reported below as still mounted
      }
    }
  }
  return mountsUnder(dir)
}

/** The cleanup state of one bench: deferred functions and temp folders. */
export class Cleanup {
  private readonly deferred: Array<() => unknown> = []
  private readonly dirs: string[] = []

  /** Registers `fn`; last registered runs first. */
  defer(fn: () => unknown): void {
    this.deferred.push(fn)
  }

  /** Makes a temp folder that {@link run} removes. */
  tmpdir(prefix: string): string {
    const safe = prefix.replace(/[^A-Za-z0-9._-]/g, '-')
    const dir = mkdtempSync(join(osTmpdir(), `facet-bench-${safe}-`))
    this.dirs.push(dir)
    return dir
  }

  /**
   * Runs the deferred functions (each at most `timeoutMs`), then lazily unmounts
   * whatever is still mounted in the temp folders and removes them. A folder that
   * still holds a mount is left in place, never recursed into. Returns the errors met.
   */
  async run(timeoutMs = 30_000): Promise<unknown[]> {
    const errors: unknown[] = []
    while (this.deferred.length > 0) {
      const fn = this.deferred.pop()!
      try {
        await withTimeout(Promise.resolve().then(fn), timeoutMs, 'a deferred cleanup')
      } catch (err) {
        errors.push(err)
      }
    }
    this.runSync(errors)
    return errors
  }

  /** The synchronous part of {@link run}: unmount and remove the temp folders (for `exit` handlers). */
  runSync(errors: unknown[] = []): unknown[] {
    while (this.dirs.length > 0) {
      const dir = this.dirs.pop()!
      const stuck = lazyUnmountUnder(dir)
      if (stuck.length > 0) {
        errors.push(new Error(`left ${dir} in place: still mounted at ${stuck.join(', ')}`))
        continue
      }
      try {
        rmSync(dir, { recursive: true, force: true })
      } catch (err) {
        errors.push(err)
      }
    }
    return errors
  }
}

/**
 * A `nodeChild` script timing `count` whole-file reads of `path` (its two arguments)
 * after 50 unmeasured ones; prints `{ ms }`.
 */
export const CAT_LOOP = `
import { readFileSync } from 'node:fs'
const [path, count] = [process.argv[1], Number(process.argv[2])]
for (let i = 0; i < 50; i++) readFileSync(path)
const t0 = process.hrtime.bigint()
for (let i = 0; i < count; i++) readFileSync(path)
console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - t0) / 1e6 }))
`

/** Rejects when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Milliseconds elapsed since `start` (from `process.hrtime.bigint()`). */
export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6
}

/** The median of `values`. */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of nothing')
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Options for {@link exec}. */
export interface ExecOptions {
  /** Working folder of the child. */
  cwd?: string
  /** Kills the child and rejects after this long. @default 120000 */
  timeoutMs?: number
  /** Where the child's stdout goes: collected, or thrown away (`'ignore'`, like `> /dev/null`). @default 'collect' */
  stdout?: 'collect' | 'ignore'
  /** Extra environment for the child. */
  env?: Record<string, string>
}

/** What {@link exec} returns. */
export interface ExecResult {
  stdout: string
  stderr: string
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number
}

/**
 * Runs a command as a child process (never a shell) and resolves when it exits with 0;
 * rejects with its stderr otherwise. Use it to drive load against a FUSE mount served by
 * this process: the JS thread stays free to answer the kernel.
 */
export function exec(cmd: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
  const { timeoutMs = 120_000, stdout = 'collect' } = options
  return new Promise((resolvePromise, reject) => {
    const stdio: StdioOptions = ['ignore', stdout === 'ignore' ? 'ignore' : 'pipe', 'pipe']
    const start = process.hrtime.bigint()
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      stdio,
      env: options.env ? { ...process.env, ...options.env } : process.env,
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout?.on('data', (d: Buffer) => out.push(d))
    child.stderr?.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', e => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const ms = msSince(start)
      const result = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms }
      if (code === 0) resolvePromise(result)
      else {
        const why = signal ? `killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${timeoutMs} ms?)` : ''}` : `exit code ${code}`
        reject(new Error(`${cmd} ${args.join(' ')}: ${why}\n${result.stderr.trim()}`))
      }
    })
  })
}

/**
 * Runs `script` in a fresh `node` child (ES module syntax, `process.argv[1..]` = `args`)
 * and parses the last line of its stdout as JSON. Time inside the child with
 * `process.hrtime.bigint()` so process start-up is not counted.
 */
export async function nodeChild<T = unknown>(script: string, args: string[] = [], options: ExecOptions = {}): Promise<T> {
  const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', script, '--', ...args], options)
  const last = stdout.trim().split('\n').pop() ?? ''
  try {
    return JSON.parse(last) as T
  } catch {
    throw new Error(`node child printed no JSON result: ${stdout.slice(-500)}`)
  }
}

/**
 * Runs `cmd args…` with its stdout thrown away and returns its wall time in milliseconds
 * as measured by a small `bash` child (`time` builtin, 1 ms resolution). Unlike timing
 * {@link exec} from here, this leaves out the cost of forking this (possibly large) process.
 */
export async function timeCommand(cmd: string, args: string[], options: Omit<ExecOptions, 'stdout'> = {}): Promise<number> {
  const script = 'TIMEFORMAT=%3R; time "$@" > /dev/null'
  const { stderr } = await exec('bash', ['-c', script, 'bash', cmd, ...args], { ...options, env: { LC_ALL: 'C', ...options.env } })
  const seconds = Number(stderr.trim().split('\n').pop())
  if (!Number.isFinite(seconds)) throw new Error(`could not read the time of ${cmd} from: ${stderr.slice(-300)}`)
  return seconds * 1000
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise(r => setTimeout(r, ms))
}

/** Per-side samples of a figure, and the CPU time this (serving) process spent during each, in milliseconds. */
export interface Samples {
  values: number[][]
  cpuMs: number[][]
}

/**
 * Runs `measure` for each of `sides` sides, `reps + warmup` times, rotating which side
 * goes first each repetition so drift in machine load spreads evenly; drops the first
 * `warmup` repetitions. `prepare` runs before each measurement, outside the timing and
 * CPU window. Also records this process's CPU time during each measurement: the cost of
 * serving it, which other load on the machine barely changes (unlike wall time).
 */
export async function interleave(
  sides: number,
  reps: number,
  warmup: number,
  measure: (side: number, rep: number) => Promise<number>,
  prepare?: (side: number, rep: number) => Promise<void>,
): Promise<Samples> {
  const samples: Samples = { values: Array.from({ length: sides }, () => []), cpuMs: Array.from({ length: sides }, () => []) }
  for (let rep = 0; rep < reps + warmup; rep++) {
    for (let k = 0; k < sides; k++) {
      const side = (rep + k) % sides
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

/** Reads `path` to its end with `dd bs=1M`, checks it read `bytes` bytes, and returns dd's own rate in MB/s. */
export async function ddRead(path: string, bytes: number): Promise<number> {
  const { stderr } = await exec('dd', [`if=${path}`, 'of=/dev/null', 'bs=1M'], { env: { LC_ALL: 'C' }, timeoutMs: 300_000 })
  const m = /^(\d+) bytes .* copied, ([\d.e+-]+) s/m.exec(stderr)
  if (!m || Number(m[1]) !== bytes) throw new Error(`dd of ${path} read ${m?.[1]} bytes, expected ${bytes}: ${stderr}`)
  return bytes / 1e6 / Number(m[2])
}

/** A `nodeChild` script: stats one path `count` times (after 200 unmeasured) and prints `{ ms }`. */
export const HOT_STAT = `
import { statSync } from 'node:fs'
const [path, count] = [process.argv[1], Number(process.argv[2])]
for (let i = 0; i < 200; i++) statSync(path)
const t0 = process.hrtime.bigint()
for (let i = 0; i < count; i++) statSync(path)
console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - t0) / 1e6 }))
`

/** A `nodeChild` script: stats `user-00000.json` … of a folder once each (`count` first lookups) and prints `{ ms }`. */
export const COLD_STAT = `
import { statSync } from 'node:fs'
const [folder, count] = [process.argv[1], Number(process.argv[2])]
const paths = Array.from({ length: count }, (_, i) => folder + '/user-' + String(i).padStart(5, '0') + '.json')
const t0 = process.hrtime.bigint()
for (const p of paths) statSync(p)
console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - t0) / 1e6 }))
`

/** A `nodeChild` script: makes a folder and writes `count` small files into it (open, write, close each), timed inside the child; prints `{ ms }`. */
export const SMALL_FILES = `
import { writeFileSync, mkdirSync } from 'node:fs'
const [dir, count] = process.argv.slice(1)
mkdirSync(dir, { recursive: true })
const t = process.hrtime.bigint()
for (let i = 0; i < Number(count); i++) writeFileSync(dir + '/f' + i + '.txt', 'small file number ' + i + '\\n')
console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - t) / 1e6 }))
`
