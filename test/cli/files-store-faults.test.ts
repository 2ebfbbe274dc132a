import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { fuseSkip, run, sh, testMountDir } from '../helpers/fuse.ts'
import { readBack, writeSynced } from '../helpers/mount-io.ts'
import { cannotRunCluster, startPgCluster, type PgCluster } from '../helpers/pg-cluster.ts'
import { facet } from './run.ts'
import { isMounted, killRunning, startUp, waitForLine, type Up } from './up-harness.ts'

const skip = fuseSkip ?? (await cannotRunCluster())

describe.skipIf(skip)(`facet up --files-store postgres:// through faults${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let cluster: PgCluster
  let work: string
  let env: Record<string, string>
  const dirs: string[] = []
  const mountDir = async () => {
    const dir = await testMountDir()
    dirs.push(dir)
    return dir
  }
  const mounted = (up: Up) => waitForLine(up, /^FacetFS mounted at /, 30_000)

  beforeAll(async () => {
    cluster = await startPgCluster()
  }, 60_000)
  afterAll(async () => {
    await cluster?.destroy()
  }, 60_000)
  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'facet-faults-'))
    env = { FACET_HOME: join(work, 'home'), FACET_PASSPHRASE: 'faults pass' }
  })
  afterEach(async () => {
    await killRunning()
    if (!cluster.running) await cluster.start()
    for (const dir of dirs.splice(0)) {
      if (await isMounted(dir)) await sh(`fusermount3 -uz '${dir}' || umount -l '${dir}'`)
      if (!(await isMounted(dir))) await rm(dir, { recursive: true, force: true })
    }
    await rm(work, { recursive: true, force: true })
  })

  /** A database of its own on the test's cluster, as a `--files-store` URL. */
  const freshStore = async (): Promise<string> => {
    const name = `faults_${randomBytes(4).toString('hex')}`
    const admin = new pg.Client({ connectionString: cluster.url() })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    return cluster.url().replace(/\/postgres$/, `/${name}`)
  }
  /** Resolves once `up` has written `text` to stderr; rejects when it exits first, or after `ms`. */
  const waitForStderr = (up: Up, text: string, ms = 30_000) =>
    new Promise<void>((done, fail) => {
      const finish = (err?: Error) => {
        clearTimeout(timer)
        up.child.stderr.off('data', check)
        up.child.off('exit', onExit)
        if (err) fail(err)
        else done()
      }
      const check = () => up.stderr.includes(text) && finish()
      const onExit = () => finish(new Error(`facet up exited before '${text}' on stderr:\n${up.stderr}`))
      const timer = setTimeout(() => finish(new Error(`no '${text}' on stderr within ${ms} ms:\n${up.stderr}`)), ms)
      up.child.stderr.on('data', check)
      up.child.once('exit', onExit)
      check()
    })

  it('survives a PostgreSQL restart: a write during it lands once the server is back, and writes and reads work again without remounting', async () => {
    const store = await freshStore()
    const dir = await mountDir()
    const up = startUp(['--mount', dir, '--files-store', store], { env, cwd: work })
    await mounted(up)
    const f = (name: string) => join(dir, 'files', name)
    expect(await writeSynced(f('before.txt'), 'before the restart\n')).toMatchObject({ result: 'ok' })
    expect((await readBack(f('before.txt'))).result).toBe('before the restart\n')

    await cluster.stop()
    const writing = writeSynced(f('during.txt'), 'during the restart\n')
    // a call found the server gone and is retrying
    await waitForStderr(up, 'PostgreSQL unreachable while')
    await cluster.start()
    const during = await writing
    console.log(`a write+fsync during the restart gave ${during.result} after ${during.seconds.toFixed(1)} s`)
    // it waits for the server (ok), or is answered ETIMEDOUT at the 12 s FUSE call bound while its block still waits to land
    expect(['ok', '110']).toContain(during.result)
    const after = await writeSynced(f('after.txt'), 'after the restart\n')
    console.log(`the first write+fsync after the restart gave ${after.result} after ${after.seconds.toFixed(1)} s`)
    expect(after.result).toBe('ok')
    expect((await readBack(f('after.txt'))).result).toBe('after the restart\n')
    expect((await readBack(f('during.txt'))).result).toBe('during the restart\n')
    expect((await readBack(f('before.txt'))).result).toBe('before the restart\n')
    expect(up.stderr).not.toMatch(/read-only|commit failed/)
  }, 60_000)

  it('loses only what a SIGKILLed node had not fsynced: every fsynced file is whole, the chain verifies, and its flock is released', async () => {
    const store = await freshStore()
    const dir = await mountDir()
    const first = startUp(['--mount', dir, '--files-store', store], { env, cwd: work })
    await mounted(first)
    const files = new Map<string, string>()
    for (let i = 0; i < 4; i++) {
      const content = `${i}: ${randomBytes(20_000 + i * 3000).toString('hex')}\n`
      files.set(`synced-${i}.txt`, content)
      expect(await writeSynced(join(dir, 'files', `synced-${i}.txt`), content)).toMatchObject({ result: 'ok' })
    }
    // a flock held, and a file being written without fsync, as the node dies
    const holder = spawn('flock', ['-x', join(dir, 'files', 'synced-0.txt'), '-c', 'echo locked; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] })
    const holderExited = new Promise<void>(done => holder.on('exit', () => done()))
    await new Promise<void>(done => holder.stdout.on('data', d => String(d).includes('locked') && done()))
    const unsynced = spawn('sh', ['-c', `exec 3>'${join(dir, 'files', 'unsynced.txt')}'; printf 'never fsynced' >&3; echo written; exec sleep 60`], { stdio: ['ignore', 'pipe', 'ignore'] })
    const unsyncedExited = new Promise<void>(done => unsynced.on('exit', () => done()))
    await new Promise<void>(done => unsynced.stdout.on('data', d => String(d).includes('written') && done()))
    first.child.kill('SIGKILL')
    await first.exited
    holder.kill('SIGKILL')
    unsynced.kill('SIGKILL')
    await Promise.all([holderExited, unsyncedExited])
    if (await isMounted(dir)) await sh(`fusermount3 -uz '${dir}' || umount -l '${dir}'`)

    const again = await mountDir()
    const second = startUp(['--mount', again, '--files-store', store], { env, cwd: work })
    await mounted(second)
    for (const [name, content] of files) expect((await readBack(join(again, 'files', name))).result).toBe(content)
    // the killed node's session, and with it the file lock, is gone
    expect((await run('flock', ['-n', join(again, 'files', 'synced-0.txt'), 'true'])).code).toBe(0)
    // and the new node writes
    expect(await writeSynced(join(again, 'files', 'later.txt'), 'later\n')).toMatchObject({ result: 'ok' })
    const verified = await facet(['verify', store], { env, cwd: work })
    expect(verified.stderr).toBe('')
    expect(verified.stdout).toMatch(/: ok, \d+ blocks, /)
    expect(verified.code).toBe(0)
  }, 60_000)
})
