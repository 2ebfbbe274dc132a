import { copyFile, mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateIdentity } from '../src/crypto/identity.ts'
import { exec, type BenchContext } from './lib.ts'
import { CHAIN, ensureGocryptfs, GOCRYPTFS, mountChainSide, mountGocryptfsSide, NATIVE, nativeSide, type Side } from './mounts.ts'

/** Sizes of one run. */
interface Sizes {
  /** Files the `tar x` tree should hold about (whole copies of this project's committed tree). */
  treeFiles: number
  /** Run `npm ci` of this project. */
  npm: boolean
}
const FULL: Sizes = { treeFiles: 20_000, npm: true }
const QUICK: Sizes = { treeFiles: 2_000, npm: false }

/** What `grep -r` looks for in the tree: common in TypeScript, absent from some files, so grep reads every file. */
const PATTERN = 'await '
/** Generous: a workload on a slow mount of a loaded machine. */
const TIMEOUT_MS = 30 * 60_000

const projectDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * Runs `script` with `bash -c` (arguments `$1`…), timing it with bash's `time` builtin,
 * and resolves with its wall time and stdout; rejects when it exits with anything but 0.
 * Timing in the child leaves out the cost of forking this process. A child that works in a
 * folder on a mount served by this process must `cd` there itself: a child started with
 * its working folder on the mount deadlocks the spawn.
 */
async function timed(script: string, args: string[]): Promise<{ ms: number; stdout: string }> {
  const { stdout, stderr } = await exec('bash', ['-c', `set -o pipefail; TIMEFORMAT=%3R; time { ${script}; }`, 'bash', ...args], { timeoutMs: TIMEOUT_MS, env: { LC_ALL: 'C' } })
  const seconds = Number(stderr.trim().split('\n').pop())
  if (!Number.isFinite(seconds)) throw new Error(`could not read the time of "${script}" from: ${stderr.slice(-300)}`)
  return { ms: seconds * 1000, stdout: stdout.trim() }
}

/** Runs `script` with `bash -c` (arguments `$1`…) and returns its stdout; rejects unless it exits with 0. */
async function sh(script: string, args: string[] = []): Promise<string> {
  const { stdout } = await exec('bash', ['-c', `set -o pipefail; ${script}`, 'bash', ...args], { timeoutMs: TIMEOUT_MS, env: { LC_ALL: 'C' } })
  return stdout.trim()
}

/** Counts what is not a folder at or below `dir`, the way the bench counts files everywhere. */
const COUNT_FILES = 'find "$1" ! -type d | wc -l'
/** Counts the lines `grep -r` finds; grep's 1 (nothing found) is an answer, 2 and up a failure. */
const GREP_LINES = 'grep -r -F -e "$1" "$2" | wc -l; rc=${PIPESTATUS[0]}; [ "$rc" -le 1 ] || { echo "grep -r exited with $rc" >&2; exit "$rc"; }'

function count(text: string, what: string): number {
  const n = Number(text.trim().split('\n').pop())
  if (!Number.isInteger(n)) throw new Error(`${what}: expected a count, got ${JSON.stringify(text.slice(-200))}`)
  return n
}

/** What every side must reproduce exactly, found once on the native disk outside any timing. */
interface Reference {
  /** A bare copy of this project taken once, so every side clones the same commit. */
  repo: string
  head: string
  /** Files `git clone` checks out (what `git ls-tree -r HEAD` lists). */
  cloneFiles: number
  /** The `tar x` archive; it holds one folder, `tree`. */
  tarball: string
  tarFiles: number
  tarMiB: number
  grepLines: number
  /** Files of `node_modules` after a warm-up `npm ci --offline` (undefined without npm). */
  npmFiles?: number
  /** True when the npm cache lacked a tarball and `npm ci` had to go online. */
  npmOnline: boolean
}

const NPM_ARGS = '--ignore-scripts --no-audit --no-fund --loglevel=error'

/** Runs `npm ci --offline` in `$1` (timed); when the cache lacks a tarball, again online. */
async function npmCi(dir: string, online: boolean): Promise<{ ms: number; online: boolean }> {
  const run = (offline: boolean) => timed(`cd "$1" && npm ci ${offline ? '--offline ' : ''}${NPM_ARGS}`, [dir])
  if (online) return { ...(await run(false)), online }
  try {
    return { ...(await run(true)), online: false }
  } catch (err) {
    if (!/ENOTCACHED|offline/i.test((err as Error).message)) throw err
    await sh('rm -rf "$1/node_modules"', [dir])
    return { ...(await run(false)), online: true }
  }
}

async function prepare(b: BenchContext, s: Sizes, work: string): Promise<Reference> {
  const repo = join(work, 'facetfs.git')
  await exec('git', ['clone', '-q', '--bare', '--no-hardlinks', `file://${projectDir}`, repo], { timeoutMs: TIMEOUT_MS })
  const head = await sh('git -C "$1" rev-parse HEAD', [repo])
  const cloneFiles = count(await sh('git -C "$1" ls-tree -r HEAD | wc -l', [repo]), 'git ls-tree')

  // the tar tree: whole copies of the committed project tree, side by side
  const seed = join(work, 'seed.tar')
  await exec('git', ['-C', repo, 'archive', '-o', seed, 'HEAD'])
  const copies = Math.ceil(s.treeFiles / cloneFiles)
  const tree = join(work, 'tree')
  for (let i = 0; i < copies; i++) {
    const copy = join(tree, `copy-${String(i).padStart(3, '0')}`)
    await mkdir(copy, { recursive: true })
    await exec('tar', ['xf', seed, '-C', copy])
  }
  const tarball = join(work, 'tree.tar')
  await exec('tar', ['cf', tarball, '-C', work, 'tree'], { timeoutMs: TIMEOUT_MS })
  const tarFiles = count(await sh(COUNT_FILES, [tree]), 'find')
  const listed = count(await sh('tar tf "$1" | grep -v "/$" | wc -l', [tarball]), 'tar tf')
  if (listed !== tarFiles) throw new Error(`tree.tar lists ${listed} files, the tree it was made from holds ${tarFiles}`)
  const least = Math.floor(s.treeFiles * 0.95)
  if (tarFiles < least) throw new Error(`the tar tree holds ${tarFiles} files, fewer than ${least}`)
  const tarMiB = count(await sh('du -sm "$1" | cut -f1', [tree]), 'du')
  const grepLines = count(await sh(GREP_LINES, [PATTERN, tree]), 'grep -r')
  await exec('rm', ['-rf', tree])
  b.log(`source: ${head.slice(0, 12)}, ${cloneFiles} files; tar tree: ${copies} copies, ${tarFiles} files, ${tarMiB} MiB, ${grepLines} lines with "${PATTERN}"`)

  let npmFiles: number | undefined
  let npmOnline = false
  if (s.npm) {
    // warms the npm cache's pages and finds the file count every side must match
    const dir = join(work, 'npm')
    await installInput(dir)
    const { ms, online } = await npmCi(dir, false)
    npmOnline = online
    npmFiles = count(await sh(COUNT_FILES, [join(dir, 'node_modules')]), 'find node_modules')
    await exec('rm', ['-rf', dir], { timeoutMs: TIMEOUT_MS })
    b.log(`npm ci warm-up on the native disk: ${ms.toFixed(0)} ms, ${npmFiles} files${online ? ' (ONLINE: the npm cache lacked a tarball, --offline failed)' : ''}`)
  }
  return { repo, head, cloneFiles, tarball, tarFiles, tarMiB, grepLines, npmFiles, npmOnline }
}

async function installInput(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (const f of ['package.json', 'package-lock.json']) await copyFile(join(projectDir, f), join(dir, f))
}

function expectEqual(side: Side, what: string, got: number | string, want: number | string): void {
  if (got !== want) throw new Error(`${side.name}: ${what} is ${got}, expected ${want}`)
}

/** One workload: runs on one side, checks what it made and returns its time in milliseconds. */
interface Workload {
  figure: string
  note?: string
  run(side: Side): Promise<number>
}

function workloads(s: Sizes, ref: Reference): Workload[] {
  const tree = (side: Side) => join(side.dir, 'tree')
  const list: Workload[] = [
    {
      figure: `git clone --no-hardlinks file:// (${ref.cloneFiles} files)`,
      run: async side => {
        const dest = join(side.dir, 'clone')
        const { ms } = await timed('git clone -q --no-hardlinks "file://$1" "$2"', [ref.repo, dest])
        expectEqual(side, 'HEAD of the clone', await sh('git -C "$1" rev-parse HEAD', [dest]), ref.head)
        expectEqual(side, 'files checked out', count(await sh('find "$1" -path "$1/.git" -prune -o ! -type d -print | wc -l', [dest]), 'find'), ref.cloneFiles)
        await exec('rm', ['-rf', dest], { timeoutMs: TIMEOUT_MS })
        return ms
      },
    },
  ]
  if (s.npm) {
    list.push({
      figure: `npm ci --offline --ignore-scripts (${ref.npmFiles} files)`,
      note: ref.npmOnline ? 'ONLINE: --offline failed for a missing tarball' : 'warm npm cache',
      run: async side => {
        const dir = join(side.dir, 'npm')
        await installInput(dir)
        const { ms } = await npmCi(dir, ref.npmOnline)
        expectEqual(side, 'files in node_modules', count(await sh(COUNT_FILES, [join(dir, 'node_modules')]), 'find'), ref.npmFiles!)
        await exec('rm', ['-rf', dir], { timeoutMs: TIMEOUT_MS })
        return ms
      },
    })
  }
  list.push(
    {
      figure: `tar x of ${ref.tarFiles} files (${ref.tarMiB} MiB)`,
      run: async side => (await timed('tar xf "$1" -C "$2"', [ref.tarball, side.dir])).ms,
    },
    {
      figure: `find of ${ref.tarFiles} files`,
      note: 'right after tar x',
      run: async side => {
        const { ms, stdout } = await timed(COUNT_FILES, [tree(side)])
        expectEqual(side, 'files find lists', count(stdout, 'find'), ref.tarFiles)
        return ms
      },
    },
    {
      figure: `grep -r over ${ref.tarFiles} files`,
      note: `${ref.grepLines} lines found`,
      run: async side => {
        const { ms, stdout } = await timed(GREP_LINES, [PATTERN, tree(side)])
        expectEqual(side, `lines with "${PATTERN}"`, count(stdout, 'grep -r'), ref.grepLines)
        return ms
      },
    },
    {
      figure: `rm -rf of ${ref.tarFiles} files`,
      run: async side => {
        const { ms } = await timed('rm -rf "$1"', [tree(side)])
        // asked of a child: a synchronous stat from here would block the thread that serves the chain mount
        expectEqual(side, 'what rm -rf left', await sh('[ -e "$1" ] && echo left || echo gone', [tree(side)]), 'gone')
        return ms
      },
    },
  )
  return list
}

/**
 * Real workloads on a chain mount, a gocryptfs mount and the native disk in the same run:
 * `git clone` of this project, `npm ci --offline` of it, and `tar x`, `find`, `grep -r` and
 * `rm -rf` of a ~20,000-file source tree (2,000 and no npm with `BENCH_QUICK=1`). Each
 * workload runs on the three sides one after another, so a change in machine load hits all
 * three; every step's exit code and result is checked, and a failing step fails the bench.
 */
export default async function workloadsBench(b: BenchContext): Promise<void> {
  const s = b.quick ? QUICK : FULL
  if (!(await ensureGocryptfs(b))) throw new Error('gocryptfs is needed as the baseline: apt-get install -y gocryptfs')
  const ref = await prepare(b, s, b.tmpdir('facet-workloads-src-'))

  const id = (({ seeds: _s, ...rest }) => rest)(generateIdentity('bench'))
  const sides: Side[] = []
  try {
    sides.push(await mountChainSide(b, { identity: id, home: b.tmpdir('facet-workloads-home-') }))
    sides.push(await mountGocryptfsSide(b))
    sides.push(nativeSide(b))
    for (const w of workloads(s, ref)) {
      const ms = new Map<string, number>()
      for (const side of sides) ms.set(side.name, await w.run(side))
      b.log(`${w.figure}: ${sides.map(side => `${side.name} ${ms.get(side.name)!.toFixed(0)} ms`).join(', ')}`)
      for (const base of [GOCRYPTFS, NATIVE]) {
        b.row({ figure: w.figure, value: ms.get(CHAIN)!, unit: 'ms', baseline: base, baselineValue: ms.get(base)!, higherIsBetter: false, note: w.note })
      }
    }
  } finally {
    // a failed close is reported by the runner: the deferred close returns the same promise
    for (const side of sides.reverse()) await side.close().catch(() => {})
  }
}
