import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { link, lstat, mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isVfsError, vfsError } from '../../src/vfs/errors.ts'
import { gone, messagePath, newStats, STATES, tooBig, type BackendHost, type MessageInfo, type QueueBackend, type QueueLimits, type State } from './backend.ts'

interface Meta {
  claims: number
  enqueuedAtMs: number
  claimedAtMs?: number
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException)?.code === code
}

/**
 * Queues in a host folder: `<dir>/<queue>/{ready,claimed,dead}/<message>`, claim counts
 * in `<queue>/.meta/`, half-written messages in `<queue>/.incoming/`. A move between
 * states is one `rename(2)`, so of two racing consumers (in one process or several
 * sharing the folder) exactly one wins.
 */
export class FolderBackend implements QueueBackend {
  readonly kind = 'folder' as const
  private host: BackendHost | undefined
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly counts = newStats()

  constructor(
    readonly dir: string,
    private readonly limits: QueueLimits,
  ) {
    mkdirSync(this.dir, { recursive: true })
    // drop half-written messages a killed process left behind
    for (const e of readdirSync(this.dir, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue
      rmSync(this.path(e.name, '.incoming'), { recursive: true, force: true })
      mkdirSync(this.path(e.name, '.incoming'))
    }
  }

  attach(host: BackendHost): void {
    this.host = host
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  stats(): Record<string, number> {
    return { ...this.counts }
  }

  private path(queue: string, state: State | '.meta' | '.incoming', name?: string): string {
    const base = join(this.dir, queue, state)
    return name === undefined ? base : join(base, state === '.meta' ? name + '.json' : name)
  }

  async queues(): Promise<string[]> {
    const out: string[] = []
    for (const e of await readdir(this.dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory() && !e.name.startsWith('.')) out.push(e.name)
    return out.sort()
  }

  async hasQueue(queue: string): Promise<boolean> {
    return lstat(this.path(queue, 'ready')).then(
      () => true,
      () => false,
    )
  }

  async createQueue(queue: string): Promise<void> {
    try {
      await mkdir(join(this.dir, queue))
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw vfsError('EEXIST')
      throw err
    }
    for (const sub of [...STATES, '.meta', '.incoming'] as const) await mkdir(this.path(queue, sub), { recursive: true })
  }

  async removeQueue(queue: string): Promise<void> {
    for (const s of STATES) if ((await readdir(this.path(queue, s))).length > 0) throw vfsError('ENOTEMPTY', `queue '${queue}' still holds ${s} messages`)
    await rm(join(this.dir, queue), { recursive: true })
  }

  private async meta(queue: string, name: string): Promise<Meta> {
    try {
      return JSON.parse(await readFile(this.path(queue, '.meta', name), 'utf8')) as Meta
    } catch {
      return { claims: 0, enqueuedAtMs: Date.now() }
    }
  }

  private async setMeta(queue: string, name: string, meta: Meta): Promise<void> {
    const tmp = this.path(queue, '.meta', `${name}.${randomBytes(4).toString('hex')}.tmp`)
    await writeFile(tmp, JSON.stringify(meta))
    await rename(tmp, this.path(queue, '.meta', name))
  }

  async list(queue: string, state: State): Promise<MessageInfo[]> {
    await this.sweep(queue)
    const names = await readdir(this.path(queue, state)).catch(() => [] as string[])
    const infos = await Promise.all(names.map(n => this.find(queue, state, n)))
    return infos.filter((i): i is MessageInfo => i !== undefined).sort((a, b) => a.timeMs - b.timeMs || (a.name < b.name ? -1 : 1))
  }

  async find(queue: string, state: State, name: string): Promise<MessageInfo | undefined> {
    const st = await stat(this.path(queue, state, name)).catch(() => undefined)
    if (!st) return undefined
    return { name, size: st.size, timeMs: st.mtimeMs, claims: state === 'ready' ? 0 : (await this.meta(queue, name)).claims }
  }

  async read(queue: string, state: State, name: string): Promise<Uint8Array> {
    try {
      return await readFile(this.path(queue, state, name))
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw gone(queue, name, state)
      throw err
    }
  }

  /** Writes the message durably and makes it visible at once: write, fsync, link into `ready/`. */
  async enqueue(queue: string, name: string, data: Uint8Array): Promise<void> {
    if (data.length > this.limits.maxBytes) throw tooBig(this.limits.maxBytes)
    for (const s of STATES) if (await this.find(queue, s, name)) throw vfsError('EEXIST', `message '${name}' is already in queue '${queue}'`)
    const tmp = this.path(queue, '.incoming', `${name}.${randomBytes(6).toString('hex')}`)
    const fh = await open(tmp, 'wx')
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await this.setMeta(queue, name, { claims: 0, enqueuedAtMs: Date.now() })
    try {
      await link(tmp, this.path(queue, 'ready', name))
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw vfsError('EEXIST', `message '${name}' is already in queue '${queue}'`)
      throw err
    } finally {
      await unlink(tmp).catch(() => {})
    }
    this.counts.enqueued++
  }

  /** One `rename(2)` of the host folder: the second of two racing movers finds the message gone (`ENOENT`). */
  private async move(queue: string, name: string, from: State, to: State): Promise<void> {
    try {
      await rename(this.path(queue, from, name), this.path(queue, to, name))
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw gone(queue, name, from)
      throw err
    }
  }

  async claim(queue: string, name: string): Promise<void> {
    const meta = await this.meta(queue, name)
    await this.move(queue, name, 'ready', 'claimed')
    meta.claims++
    meta.claimedAtMs = Date.now()
    await this.setMeta(queue, name, meta)
    this.counts.claimed++
    if (this.limits.claimTimeoutMs > 0) {
      const t = setTimeout(() => {
        this.timers.delete(t)
        this.sweep(queue).catch(err => this.host?.logger.warn({ err, queue }, 'returning timed-out claims failed'))
      }, this.limits.claimTimeoutMs + 5)
      t.unref()
      this.timers.add(t)
    }
  }

  async release(queue: string, name: string): Promise<State> {
    const meta = await this.meta(queue, name)
    const dest: State = meta.claims >= this.limits.maxClaims ? 'dead' : 'ready'
    await this.move(queue, name, 'claimed', dest)
    delete meta.claimedAtMs
    await this.setMeta(queue, name, meta)
    this.counts.released++
    if (dest === 'dead') this.counts.dead++
    return dest
  }

  async retry(queue: string, name: string): Promise<void> {
    await this.move(queue, name, 'dead', 'ready')
    await this.setMeta(queue, name, { claims: 0, enqueuedAtMs: Date.now() })
  }

  async ack(queue: string, state: State, name: string): Promise<void> {
    try {
      await unlink(this.path(queue, state, name))
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw vfsError('ENOENT')
      throw err
    }
    await unlink(this.path(queue, '.meta', name)).catch(() => {})
    this.counts.acked++
  }

  /** Returns claims older than `claimTimeoutMs` to the queue (or to `dead/` on the last claim), reporting each move. */
  private async sweep(queue: string): Promise<void> {
    if (this.limits.claimTimeoutMs <= 0) return
    const now = Date.now()
    for (const name of await readdir(this.path(queue, 'claimed')).catch(() => [] as string[])) {
      const meta = await this.meta(queue, name)
      if (meta.claimedAtMs === undefined || now - meta.claimedAtMs < this.limits.claimTimeoutMs) continue
      try {
        const dest = await this.release(queue, name)
        this.counts.timedOut++
        this.host?.emit({ type: 'rename', path: messagePath(queue, dest, name), oldPath: messagePath(queue, 'claimed', name), kind: 'file' })
      } catch (err) {
        if (!isVfsError(err, 'ENOENT')) throw err
      }
    }
  }
}
