import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { FACET, ROOT } from './run.ts'

/** A running `facet up` child with its output so far. */
export interface Up {
  child: ChildProcessWithoutNullStreams
  stdout: string
  stderr: string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Every `facet up` started and not yet exited, for the tests' clean-up ({@link killRunning}). */
const running = new Set<Up>()

/**
 * Starts `node bin/facet.js up ...args` (with `--no-graphql` unless `args` name
 * `--graphql`) in `cwd` (the repository by default), with `env` over this process's;
 * `wrap` turns the command line into another (e.g. to run it in a network namespace).
 */
export function startUp(args: string[], options: { env?: Record<string, string>; cwd?: string; wrap?: (argv: string[]) => string[] } = {}): Up {
  const graphql = args.includes('--graphql') ? [] : ['--no-graphql']
  const argv = [process.execPath, FACET, 'up', ...graphql, ...args]
  const [cmd, ...rest] = options.wrap ? options.wrap(argv) : argv
  const child = spawn(cmd!, rest, { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const up: Up = { child, stdout: '', stderr: '', exited: new Promise(done => child.on('exit', (code, signal) => done({ code, signal }))) }
  child.stdout.setEncoding('utf8').on('data', d => (up.stdout += d))
  child.stderr.setEncoding('utf8').on('data', d => (up.stderr += d))
  running.add(up)
  void up.exited.then(() => running.delete(up))
  return up
}

/** Resolves with the first stdout line matching `pattern`; rejects when the process exits first, or after `timeoutMs`. */
export function waitForLine(up: Up, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = up.stdout.split('\n').map(l => pattern.exec(l)).find(m => m)
      if (match) {
        finish()
        resolve(match)
      }
    }
    const onExit = () => {
      finish()
      reject(new Error(`facet up exited before printing ${pattern}\nstdout: ${up.stdout}\nstderr: ${up.stderr}`))
    }
    const timer = setTimeout(() => {
      finish()
      reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms\nstdout: ${up.stdout}\nstderr: ${up.stderr}`))
    }, timeoutMs)
    const finish = () => {
      clearTimeout(timer)
      up.child.stdout.off('data', check)
      up.child.off('exit', onExit)
    }
    up.child.stdout.on('data', check)
    up.child.once('exit', onExit)
    check()
  })
}

/** Kills (SIGKILL) every `facet up` still running and waits for each to exit. */
export async function killRunning(): Promise<void> {
  for (const up of running) {
    up.child.kill('SIGKILL')
    await up.exited
  }
}

/** True when `dir` is a mount point now (`/proc/mounts`). */
export async function isMounted(dir: string): Promise<boolean> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').some(line => line.split(' ')[1] === dir)
}
