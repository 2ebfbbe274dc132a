import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The `facet` launcher the package's bin points at. */
export const FACET = fileURLToPath(new URL('../../bin/facet.js', import.meta.url))

/** What a finished `facet` run left behind. */
export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Options for {@link facet}. */
export interface RunOptions {
  /** Bytes for stdin. @default nothing (stdin closed at once) */
  input?: string | Uint8Array
  /** Working folder. @default the repository root */
  cwd?: string
  /** Extra environment variables. */
  env?: Record<string, string>
}

/** Runs `node bin/facet.js ...args` as a child process and collects its output. */
export function facet(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FACET, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', d => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', d => (stderr += d))
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
    child.stdin.end(options.input ?? '')
  })
}

/** Replaces `ls -l` / `stat` times with fixed text so output can be compared exactly. */
export function maskTimes(text: string): string {
  return text
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<iso>')
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d/g, '<time>')
}
