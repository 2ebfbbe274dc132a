import { execFile } from 'node:child_process'
import { appendFile, mkdtemp, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inject } from 'vitest'
import { fuseAvailability, mountFuse, type FuseOptions } from '../../src/fuse/index.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'

async function skipReason(): Promise<string | undefined> {
  const probed = inject('fuseSkip')
  if (probed !== undefined) return probed ?? undefined
  const availability = await fuseAvailability()
  return availability.ok ? undefined : availability.reason
}

/**
 * Why FUSE tests must skip on this machine (it starts "FUSE unavailable: …"), else
 * undefined. Comes from the global setup's probe mount when it ran.
 *
 * ```ts
 * describe.skipIf(fuseSkip)('cat through FUSE', () => { … })
 * ```
 */
export const fuseSkip: string | undefined = await skipReason()
if (fuseSkip) console.warn(`skipping FUSE tests: ${fuseSkip}`)

/** A test mount: its folder, and the unmount that also removes the folder. */
export interface TestMount {
  readonly dir: string
  unmount(): Promise<void>
  /** Resolves once the kernel has been sent every invalidation queued so far. */
  invalidated(): Promise<void>
}

/**
 * Mounts `vfs` with FUSE in a fresh folder `facet-test-*` under the temp folder. Call
 * `unmount()` in `afterEach`/`afterAll`; the mount is also recorded for the global
 * teardown, which unmounts whatever a failed or timed-out run left.
 * Logs go nowhere unless `options.logger` says otherwise.
 */
export async function mountForTest(vfs: Vfs, options: FuseOptions = {}): Promise<TestMount> {
  const dir = await testMountDir()
  try {
    const mount = await mountFuse(vfs, dir, { logger: silentLogger, ...options })
    return {
      dir,
      unmount: async () => {
        await mount.unmount()
        await rmdir(dir).catch(() => {})
      },
      invalidated: () => mount.invalidated(),
    }
  } catch (err) {
    await rmdir(dir).catch(() => {})
    throw err
  }
}

/**
 * Makes a fresh empty folder `facet-test-*` under the temp folder and records it for the
 * global teardown, which unmounts it if a test leaves a mount there (also one made by a
 * child process). {@link mountForTest} uses it.
 */
export async function testMountDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'facet-test-'))
  const registry = inject('fuseRegistry')
  if (registry) await appendFile(join(registry, String(process.pid)), dir + '\n')
  return dir
}

/** How a child process ended. */
export interface RunResult {
  /** The exit code; 128 + n when killed by signal n (or by the timeout). */
  code: number
  stdout: string
  stderr: string
}

/** Options for {@link run}. */
export interface RunOptions {
  /** Text written to the child's stdin. */
  input?: string
  /** Kills the child after this many milliseconds. @default 10000 */
  timeoutMs?: number
}

/**
 * Runs `file` with `args` as a child process in the C locale and resolves how it ended
 * (stdout also as raw `bytes`); a non-zero exit does not reject. Never give a working folder on a mount this process
 * serves: the child's `chdir` runs before `exec`, while this thread waits on it.
 */
export function run(file: string, args: string[], options: RunOptions = {}): Promise<RunResult & { bytes: Buffer }> {
  return new Promise(done => {
    const child = execFile(
      file,
      args,
      {
        env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
        timeout: options.timeoutMs ?? 10_000,
        killSignal: 'SIGKILL',
        maxBuffer: 64 << 20,
        encoding: 'buffer',
      },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: string }) | null
        let code = 0
        if (e) code = typeof e.code === 'number' ? e.code : e.signal ? 137 : 1
        done({ code, stdout: stdout.toString(), stderr: stderr.toString(), bytes: stdout })
      },
    )
    if (options.input !== undefined) child.stdin?.end(options.input)
    else child.stdin?.end()
  })
}

/** Runs `script` with `sh -c` (see {@link run}); `cd` inside the script is fine. */
export function sh(script: string, options: RunOptions = {}): Promise<RunResult & { bytes: Buffer }> {
  return run('sh', ['-c', script], options)
}
