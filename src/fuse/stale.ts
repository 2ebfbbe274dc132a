import { execFile } from 'node:child_process'
import { access, readdir, readFile, writeFile } from 'node:fs/promises'

/** Errors a listing gives on a FUSE folder whose serving process is gone. */
const DEAD_MOUNT_CODES = new Set(['ENOTCONN', 'ECONNABORTED'])

function run(file: string, args: string[], timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err }))
      else resolve()
    })
  })
}

/**
 * Detaches the mount at `mountpoint` at once, even while files on it are open or its
 * server is dead (`fusermount -uz`, then `umount -l` as a fallback).
 */
export async function lazyUnmount(mountpoint: string): Promise<void> {
  try {
    await run('fusermount', ['-uz', mountpoint])
  } catch (err) {
    try {
      await run('umount', ['-l', mountpoint])
    } catch {
      throw err
    }
  }
}

/**
 * True when `mountpoint` is a FUSE mount whose serving process is gone: listing it fails
 * with `ENOTCONN` ("Transport endpoint is not connected"). A listing, unlike `stat`, is
 * never answered from the kernel's attribute cache. Uses the thread pool, so it never
 * blocks the JS thread even on a mount this process serves.
 */
export async function isStaleMount(mountpoint: string): Promise<boolean> {
  try {
    await readdir(mountpoint)
    return false
  } catch (err) {
    return DEAD_MOUNT_CODES.has((err as NodeJS.ErrnoException).code ?? '')
  }
}

/** Lazily unmounts `mountpoint` when a killed process left a dead FUSE mount there; returns true when it did. */
export async function clearStaleMount(mountpoint: string): Promise<boolean> {
  if (!(await isStaleMount(mountpoint))) return false
  await lazyUnmount(mountpoint)
  return true
}

/** One FUSE mount as `/proc/mounts` lists it. */
export interface FuseMountEntry {
  source: string
  mountpoint: string
  type: string
}

/** Lists the FUSE mounts in `/proc/mounts` (empty where it does not exist). */
export async function listFuseMounts(): Promise<FuseMountEntry[]> {
  let text: string
  try {
    text = await readFile('/proc/mounts', 'utf8')
  } catch {
    return []
  }
  const out: FuseMountEntry[] = []
  for (const line of text.split('\n')) {
    const [source, mountpoint, type] = line.split(' ')
    if (!source || !mountpoint || !type) continue
    if (type !== 'fuse' && !type.startsWith('fuse.')) continue
    out.push({ source: unescapeMountField(source), mountpoint: unescapeMountField(mountpoint), type })
  }
  return out
}

/** `/proc/mounts` writes space, tab, newline and backslash as octal escapes (`\040`). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

const FUSECTL = '/sys/fs/fuse/connections'

/**
 * The fusectl folder of the FUSE mount at `mountpoint` (`/sys/fs/fuse/connections/<minor>`),
 * mounting fusectl first when needed; undefined when there is no such mount. Reading it
 * never touches the mount itself.
 */
export async function fuseConnectionDir(mountpoint: string): Promise<string | undefined> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  let device: string | undefined
  for (const line of text.split('\n')) {
    const fields = line.split(' ')
    const sep = fields.indexOf('-')
    if (sep < 0 || fields[4] === undefined) continue
    const type = fields[sep + 1] ?? ''
    if (unescapeMountField(fields[4]) === mountpoint && (type === 'fuse' || type.startsWith('fuse.'))) device = fields[2]
  }
  const minor = device?.split(':')[1]
  if (minor === undefined) return undefined
  const dir = `${FUSECTL}/${minor}`
  try {
    await access(dir)
  } catch {
    await run('mount', ['-t', 'fusectl', 'fusectl', FUSECTL]).catch(() => {})
  }
  return dir
}

/** How many requests of the mount at `mountpoint` wait on its server, from fusectl; undefined when unknown. */
export async function waitingRequests(mountpoint: string): Promise<number | undefined> {
  const dir = await fuseConnectionDir(mountpoint)
  if (dir === undefined) return undefined
  const text = await readFile(`${dir}/waiting`, 'utf8').catch(() => undefined)
  return text === undefined ? undefined : Number(text)
}

/**
 * Aborts the kernel connection of the FUSE mount at `mountpoint` through fusectl, so
 * every process waiting on it (even a server deadlocked on its own mount) gets
 * `ENOTCONN` at once. Returns false when there is no such mount or connection.
 */
export async function abortFuseConnection(mountpoint: string): Promise<boolean> {
  const dir = await fuseConnectionDir(mountpoint)
  if (dir === undefined) return false
  try {
    await writeFile(`${dir}/abort`, '1')
    return true
  } catch {
    return false
  }
}
