import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { QueueOptions } from './index.ts'
import { subjectToken } from './nats.ts'

export const NATS_URL = process.env.FACET_TEST_NATS ?? 'nats://127.0.0.1:4222'
export const REDIS_URL = process.env.FACET_TEST_REDIS ?? 'redis://127.0.0.1:6379'

/** One place queues can live, with a fresh namespace per call and a plain client of its own for what other programs do. */
export interface TestBackend {
  readonly name: 'folder' | 'nats' | 'redis'
  /** Options naming a fresh namespace (folder, stream prefix or key prefix) on this backend. */
  fresh(extra?: Omit<QueueOptions, 'dir' | 'broker' | 'prefix'>): Promise<QueueOptions>
  /** Publishes a message the way another program would, with the broker's own client (or a plain file write). */
  publishPlain(options: QueueOptions, queue: string, name: string, data: string): Promise<void>
  /** Deletes every namespace `fresh` made. */
  cleanup(): Promise<void>
}

function folderBackend(): TestBackend {
  const dirs: string[] = []
  return {
    name: 'folder',
    async fresh(extra = {}) {
      const dir = await mkdtemp(join(tmpdir(), 'facet-queue-'))
      dirs.push(dir)
      return { ...extra, dir }
    },
    async publishPlain(options, queue, name, data) {
      const { writeFile } = await import('node:fs/promises')
      await writeFile(join(options.dir!, queue, 'ready', name), data)
    },
    async cleanup() {
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
    },
  }
}

function natsBackend(url = NATS_URL): TestBackend {
  const prefixes: string[] = []
  return {
    name: 'nats',
    async fresh(extra = {}) {
      const prefix = `FACETTEST_${randomBytes(4).toString('hex')}_`
      prefixes.push(prefix)
      return { ...extra, broker: url, prefix }
    },
    async publishPlain(options, queue, name, data) {
      const { connect } = await import('@nats-io/transport-node')
      const { jetstream } = await import('@nats-io/jetstream')
      const nc = await connect({ servers: new URL(url).host })
      try {
        await jetstream(nc).publish(`${options.prefix}${queue}.m.${subjectToken(name)}`, data)
      } finally {
        await nc.close()
      }
    },
    async cleanup() {
      if (prefixes.length === 0) return
      const { connect } = await import('@nats-io/transport-node')
      const { jetstreamManager } = await import('@nats-io/jetstream')
      const nc = await connect({ servers: new URL(url).host }).catch(() => undefined)
      if (!nc) return
      try {
        const jsm = await jetstreamManager(nc)
        const names: string[] = []
        for await (const n of jsm.streams.names()) names.push(n)
        for (const p of prefixes.splice(0)) for (const n of names) if (n.startsWith(p)) await jsm.streams.delete(n)
      } finally {
        await nc.close()
      }
    },
  }
}

function redisBackend(url = REDIS_URL): TestBackend {
  const prefixes: string[] = []
  const plain = async () => {
    const { createClient } = await import('redis')
    const c = createClient({ url })
    c.on('error', () => {})
    await c.connect()
    return c
  }
  return {
    name: 'redis',
    async fresh(extra = {}) {
      const prefix = `facettest:${randomBytes(4).toString('hex')}:`
      prefixes.push(prefix)
      return { ...extra, broker: url, prefix }
    },
    async publishPlain(options, queue, name, data) {
      const c = await plain()
      try {
        await c.xAdd(options.prefix + queue, '*', { name, data })
      } finally {
        c.destroy()
      }
    },
    async cleanup() {
      if (prefixes.length === 0) return
      const c = await plain().catch(() => undefined)
      if (!c) return
      try {
        for (const p of prefixes.splice(0)) {
          const keys = await c.keys(p + '*')
          if (keys.length > 0) await c.del(keys)
        }
      } finally {
        c.destroy()
      }
    },
  }
}

/** The three backends the queue tests run against. */
export function testBackends(): TestBackend[] {
  return [folderBackend(), natsBackend(), redisBackend()]
}

export { natsBackend, redisBackend }

/** Resolves once `check` holds, polling every 20 ms, or rejects after `ms` naming `what`. */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(r => setTimeout(r, 20))
  }
}
