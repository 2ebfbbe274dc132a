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
