import { execFile } from 'node:child_process'
import { access, appendFile, mkdtemp, readFile, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inject } from 'vitest'
import { fuseAvailability, mountFuse, type FuseOptions } from '../fuse/index.ts'
import { silentLogger } from '../vfs/log.ts'
import type { Vfs } from '../vfs/vfs.ts'

/** Reads a value FacetFS's own vitest global setup provides; `undefined` in a project without it. */
function provided(key: string): unknown {
  try {
    return (inject as (key: string) => unknown)(key)
  } catch {
    return undefined
  }
}

/**
 * Why FUSE cases must skip on this machine, else undefined: the global setup's probe
 * mount when it ran, else whether fuse-napi, libfuse and `/dev/fuse` are usable.
 */
export async function fuseSkipReason(): Promise<string | undefined> {
  const probed = provided('fuseSkip')
  if (typeof probed === 'string') return probed
  if (probed === null) return undefined
  const availability = await fuseAvailability()
  return availability.ok ? undefined : `FUSE unavailable: ${availability.reason}`
}

/** Why a FUSE mount cannot let another user in (`allow_other`), else undefined. */
export async function allowOtherSkipReason(): Promise<string | undefined> {
  const conf = await readFile('/etc/fuse.conf', 'utf8').catch(() => '')
  if (!/^\s*user_allow_other\s*$/m.test(conf)) return "/etc/fuse.conf has no 'user_allow_other' line, so a mount cannot let another user in"
  return undefined
}

/** A mount made by {@link mountForConformance}: its folder, and the unmount that also removes the folder. */
export interface ConformanceMount {
  readonly dir: string
  unmount(): Promise<void>
}

/**
 * Mounts `vfs` with FUSE in a fresh folder `facet-test-*` under the temp folder, recorded
 * for FacetFS's global teardown when that runs. Logs go nowhere unless `options.logger` says.
 */
export async function mountForConformance(vfs: Vfs, options: FuseOptions = {}): Promise<ConformanceMount> {
  const dir = await mkdtemp(join(tmpdir(), 'facet-test-'))
  const registry = provided('fuseRegistry')
  if (typeof registry === 'string') await appendFile(join(registry, String(process.pid)), dir + '\n').catch(() => {})
  try {
    const mount = await mountFuse(vfs, dir, { logger: silentLogger, ...options })
    return {
      dir,
      unmount: async () => {
        await mount.unmount()
        await rmdir(dir).catch(() => {})
      },
    }
  } catch (err) {
    await rmdir(dir).catch(() => {})
    throw err
  }
}

/** How a child process ended. */
export interface RunResult {
  /** The exit code; 137 when killed by the timeout. */
  code: number
  stdout: string
  stderr: string
}

/** Options for {@link run}. */
export interface RunOptions {
  /** Extra environment variables. */
  env?: Record<string, string>
  /** Kills the child after this many milliseconds. @default 10000 */
  timeoutMs?: number
}

/**
 * Runs `file` with `args` in the C locale and resolves how it ended; a non-zero exit does
 * not reject. Never give it a working folder on a mount this process serves (the child's
 * `chdir` runs before `exec`, while this thread waits): `cd` inside a {@link sh} script instead.
 */
export function run(file: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise(done => {
    const child = execFile(
      file,
      args,
      { env: { ...process.env, LC_ALL: 'C', LANG: 'C', ...options.env }, timeout: options.timeoutMs ?? 10_000, killSignal: 'SIGKILL', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: string }) | null
        const code = !e ? 0 : typeof e.code === 'number' ? e.code : e.signal ? 137 : 1
        done({ code, stdout, stderr })
      },
    )
    child.stdin?.end()
  })
}

/** Runs `script` with `sh -e -c` (see {@link run}); with `cwd`, the script starts with `cd` there (inside the shell, so a mount is safe). */
export function sh(script: string, options: RunOptions & { cwd?: string } = {}): Promise<RunResult> {
  const body = options.cwd === undefined ? script : `cd "$FACET_CWD"\n${script}`
  return run('sh', ['-e', '-c', body], { ...options, env: { ...options.env, ...(options.cwd === undefined ? {} : { FACET_CWD: options.cwd }) } })
}

/** True when `name` is an executable on `PATH`. */
export async function hasCommand(name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue
    try {
      await access(join(dir, name), 1)
      return true
    } catch {
      // not in this folder
    }
  }
  return false
}
