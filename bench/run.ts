import { readdirSync, readFileSync } from 'node:fs'
import { cpus, freemem, loadavg, release, totalmem } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  Cleanup,
  formatLiveHeader,
  formatLiveRow,
  formatTable,
  msSince,
  type Bench,
  type BenchContext,
  type BenchRow,
  type RecordedRow,
} from './lib.ts'

const benchDir = dirname(fileURLToPath(import.meta.url))
const filter = process.argv[2]
const quick = process.env.BENCH_QUICK === '1'

const rows: RecordedRow[] = []
const failures: Array<{ bench: string; error: unknown }> = []
let current: Cleanup | undefined
let interrupted = false

function out(text: string): void {
  process.stdout.write(text + '\n')
}

function header(files: string[]): void {
  const cpu = cpus()
  const pkg = (name: string): string => {
    try {
      return (JSON.parse(readFileSync(join(benchDir, '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
    } catch {
      return 'missing'
    }
  }
  out(`# facetfs bench · ${new Date().toISOString()}`)
  out(
    `machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown cpu'}), ` +
      `${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM (${(freemem() / 2 ** 30).toFixed(1)} free), ` +
      `linux ${release()}, node ${process.version}, fuse-napi ${pkg('fuse-napi')}, fuse-native ${pkg('fuse-native')} (old floor)`,
  )
  out(`load average at start: ${load()} (other work on the machine makes figures noisy; baselines run interleaved with ours)`)
  out(`mode: ${quick ? 'QUICK (BENCH_QUICK=1, small sizes: figures are a smoke test, not results)' : 'full'}; benches: ${files.map(f => basename(f, '.bench.ts')).join(', ')}`)
  out('ratio = ours / baseline; verdict says how far from the baseline we are in the direction that matters')
  out('')
  out(formatLiveHeader())
}

function load(): string {
  return loadavg()
    .map(l => l.toFixed(2))
    .join(' ')
}

function contextFor(name: string, cleanup: Cleanup): BenchContext {
  return {
    name,
    quick,
    row(row: BenchRow): void {
      for (const key of ['value', 'baselineValue'] as const) {
        if (typeof row[key] !== 'number' || Number.isNaN(row[key])) throw new Error(`row "${row.figure}": ${key} is not a number`)
      }
      const recorded = { ...row, bench: name }
      rows.push(recorded)
      out(formatLiveRow(recorded))
    },
    tmpdir: prefix => cleanup.tmpdir(prefix),
    defer: fn => cleanup.defer(fn),
    log: message => out(`  · ${name}: ${message}`),
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error)
}

async function runBench(file: string): Promise<void> {
  const name = basename(file, '.bench.ts')
  const cleanup = new Cleanup()
  current = cleanup
  const start = process.hrtime.bigint()
  try {
    const mod = (await import(pathToFileURL(file).href)) as { default?: unknown }
    if (typeof mod.default !== 'function') throw new Error(`${basename(file)} has no default-exported bench function`)
    await (mod.default as Bench)(contextFor(name, cleanup))
  } catch (error) {
    if (interrupted) return
    failures.push({ bench: name, error })
    out(`  ✗ ${name} failed: ${describe(error)}`)
  } finally {
    // after Ctrl-C, interrupt() owns the cleanup and exits the process
    if (interrupted) await new Promise<never>(() => {})
    const errors = await cleanup.run()
    current = undefined
    for (const error of errors) out(`  ! ${name} cleanup: ${describe(error)}`)
    out(`  · ${name}: done in ${(msSince(start) / 1000).toFixed(1)} s`)
  }
}

async function interrupt(signal: NodeJS.Signals): Promise<void> {
  if (interrupted) {
    out(`\n${signal} again: unmounting lazily and exiting now`)
    current?.runSync()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  interrupted = true
  out(`\n${signal}: cleaning up (press Ctrl-C again to force)`)
  const errors = (await current?.run(5000)) ?? []
  for (const error of errors) out(`  ! cleanup: ${describe(error)}`)
  process.exit(signal === 'SIGINT' ? 130 : 143)
}

async function main(): Promise<void> {
  const files = readdirSync(benchDir)
    .filter(f => f.endsWith('.bench.ts') && (!filter || f.includes(filter)))
    .sort()
    .map(f => join(benchDir, f))
  if (files.length === 0) {
    out(`no bench/*.bench.ts ${filter ? `matches "${filter}"` : 'found'}`)
    process.exit(1)
  }
  process.on('SIGINT', sig => void interrupt(sig))
  process.on('SIGTERM', sig => void interrupt(sig))
  process.on('exit', () => current?.runSync())
  process.on('uncaughtException', error => {
    out(`uncaught: ${describe(error)}`)
    current?.runSync()
    process.exit(1)
  })

  const start = process.hrtime.bigint()
  header(files)
  for (const file of files) await runBench(file)

  out('')
  out('## summary')
  out('')
  out(rows.length > 0 ? formatTable(rows) : '(no figures)')
  out('')
  const ran = files.length - failures.length
  out(`load average at end: ${load()}`)
  out(`${rows.length} figures from ${ran}/${files.length} benches in ${(msSince(start) / 1000).toFixed(1)} s${quick ? ' (QUICK sizes)' : ''}`)
  for (const f of failures) out(`FAILED ${f.bench}: ${f.error instanceof Error ? f.error.message : String(f.error)}`)
  process.exitCode = failures.length > 0 ? 1 : 0
}

await main()
