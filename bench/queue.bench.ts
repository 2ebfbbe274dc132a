import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fuseAvailability, mountFuse } from '../src/fuse/index.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import { queueView, type QueueOptions } from '../plugins/queue/index.ts'
import { nodeChild, type BenchContext } from './lib.ts'

const NATS = process.env.FACET_BENCH_NATS ?? 'nats://127.0.0.1:4222'
const REDIS = process.env.FACET_BENCH_REDIS ?? 'redis://127.0.0.1:6379'
const BODY = '{"task":"resize","id":12345,"size":"1024x768"}\n'

/** Enqueues `count` messages into a folder (a queue on the mount, or a plain host folder) with one write each; prints the time. */
const ENQUEUE = `
import { writeFileSync } from 'node:fs'
const [dir, count, body] = [process.argv[1], Number(process.argv[2]), process.argv[3]]
const t0 = process.hrtime.bigint()
for (let i = 0; i < count; i++) writeFileSync(dir + '/m' + i, body)
console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - t0) / 1e6 }))
`

/** Claims (rename into claimed/) and acknowledges (unlink) each of `count` messages; prints the time. */
const CLAIM_ACK = `
import { renameSync, unlinkSync } from 'node:fs'
const [dir, count] = [process.argv[1], Number(process.argv[2])]
const t0 = process.hrtime.bigint()
for (let i = 0; i < count; i++) {
  renameSync(dir + '/m' + i, dir + '/claimed/m' + i)
  unlinkSync(dir + '/claimed/m' + i)
}
console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - t0) / 1e6 }))
`

interface Direct {
  label: string
  enqueue(count: number): Promise<number>
  claimAck(count: number): Promise<number>
  close(): Promise<void>
}

const timed = async (fn: () => Promise<void>): Promise<number> => {
  const t0 = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t0) / 1e6
}

/** The same operations with the JetStream client: publish (acked by the stream), then next() + ackAck() on a durable pull consumer. */
async function natsDirect(): Promise<Direct> {
  const { connect } = await import('@nats-io/transport-node')
  const { jetstream, jetstreamManager, AckPolicy } = await import('@nats-io/jetstream')
  const nc = await connect({ servers: new URL(NATS).host })
  const jsm = await jetstreamManager(nc)
  const js = jetstream(nc)
  const stream = `FACETBENCH_direct_${randomBytes(3).toString('hex')}`
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] })
  await jsm.consumers.add(stream, { durable_name: 'worker', ack_policy: AckPolicy.Explicit })
  const consumer = await js.consumers.get(stream, 'worker')
  return {
    label: 'nats.js publish; next + ackAck',
    enqueue: count => timed(async () => {
      for (let i = 0; i < count; i++) await js.publish(`${stream}.m.m${i}`, BODY)
    }),
    claimAck: count => timed(async () => {
      for (let i = 0; i < count; i++) {
        const m = await consumer.next({ expires: 2000 })
        if (!m) throw new Error('the direct consumer got no message')
        await m.ackAck()
      }
    }),
    close: async () => {
      await jsm.streams.delete(stream).catch(() => {})
      await nc.close()
    },
  }
}

/** The same operations with node-redis: XADD, then XREADGROUP + XACK + XDEL. */
async function redisDirect(): Promise<Direct> {
  const { createClient } = await import('redis')
  const c = createClient({ url: REDIS })
  c.on('error', () => {})
  await c.connect()
  const key = `facetbench:direct:${randomBytes(3).toString('hex')}`
  await c.sendCommand(['XGROUP', 'CREATE', key, 'g', '0', 'MKSTREAM'])
  return {
    label: 'node-redis XADD; XREADGROUP + XACK + XDEL',
    enqueue: count => timed(async () => {
      for (let i = 0; i < count; i++) await c.sendCommand(['XADD', key, '*', 'name', `m${i}`, 'data', BODY])
    }),
    claimAck: count => timed(async () => {
      for (let i = 0; i < count; i++) {
        const r = (await c.sendCommand(['XREADGROUP', 'GROUP', 'g', 'w', 'COUNT', '1', 'STREAMS', key, '>'])) as unknown
        const entries = Array.isArray(r) ? (r[0] as [string, Array<[string]>])[1] : Object.values(r as Record<string, Array<[string]>>)[0]!
        const id = entries[0]![0]
        await c.sendCommand(['XACK', key, 'g', id])
        await c.sendCommand(['XDEL', key, id])
      }
    }),
    close: async () => {
      await c.del(key).catch(() => {})
      c.destroy()
    },
  }
}

/** The same script on a plain host folder: native disk. */
function diskDirect(b: BenchContext): Direct {
  const dir = b.tmpdir('queue-disk')
  mkdirSync(join(dir, 'claimed'))
  return {
    label: 'same script on native disk',
    enqueue: async count => (await nodeChild<{ ms: number }>(ENQUEUE, [dir, String(count), BODY])).ms,
    claimAck: async count => (await nodeChild<{ ms: number }>(CLAIM_ACK, [dir, String(count)])).ms,
    close: async () => {},
  }
}

/**
 * Queue figures per backend (host folder, NATS JetStream, Redis Streams): enqueue rate
 * (a file written and closed per message) and claim+ack rate (`rename` into `claimed/`
 * then `unlink`) through FUSE, each beside the same operations done directly in the
 * same run: the broker's own client (publish / consumer next + ack; XADD / XREADGROUP +
 * XACK), or the same script on native disk for the folder backend.
 */
export default async function bench(b: BenchContext): Promise<void> {
  const count = b.quick ? 200 : 1000
  const avail = await fuseAvailability()
  if (!avail.ok) {
    b.log(`FUSE unavailable (${avail.reason}); no queue figures`)
    return
  }
  const suffix = randomBytes(3).toString('hex')
  const setups: Array<{ name: string; options: QueueOptions; direct: () => Promise<Direct>; cleanup: () => Promise<void> }> = [
    { name: 'folder', options: { dir: b.tmpdir('queue-folder') }, direct: async () => diskDirect(b), cleanup: async () => {} },
    {
      name: 'nats',
      options: { broker: NATS, prefix: `FACETBENCH_${suffix}_` },
      direct: natsDirect,
      cleanup: async () => {
        const { connect } = await import('@nats-io/transport-node')
        const { jetstreamManager } = await import('@nats-io/jetstream')
        const nc = await connect({ servers: new URL(NATS).host })
        const jsm = await jetstreamManager(nc)
        for await (const n of jsm.streams.names()) if (n.startsWith(`FACETBENCH_${suffix}_`)) await jsm.streams.delete(n)
        await nc.close()
      },
    },
    {
      name: 'redis',
      options: { broker: REDIS, prefix: `facetbench:${suffix}:` },
      direct: redisDirect,
      cleanup: async () => {
        const { createClient } = await import('redis')
        const c = createClient({ url: REDIS })
        await c.connect()
        const keys = await c.keys(`facetbench:${suffix}:*`)
        if (keys.length) await c.del(keys)
        c.destroy()
      },
    },
  ]

  for (const s of setups) {
    let direct: Direct
    try {
      direct = await s.direct()
    } catch (err) {
      b.log(`${s.name}: skipped, ${(err as Error).message}`)
      continue
    }
    b.defer(() => direct.close())
    b.defer(() => s.cleanup())
    const vfs = createVfs({ mounts: { '/q': queueView(s.options) }, logger: silentLogger })
    b.defer(() => vfs.close())
    const where = b.tmpdir(`queue-${s.name}`)
    const mount = await mountFuse(vfs, where, { logger: silentLogger })
    b.defer(() => mount.unmount())
    await vfs.mkdir('/q/jobs')
    const dir = join(where, 'q', 'jobs')

    // a short warm-up on both sides (connections, JIT, the stream's first pages)
    await nodeChild(ENQUEUE, [dir, '20', BODY])
    await nodeChild(CLAIM_ACK, [dir, '20'])
    await direct.enqueue(20)
    await direct.claimAck(20)

    const oursEnqueue = (await nodeChild<{ ms: number }>(ENQUEUE, [dir, String(count), BODY])).ms
    const baseEnqueue = await direct.enqueue(count)
    b.row({ figure: `enqueue rate through FUSE, ${s.name}`, value: (count * 1000) / oursEnqueue, unit: 'msgs/s', baseline: direct.label, baselineValue: (count * 1000) / baseEnqueue, higherIsBetter: true, note: `${count} messages of ${BODY.length} B, one at a time` })
    const oursClaim = (await nodeChild<{ ms: number }>(CLAIM_ACK, [dir, String(count)])).ms
    const baseClaim = await direct.claimAck(count)
    b.row({ figure: `claim+ack rate through FUSE, ${s.name}`, value: (count * 1000) / oursClaim, unit: 'msgs/s', baseline: direct.label, baselineValue: (count * 1000) / baseClaim, higherIsBetter: true, note: `${count} × (mv to claimed/ + rm)` })
  }
}
