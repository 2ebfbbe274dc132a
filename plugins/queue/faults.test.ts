import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isVfsError } from '../../src/vfs/errors.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { fuseSkip, mountForTest, sh, type TestMount } from '../../test/helpers/fuse.ts'
import { serverPort } from '../../test/helpers/ports.ts'
import { queueView } from './index.ts'
import { eventually } from './test-helpers.ts'

/** A broker process of the test's own, on its own port and data folder, that survives being stopped and started again. */
interface OwnBroker {
  readonly url: string
  start(): Promise<void>
  stop(): Promise<void>
  dispose(): Promise<void>
}

async function ownBroker(kind: 'nats' | 'redis'): Promise<OwnBroker> {
  // below the ephemeral range: a client reconnecting while the broker is down can take a port from listen(0) as its own
  const port = await serverPort()
  const dir = await mkdtemp(join(tmpdir(), `facet-queue-${kind}-`))
  let proc: ChildProcess | undefined
  const args =
    kind === 'nats'
      ? ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir]
      : ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]
  const exec = kind === 'nats' ? 'nats-server' : 'redis-server'
  const up = async () => {
    await eventually(
      () =>
        new Promise<boolean>(done => {
          const s = createServer()
          s.once('error', () => done(true)) // taken: the broker listens
          s.listen(port, '127.0.0.1', () => s.close(() => done(false)))
        }),
      `${exec} listening on ${port}`,
      // redis-server with appendfsync always replays and syncs its log before listening: slow on a loaded disk
      30_000,
    )
    if (kind === 'nats') await new Promise(r => setTimeout(r, 300)) // JetStream comes up just after the port
  }
  const broker: OwnBroker = {
    url: `${kind}://127.0.0.1:${port}`,
    async start() {
      proc = spawn(exec, args, { stdio: 'ignore' })
      await up()
    },
    stop() {
      return new Promise(done => {
        const p = proc
        proc = undefined
        if (!p || p.exitCode !== null || p.signalCode !== null) return done()
        p.once('exit', () => done())
        p.kill('SIGTERM')
      })
    },
    async dispose() {
      await broker.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
  await broker.start()
  return broker
}

const names = async (vfs: Vfs, p: string) => (await vfs.readdirAll(p)).map(e => e.name)

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p
  } catch (err) {
    if (isVfsError(err)) return { code: err.code, message: err.message }
    throw err
  }
  return { code: 'no error', message: '' }
}

describe.each(['nats', 'redis'] as const)('queue on a %s broker that goes away and comes back', kind => {
  let broker: OwnBroker
  let vfs: Vfs
  let mount: TestMount | undefined

  beforeAll(async () => {
    broker = await ownBroker(kind)
    vfs = createVfs({ mounts: { '/q': queueView({ broker: broker.url, brokerTimeoutMs: 1000, maxMessageBytes: 4096 }) }, logger: silentLogger })
    if (!fuseSkip) mount = await mountForTest(vfs)
  }, 20_000)

  afterAll(async () => {
    try {
      await mount?.unmount()
      await vfs?.close()
    } finally {
      await broker?.dispose()
    }
  }, 20_000)

  it('answers EAGAIN or EIO with the broker’s reason while it is down, and has every message exactly once when it is back', async () => {
    await vfs.mkdir('/q/jobs')
    for (const n of ['a', 'b', 'c']) await vfs.writeFile(`/q/jobs/${n}`, `message ${n}\n`)
    await vfs.rename('/q/jobs/b', '/q/jobs/claimed/b')

    await broker.stop()
    const write = await failure(vfs.writeFile('/q/jobs/d', 'while down\n'))
    expect(['EAGAIN', 'EIO']).toContain(write.code)
    expect(write.message).toMatch(new RegExp(`${kind} .*127\\.0\\.0\\.1`))
    expect(['EAGAIN', 'EIO']).toContain((await failure(vfs.rename('/q/jobs/a', '/q/jobs/claimed/a'))).code)
    if (mount) {
      // cp, unlike a shell redirection, reports the error close(2) returns when the enqueue fails there
      const r = await sh(`echo x > /dev/shm/facet-queue-e-$$ && cp /dev/shm/facet-queue-e-$$ ${mount.dir}/q/jobs/e; s=$?; rm -f /dev/shm/facet-queue-e-$$; exit $s`)
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(/Resource temporarily unavailable|Input\/output error/)
    }

    await broker.start()
    await eventually(async () => (await failure(vfs.writeFile('/q/jobs/d', 'after\n'))).code === 'no error', 'a write once the broker is back', 10_000)
    await eventually(async () => (await names(vfs, '/q/jobs')).includes('d'), 'the listing once the broker is back', 5000)
    expect(await names(vfs, '/q/jobs')).toEqual(['claimed', 'dead', 'a', 'c', 'd'])
    expect(await names(vfs, '/q/jobs/claimed')).toEqual(['b'])
    expect((await vfs.readFile('/q/jobs/claimed/b')).toString()).toBe('message b\n')
    // the writes refused while it was down left nothing behind
    expect(await names(vfs, '/q/jobs')).not.toContain('e')
    await vfs.rename('/q/jobs/a', '/q/jobs/claimed/a')
    await vfs.unlink('/q/jobs/claimed/a')
    expect(await names(vfs, '/q/jobs')).toEqual(['claimed', 'dead', 'c', 'd'])
  }, 40_000)

  it('refuses a message over the size limit with EFBIG and publishes nothing', async () => {
    await eventually(async () => (await failure(vfs.stat('/q/jobs'))).code === 'no error', 'the queue', 5000)
    const before = await names(vfs, '/q/jobs')
    expect((await failure(vfs.writeFile('/q/jobs/big', Buffer.alloc(4097)))).code).toBe('EFBIG')
    expect(await names(vfs, '/q/jobs')).toEqual(before)
  })
})
