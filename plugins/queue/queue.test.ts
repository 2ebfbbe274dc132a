import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createVfs, silentLogger, type Vfs } from '../../src/index.ts'
import { runViewConformance, errnoOf as errno } from '../../src/views/testing.ts'
import { queueView, type QueueOptions } from './index.ts'
import { testBackends } from './test-helpers.ts'

const backends = testBackends()
afterAll(async () => {
  for (const b of backends) await b.cleanup()
})

for (const b of backends) {
  runViewConformance(
    `queue (${b.name})`,
    async () => {
      const options = await b.fresh()
      const v = createVfs({ mounts: { '/q': queueView(options) }, logger: silentLogger })
      await v.mkdir('/q/jobs')
      for (const [n, body] of [['m1', 'first\n'], ['m2', '{"task":"resize","id":2}\n'], ['m3', '']]) await v.writeFile(`/q/jobs/${n}`, body!)
      await v.close()
      return queueView(options)
    },
    { folder: '/jobs', expectNames: ['claimed', 'dead', 'm1', 'm2'], readOnly: false },
  )
}

describe.each(backends)('queue view ($name)', b => {
  let options: QueueOptions
  let vfs: Vfs
  const made: Vfs[] = []
  const mount = (extra: Omit<QueueOptions, 'dir' | 'broker' | 'prefix'> = {}) => {
    const v = createVfs({ mounts: { '/q': queueView({ ...options, ...extra }) }, logger: silentLogger })
    made.push(v)
    return v
  }
  beforeEach(async () => {
    options = await b.fresh()
    vfs = mount({ maxClaims: 2 })
    await vfs.mkdir('/q/jobs')
  })
  afterEach(async () => {
    for (const v of made.splice(0)) await v.close()
  })

  const names = async (p: string) => (await vfs.readdirAll(p)).map(e => e.name)

  it('enqueues a message by creating a file and lists messages oldest first', async () => {
    await vfs.writeFile('/q/jobs/b', 'second')
    await new Promise(r => setTimeout(r, 5))
    await vfs.writeFile('/q/jobs/a', 'third')
    expect(await names('/q/jobs')).toEqual(['claimed', 'dead', 'b', 'a'])
    expect((await vfs.readFile('/q/jobs/b')).toString()).toBe('second')
    if (options.dir) expect(await readdir(join(options.dir, 'jobs', 'ready'))).toEqual(expect.arrayContaining(['a', 'b']))
  })

  it('lets exactly one of two racing consumers claim a message; the other gets ENOENT', async () => {
    await vfs.writeFile('/q/jobs/m', 'payload')
    const results = await Promise.allSettled([vfs.rename('/q/jobs/m', '/q/jobs/claimed/m'), vfs.rename('/q/jobs/m', '/q/jobs/claimed/m')])
    expect(results.filter(r => r.status === 'fulfilled')).toHaveLength(1)
    const failed = results.find(r => r.status === 'rejected') as PromiseRejectedResult
    expect(failed.reason.code).toBe('ENOENT')
    expect(await names('/q/jobs/claimed')).toEqual(['m'])
    expect(await names('/q/jobs')).toEqual(['claimed', 'dead'])
  })

  it('acknowledges a claimed message with rm, after which it is gone for good (ENOENT)', async () => {
    await vfs.writeFile('/q/jobs/m', 'payload')
    await vfs.rename('/q/jobs/m', '/q/jobs/claimed/m')
    await vfs.unlink('/q/jobs/claimed/m')
    expect(await errno(vfs.stat('/q/jobs/claimed/m'))).toBe('ENOENT')
    expect(await errno(vfs.stat('/q/jobs/m'))).toBe('ENOENT')
  })

  it('moves a message to dead/ when the claim that uses up maxClaims is released', async () => {
    await vfs.writeFile('/q/jobs/m', 'payload')
    await vfs.rename('/q/jobs/m', '/q/jobs/claimed/m')
    await vfs.rename('/q/jobs/claimed/m', '/q/jobs/m')
    expect(await names('/q/jobs')).toContain('m')
    await vfs.rename('/q/jobs/m', '/q/jobs/claimed/m')
    await vfs.rename('/q/jobs/claimed/m', '/q/jobs/m')
    expect(await names('/q/jobs/dead')).toEqual(['m'])
    expect(await errno(vfs.stat('/q/jobs/m'))).toBe('ENOENT')
    await vfs.rename('/q/jobs/dead/m', '/q/jobs/m')
    expect((await vfs.readFile('/q/jobs/m')).toString()).toBe('payload')
  })

  it('returns a claim not acknowledged in time to the queue', async () => {
    const v = mount({ claimTimeoutMs: 50 })
    await v.writeFile('/q/jobs/slow', 'x')
    await v.rename('/q/jobs/slow', '/q/jobs/claimed/slow')
    expect((await v.readdirAll('/q/jobs/claimed')).map(e => e.name)).toEqual(['slow'])
    await new Promise(r => setTimeout(r, 80))
    expect((await v.readdirAll('/q/jobs')).map(e => e.name)).toContain('slow')
    expect((await v.readdirAll('/q/jobs/claimed')).map(e => e.name)).toEqual([])
  })

  it('keeps messages, claims and dead letters across a restart', async () => {
    await vfs.writeFile('/q/jobs/a', 'A')
    await vfs.writeFile('/q/jobs/b', 'B')
    await vfs.rename('/q/jobs/b', '/q/jobs/claimed/b')
    await vfs.close()
    vfs = mount({ maxClaims: 1 })
    expect(await names('/q')).toEqual(['jobs'])
    expect(await names('/q/jobs')).toEqual(['claimed', 'dead', 'a'])
    expect((await vfs.readFile('/q/jobs/claimed/b')).toString()).toBe('B')
    await vfs.rename('/q/jobs/claimed/b', '/q/jobs/b')
    expect(await names('/q/jobs/dead')).toEqual(['b'])
  })

  it('refuses to change an enqueued message with EROFS and a duplicate name with EEXIST', async () => {
    await vfs.writeFile('/q/jobs/m', 'one')
    expect(await errno(vfs.writeFile('/q/jobs/m', 'two'))).toBe('EROFS')
    await vfs.rename('/q/jobs/m', '/q/jobs/claimed/m')
    expect(await errno(vfs.writeFile('/q/jobs/m', 'two'))).toBe('EEXIST')
    expect((await vfs.readFile('/q/jobs/claimed/m')).toString()).toBe('one')
  })

  it('refuses a message over the size limit with EFBIG and enqueues nothing', async () => {
    const v = mount({ maxMessageBytes: 1024 })
    expect(await errno(v.writeFile('/q/jobs/big', Buffer.alloc(2048)))).toBe('EFBIG')
    expect((await v.readdirAll('/q/jobs')).map(e => e.name)).toEqual(['claimed', 'dead'])
    if (options.dir) expect(await readdir(join(options.dir, 'jobs', 'ready'))).toEqual([])
  })

  it('refuses moves that are not claims, releases or dead-lettering with EPERM or EXDEV', async () => {
    await vfs.mkdir('/q/other')
    await vfs.writeFile('/q/jobs/m', 'x')
    expect(await errno(vfs.rename('/q/jobs/m', '/q/jobs/claimed/renamed'))).toBe('EPERM')
    expect(await errno(vfs.rename('/q/jobs/m', '/q/other/m'))).toBe('EXDEV')
    expect(await errno(vfs.writeFile('/q/jobs/claimed/new', 'x'))).toBe('EPERM')
  })

  it('removes an empty queue with rmdir and refuses a non-empty one with ENOTEMPTY', async () => {
    await vfs.writeFile('/q/jobs/m', 'x')
    expect(await errno(vfs.rmdir('/q/jobs'))).toBe('ENOTEMPTY')
    await vfs.unlink('/q/jobs/m')
    await vfs.rmdir('/q/jobs')
    expect(await names('/q')).toEqual([])
  })
})
