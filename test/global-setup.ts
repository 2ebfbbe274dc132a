import { spawn, execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { abortFuseConnection, fuseAvailability, lazyUnmount, listFuseMounts, mountFuse, waitingRequests } from '../src/fuse/index.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import { dir, file } from '../src/views/view.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Why FUSE tests must skip on this machine, or null when a probe mount worked. */
    fuseSkip: string | null
    /** A folder where test workers record the mounts they make (one file per worker). */
    fuseRegistry: string
  }
}

/** The prefix of every temp mount folder tests make (see test/helpers/fuse.ts). */
export const TEST_MOUNT_PREFIX = 'facet-test-'

/**
 * Says whether the mount at `path` answers, without ever waiting on it: a `stat` child
 * is given 2 s and then abandoned (a process waiting on a hung FUSE request cannot be
 * killed until the connection is aborted, so its exit is never awaited).
 */
function probe(path: string): Promise<'ok' | 'dead' | 'hung'> {
  return new Promise(done => {
    const child = spawn('stat', ['-c', '%i', path], { stdio: 'ignore' })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      child.unref()
      done('hung')
    }, 2000)
    child.on('error', () => {
      clearTimeout(timer)
      done('dead')
    })
    child.on('exit', code => {
      clearTimeout(timer)
      done(code === 0 ? 'ok' : 'dead')
    })
  })
}

async function unmountAndRemove(mountpoint: string): Promise<boolean> {
  try {
    await lazyUnmount(mountpoint)
  } catch (err) {
    console.warn(`could not unmount ${mountpoint}: ${(err as Error).message}`)
    return false
  }
  await rmdir(mountpoint).catch(() => {})
  return true
}

async function registered(registry: string): Promise<Set<string>> {
  const dirs = new Set<string>()
  for (const name of await readdir(registry).catch(() => [])) {
    const text = await readFile(join(registry, name), 'utf8').catch(() => '')
    for (const line of text.split('\n')) if (line) dirs.add(line)
  }
  return dirs
}

/**
 * Lazily unmounts test mounts (`facet-test-*` under the temp folder) that would wedge the
 * machine. Mounts this run recorded in `registry` are all unmounted (after aborting
 * their connection, so nothing stays stuck on a hung server); any other test mount is
 * unmounted only when its server is gone, since a live one may belong to a run still going
 * (with `warn`, a hung one is named on stderr).
 */
export async function sweepTestMounts(registry?: string, warn = false): Promise<string[]> {
  const root = tmpdir()
  const ours = registry ? await registered(registry) : new Set<string>()
  const swept: string[] = []
  for (const m of await listFuseMounts()) {
    if (dirname(m.mountpoint) !== root || !basename(m.mountpoint).startsWith(TEST_MOUNT_PREFIX)) continue
    if (ours.has(m.mountpoint)) {
      await abortFuseConnection(m.mountpoint)
      if (await unmountAndRemove(m.mountpoint)) swept.push(m.mountpoint)
      continue
    }
    const state = ((await waitingRequests(m.mountpoint)) ?? 0) > 0 ? 'hung' : await probe(m.mountpoint)
    if (state === 'dead' && (await unmountAndRemove(m.mountpoint))) swept.push(m.mountpoint)
    if (state === 'hung' && warn) console.warn(`FUSE mount ${m.mountpoint} has requests waiting; it is not this run's, so it is left alone`)
  }
  return swept
}

/** Mounts a one-file tree, reads it from a child process and unmounts: the proof FUSE tests can run here. */
async function probeMount(): Promise<string | null> {
  const availability = await fuseAvailability()
  if (!availability.ok) return availability.reason
  const where = await mkdtemp(join(tmpdir(), TEST_MOUNT_PREFIX))
  const vfs = createVfs({ logger: silentLogger, mounts: { '/probe': { name: 'probe', root: dir({ 'ok.txt': file('ok\n') }) } } })
  try {
    const mount = await mountFuse(vfs, where, { logger: silentLogger, timeoutMs: 2000 })
    try {
      const read = await new Promise<string>((done, fail) =>
        execFile('cat', [join(where, 'probe/ok.txt')], { timeout: 5000 }, (err, out) => (err ? fail(err) : done(out))),
      )
      if (read !== 'ok\n') return `FUSE unavailable: a probe mount read back ${JSON.stringify(read)}`
    } finally {
      await mount.unmount()
    }
    return null
  } catch (err) {
    return `FUSE unavailable: a probe mount failed — ${(err as Error).message}`
  } finally {
    await rmdir(where).catch(() => {})
  }
}

/** Vitest global setup: clears dead test mounts, probes FUSE once, and at the end unmounts whatever this run left. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await sweepTestMounts()
  const registry = await mkdtemp(join(tmpdir(), 'facet-mount-registry-'))
  project.provide('fuseRegistry', registry)
  project.provide('fuseSkip', await probeMount())
  return async () => {
    const swept = await sweepTestMounts(registry, true)
    await rm(registry, { recursive: true, force: true })
    if (swept.length > 0) console.warn(`global teardown unmounted ${swept.length} FUSE mount(s) left by tests: ${swept.join(', ')}`)
  }
}
