import { spawn } from 'node:child_process'
import { run } from './fuse.ts'

/** Writes `content` to `file` through a mount, fsyncs and closes it, in a child process: 'ok' or the errno, and the seconds it took. */
export async function writeSynced(file: string, content: string, timeoutMs = 60_000): Promise<{ result: string; seconds: number }> {
  const script = `import os,sys,time
t=time.time()
try:
  fd=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT|os.O_TRUNC,0o644)
  os.write(fd,sys.argv[2].encode()); os.fsync(fd); os.close(fd); r='ok'
except OSError as e: r=str(e.errno)
print(r, time.time()-t)`
  const { stdout, stderr, code } = await run('python3', ['-c', script, file, content], { timeoutMs })
  if (code !== 0) throw new Error(`writing ${file} ended with ${code}: ${stderr}`)
  const [result, seconds] = stdout.trim().split(' ')
  return { result: result!, seconds: Number(seconds) }
}

/** Reads `file` through a mount in a child process: its content, or the errno, and the seconds it took. */
export async function readBack(file: string, timeoutMs = 60_000): Promise<{ result: string; seconds: number }> {
  const script = `import sys,time
t=time.time()
try: r='='+open(sys.argv[1]).read()
except OSError as e: r=str(e.errno)
sys.stdout.write(str(time.time()-t)+' '+r)`
  const { stdout, stderr, code } = await run('python3', ['-c', script, file], { timeoutMs })
  if (code !== 0) throw new Error(`reading ${file} ended with ${code}: ${stderr}`)
  const at = stdout.indexOf(' ')
  const r = stdout.slice(at + 1)
  return { result: r.startsWith('=') ? r.slice(1) : r, seconds: Number(stdout.slice(0, at)) }
}

/** A file held open for writing by a child process, written and fsynced on command. */
export interface OpenWriter {
  /** Writes `text` at the end and fsyncs: 'ok' or the errno, and the seconds it took. */
  write(text: string): Promise<{ result: string; seconds: number }>
  /** Closes the file: 'ok' or the errno. */
  close(): Promise<string>
  /** Kills the child (a no-op once it has ended). */
  kill(): void
}

/** Opens `file` (created, truncated) in a child process that keeps it open until {@link OpenWriter.close}. */
export function openWriter(file: string): OpenWriter {
  const script = `import os,sys,time
fd=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT|os.O_TRUNC,0o644)
print('open',flush=True)
for line in sys.stdin:
  t=time.time()
  try:
    if line.startswith('w '):
      os.write(fd,bytes.fromhex(line[2:].strip())); os.fsync(fd)
    else:
      os.close(fd)
    r='ok'
  except OSError as e: r=str(e.errno)
  print(r,time.time()-t,flush=True)
  if not line.startswith('w '): break`
  const child = spawn('python3', ['-c', script, file], { stdio: ['pipe', 'pipe', 'pipe'] })
  const lines: string[] = []
  const waiting: ((line: string) => void)[] = []
  let buffered = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffered += d
    let nl: number
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      const w = waiting.shift()
      if (w) w(line)
      else lines.push(line)
    }
  })
  let err = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  const next = () =>
    new Promise<string>((done, fail) => {
      const l = lines.shift()
      if (l !== undefined) return done(l)
      waiting.push(done)
      child.once('exit', () => fail(new Error(`the writer of ${file} ended: ${err}`)))
    })
  const opened = next()
  const ask = async (line: string) => {
    await opened
    child.stdin.write(line + '\n')
    const [result, seconds] = (await next()).split(' ')
    return { result: result!, seconds: Number(seconds) }
  }
  return {
    write: text => ask(`w ${Buffer.from(text).toString('hex')}`),
    close: async () => (await ask('c')).result,
    kill: () => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')),
  }
}
