import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGraphQLApi } from '../../src/graphql/index.ts'
import { mountConformanceCases, runMountCase, type FuseCaseContext, type MountConformanceOptions } from '../../src/testing/index.ts'
import { discoverFixture } from '../../src/testing/vfs-cases.ts'
import { allowOtherSkipReason } from '../../src/testing/fuse-harness.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type ChangeEvent, type Vfs } from '../../src/vfs/vfs.ts'
import { fuseSkip, mountForTest, run, sh, testMountDir, type TestMount } from '../../test/helpers/fuse.ts'
import { queueView, type QueueOptions } from './index.ts'
import { eventually, testBackends, type TestBackend } from './test-helpers.ts'

const SERVE = fileURLToPath(new URL('./test-serve.ts', import.meta.url))
const backends = testBackends()
const MAX_BYTES = 64 * 1024

/** The second FacetFS process: serves `mounts` at `where` until stopped. */
function serveInChild(where: string, mounts: Record<string, QueueOptions>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVE, where, JSON.stringify(mounts)], { stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((done, fail) => {
    let err = ''
    child.stderr!.on('data', d => (err += d))
    child.stdout!.on('data', d => {
      if (String(d).includes('mounted')) done(child)
    })
    child.on('exit', code => fail(new Error(`the serving child exited with ${code}: ${err}`)))
  })
}

function stop(child: ChildProcess | undefined): Promise<void> {
  return new Promise(done => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return done()
    const hard = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(hard)
      done()
    })
    child.kill('SIGTERM')
  })
}

const ls = async (dir: string) => (await run('ls', ['-1', dir])).stdout.split('\n').filter(Boolean)

describe.skipIf(fuseSkip)('queue through FUSE', () => {
  const options = new Map<string, QueueOptions>()
  let vfs: Vfs
  let a: TestMount
  let bDir: string
  let child: ChildProcess | undefined

  beforeAll(async () => {
    const mounts: Record<string, QueueOptions> = {}
    const timed: Record<string, QueueOptions> = {}
    for (const b of backends) {
      const o = await b.fresh({ maxClaims: 2, maxMessageBytes: MAX_BYTES })
      options.set(b.name, o)
      mounts[`/${b.name}`] = o
      timed[`/${b.name}-timed`] = { ...o, claimTimeoutMs: 400 }
    }
    vfs = createVfs({ logger: silentLogger, mounts: Object.fromEntries(Object.entries({ ...mounts, ...timed }).map(([p, o]) => [p, queueView(o)])) })
    a = await mountForTest(vfs)
    bDir = await testMountDir()
    child = await serveInChild(bDir, mounts)
  }, 30_000)

  afterAll(async () => {
    try {
      await stop(child)
      await rmdir(bDir).catch(() => {})
      await a?.unmount()
      await vfs?.close()
    } finally {
      for (const b of backends) await b.cleanup()
    }
  }, 30_000)

  describe.each(backends)('$name', (b: TestBackend) => {
    const A = () => join(a.dir, b.name)
    const B = () => join(bDir, b.name)
    let n = 0
    /** A fresh queue made with mkdir through the first process, seen by the second. */
    async function queue(): Promise<string> {
      const q = `q${++n}`
      expect((await sh(`mkdir ${A()}/${q}`)).code).toBe(0)
      await eventually(async () => (await ls(B())).includes(q), `queue ${q} in the second process`)
      return q
    }

    it('enqueues with echo >, lists with ls, and peeks with cat without consuming', async () => {
      const q = await queue()
      expect((await sh(`echo '{"id":7}' > ${A()}/${q}/job-7 && echo second > ${A()}/${q}/job-8`)).code).toBe(0)
      expect(await ls(`${A()}/${q}`)).toEqual(['claimed', 'dead', 'job-7', 'job-8'])
      for (let i = 0; i < 2; i++) expect((await run('cat', [`${A()}/${q}/job-7`])).stdout).toBe('{"id":7}\n')
      expect((await sh(`stat -c %s ${A()}/${q}/job-7`)).stdout).toBe('9\n')
      await eventually(async () => (await ls(`${B()}/${q}`)).includes('job-8'), 'job-8 in the second process')
      expect((await run('cat', [`${B()}/${q}/job-7`])).stdout).toBe('{"id":7}\n')
      expect(await ls(`${A()}/${q}`)).toEqual(['claimed', 'dead', 'job-7', 'job-8'])
    })

    it('lets exactly one of two FacetFS processes claim a message with mv; the other fails with ENOENT', async () => {
      const q = await queue()
      for (let round = 0; round < 3; round++) {
        const m = `race-${round}`
        expect((await sh(`echo ${m} > ${A()}/${q}/${m}`)).code).toBe(0)
        await eventually(async () => (await ls(`${B()}/${q}`)).includes(m), `${m} in the second process`)
        const r = await sh(`mv ${A()}/${q}/${m} ${A()}/${q}/claimed/ 2>&1 & p=$!; mv ${B()}/${q}/${m} ${B()}/${q}/claimed/ 2>&1; echo "b=$?"; wait $p; echo "a=$?"`)
        const codes = [/a=(\d+)/.exec(r.stdout)![1], /b=(\d+)/.exec(r.stdout)![1]]
        expect(codes.filter(c => c === '0'), r.stdout).toHaveLength(1)
        expect(r.stdout).toContain('No such file or directory')
        await eventually(async () => (await ls(`${B()}/${q}/claimed`)).includes(m), `${m} claimed in the second process`)
        expect(await ls(`${A()}/${q}/claimed`)).toContain(m)
        expect(await ls(`${A()}/${q}`)).not.toContain(m)
      }
    })

    it('acknowledges with rm, after which the message is gone from both processes (ENOENT)', async () => {
      const q = await queue()
      expect((await sh(`echo x > ${A()}/${q}/m && mv ${A()}/${q}/m ${A()}/${q}/claimed/ && rm ${A()}/${q}/claimed/m`)).code).toBe(0)
      expect((await run('cat', [`${A()}/${q}/claimed/m`])).stderr).toContain('No such file or directory')
      await eventually(async () => (await run('cat', [`${B()}/${q}/claimed/m`])).code !== 0, 'the ack in the second process')
      expect(await ls(`${B()}/${q}`)).toEqual(['claimed', 'dead'])
      // the name is free again
      expect((await sh(`echo again > ${A()}/${q}/m && cat ${A()}/${q}/m`)).stdout).toBe('again\n')
    })

    it('releases with mv back, sends the release that uses up maxClaims to dead/, and retries a dead letter', async () => {
      const q = await queue()
      const Q = `${A()}/${q}`
      expect((await sh(`echo payload > ${Q}/m && mv ${Q}/m ${Q}/claimed/ && mv ${Q}/claimed/m ${Q}/`)).code).toBe(0)
      expect(await ls(Q)).toContain('m')
      expect((await sh(`mv ${Q}/m ${Q}/claimed/ && mv ${Q}/claimed/m ${Q}/`)).code).toBe(0)
      expect(await ls(`${Q}/dead`)).toEqual(['m'])
      expect(await ls(Q)).toEqual(['claimed', 'dead'])
      await eventually(async () => (await ls(`${B()}/${q}/dead`)).includes('m'), 'the dead letter in the second process')
      expect((await sh(`mv ${Q}/dead/m ${Q}/ && cat ${Q}/m`)).stdout).toBe('payload\n')
      expect((await sh(`mv ${Q}/m ${Q}/dead/ 2>&1`)).stdout).toContain('Operation not permitted')
    })

    it('returns a claim not acknowledged within claimTimeoutMs to the queue, and reports it on the change bus', async () => {
      const q = await queue()
      const T = `${a.dir}/${b.name}-timed/${q}`
      await eventually(async () => (await ls(`${a.dir}/${b.name}-timed`)).includes(q), 'the queue in the timed view')
      const events: ChangeEvent[] = []
      const stopWatch = vfs.watch(`/${b.name}-timed`, e => events.push(e))
      try {
        expect((await sh(`echo slow > ${T}/slow && mv ${T}/slow ${T}/claimed/`)).code).toBe(0)
        expect(await ls(`${T}/claimed`)).toEqual(['slow'])
        await eventually(() => events.some(e => e.type === 'rename' && e.path === `/${b.name}-timed/${q}/slow`), 'the timeout on the change bus', 3000)
        expect(await ls(T)).toContain('slow')
        expect(await ls(`${T}/claimed`)).toEqual([])
      } finally {
        stopWatch()
      }
    })

    it('shows a message another program published with a plain client in ls, and on the change bus and GraphQL changes', async () => {
      const q = await queue()
      const api = createGraphQLApi(vfs)
      const res = await api.fetch('http://facet/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: `subscription { changes(path: "/${b.name}/${q}") { type path } }` }),
      })
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
      try {
        await b.publishPlain(options.get(b.name)!, q, 'from-outside', 'hello from a plain client\n')
        await eventually(async () => (await ls(`${A()}/${q}`)).includes('from-outside'), 'the published message in ls')
        expect((await run('cat', [`${A()}/${q}/from-outside`])).stdout).toBe('hello from a plain client\n')
        if (b.name !== 'folder') {
          let text = ''
          while (!text.includes('event: next')) {
            const { value, done } = await reader.read()
            if (done) break
            text += value
          }
          const data = JSON.parse(text.split('\n').find(l => l.startsWith('data:'))!.slice(5))
          expect(data).toEqual({ data: { changes: { type: 'CREATE', path: `/${b.name}/${q}/from-outside` } } })
        }
      } finally {
        await reader.cancel()
      }
    })

    it('refuses a message over the size limit with EFBIG "File too large" and enqueues nothing', async () => {
      const q = await queue()
      const r = await sh(`head -c ${MAX_BYTES + 1} /dev/zero > ${A()}/${q}/big`)
      expect(r.code).not.toBe(0)
      expect(r.stderr).toContain('File too large')
      expect(await ls(`${A()}/${q}`)).toEqual(['claimed', 'dead'])
      await new Promise(r => setTimeout(r, 100))
      expect(await ls(`${B()}/${q}`)).toEqual(['claimed', 'dead'])
    })
  })
})

/**
 * The parts of the mount conformance suite that hold for a queue, on each backend: the
 * listing, size and range cases, the errno table rows every mount answers the same, and
 * through FUSE `ls`/`cat`/`wc`, `cp -r`/`tar c` of a whole queue (peeking consumes
 * nothing), another user's read and no handle left open. Left out: the cases of a
 * read-only or a POSIX-writable mount (a queue is neither: it creates, removes and
 * moves, but only as enqueue, ack and claim).
 */
const NOT_A_QUEUE = [/read-only mount/, /leaves the tree unchanged/, /rmdir of a folder with entries with EROFS/, /refuses writes with EROFS/]
const conformance: MountConformanceOptions = { capabilities: {} }
const cases = mountConformanceCases(conformance)
const applies = (name: string) => !NOT_A_QUEUE.some(re => re.test(name))

for (const b of backends) {
  /** A queue view holding `jobs/` with two ready messages and a claimed one (so the fixture has a folder beside its file). */
  const seeded = async () => {
    const o = await b.fresh()
    const v = createVfs({ mounts: { '/q': queueView(o) }, logger: silentLogger })
    await v.mkdir('/q/jobs')
    await v.writeFile('/q/jobs/m1', 'first message\n')
    await v.writeFile('/q/jobs/m2', Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251)))
    await v.writeFile('/q/jobs/c1', 'claimed one\n')
    await v.rename('/q/jobs/c1', '/q/jobs/claimed/c1')
    await v.close()
    return queueView(o)
  }

  describe(`mount conformance: queue (${b.name})`, () => {
    afterAll(() => b.cleanup())
    describe('in-process', () => {
      for (const c of cases.vfs.filter(c => applies(c.name))) it(c.name, ctx => runMountCase(c, seeded, conformance, reason => ctx.skip(reason)))
    })

    describe.skipIf(fuseSkip)('through FUSE', () => {
      let vfs: Vfs
      let mount: TestMount
      let local: string
      let allowOtherSkip: string | undefined
      beforeAll(async () => {
        allowOtherSkip = await allowOtherSkipReason()
        vfs = createVfs({ mounts: { '/m': await seeded() }, logger: silentLogger })
        mount = await mountForTest(vfs, { allowOther: allowOtherSkip === undefined })
        local = await mkdtemp(join(tmpdir(), 'facet-queue-conformance-'))
      })
      afterAll(async () => {
        await mount?.unmount()
        await vfs?.close()
        await rm(local, { recursive: true, force: true })
      })
      for (const c of cases.fuse.filter(c => applies(c.name))) {
        it(c.name, async ctx => {
          const fixture = await discoverFixture(vfs)
          const scratch = await mkdtemp(join(local, 'case-'))
          const at = (rel = '') => (rel ? '/m/' + rel : '/m')
          const context: FuseCaseContext = { vfs, path: at, here: at, caps: FULL_OFF, fixture, skip: reason => ctx.skip(reason), dir: join(mount.dir, 'm'), local: scratch, allowOtherSkip }
          await c.run(context)
        })
      }
    })
  })
}

const FULL_OFF = { write: false, symlinks: false, hardLinks: false, specialFiles: false, xattrs: false, renameExchange: false, chmod: false, chown: false, nanosecondTimes: false, unlinkOpen: false }
