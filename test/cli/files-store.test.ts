import { randomBytes } from 'node:crypto'
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fuseSkip, sh, testMountDir } from '../helpers/fuse.ts'
import { facet, ROOT } from './run.ts'
import { isMounted, killRunning, startUp, waitForLine, type Up } from './up-harness.ts'
import { reachPostgres } from '../helpers/pg.ts'

const PG_URL = process.env.FACET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

const { admin, reason: pgReason } = await reachPostgres(PG_URL)

/** Resolves with the mounts `facet up` lists once it prints its "mounted" line; rejects when it exits first. */
async function mounted(up: Up, timeoutMs = 30_000): Promise<string> {
  return (await waitForLine(up, /^FacetFS mounted at .+ \(mounts: (.+)\)$/, timeoutMs))[1]!
}

/** Stops `up` with SIGTERM and resolves its exit. */
async function stop(up: Up): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  up.child.kill('SIGTERM')
  return up.exited
}

const exists = (file: string) => access(file).then(() => true, () => false)

/** Looks every 20 ms until `check` holds, for at most `ms`. */
async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not so within ${ms} ms`)
    await new Promise(r => setTimeout(r, 20))
  }
}

describe.skipIf(fuseSkip)('facet up --files-store', () => {
  let work: string
  let home: string
  let env: Record<string, string>
  const dirs: string[] = []
  const mountDir = async () => {
    const dir = await testMountDir()
    dirs.push(dir)
    return dir
  }

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'facet-files-store-'))
    home = join(work, 'home')
    env = { FACET_HOME: home, FACET_PASSPHRASE: 'files store pass' }
  })

  afterEach(async () => {
    await killRunning()
    for (const dir of dirs.splice(0)) {
      if (await isMounted(dir)) await sh(`fusermount3 -uz '${dir}' || umount -l '${dir}'`)
      // never recurse into a folder that is still mounted
      if (!(await isMounted(dir))) await rm(dir, { recursive: true, force: true })
    }
    await rm(work, { recursive: true, force: true })
  })

  it('keeps /files in a log file at a path relative to the working folder, and reads it back after a remount', async () => {
    const dir = await mountDir()
    const content = `kept at a path of my choosing ${randomBytes(8).toString('hex')}\n`
    const first = startUp(['--mount', dir, '--files-store', 'stores/my-files.chain'], { env, cwd: work })
    expect(await mounted(first)).toBe('/hello, /scratch, /db, /proc, /datasets, /files')
    await writeFile(join(dir, 'files', 'note.txt'), content)
    expect(await stop(first)).toEqual({ code: 0, signal: null })
    expect(first.stdout).toBe(`FacetFS mounted at ${dir} (mounts: /hello, /scratch, /db, /proc, /datasets, /files)\nFacetFS unmounted\n`)
    expect(await isMounted(dir)).toBe(false)
    expect([await exists(join(work, 'stores', 'my-files.chain')), await exists(join(home, 'chains', 'files.chain'))]).toEqual([true, false])

    const second = startUp(['--mount', dir, '--files-store', join(work, 'stores', 'my-files.chain')], { env, cwd: work })
    expect(await mounted(second)).toBe('/hello, /scratch, /db, /proc, /datasets, /files')
    expect(await readFile(join(dir, 'files', 'note.txt'), 'utf8')).toBe(content)
    expect(await stop(second)).toEqual({ code: 0, signal: null })
    // the same store under the same trust pin: no first-use, rollback or forgery warning
    expect(second.stderr).toBe('')
    expect(await exists(join(home, 'chains', 'files.chain'))).toBe(false)
  })

  describe.skipIf(!admin)(`in PostgreSQL${admin ? '' : ` (skipped: PostgreSQL unavailable at ${PG_URL}: ${pgReason})`}`, () => {
    let schema: string
    let url: string

    beforeEach(async () => {
      schema = `facet_files_store_${randomBytes(6).toString('hex')}`
      await admin!.query(`CREATE SCHEMA ${schema}`)
      url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`
    })
    afterEach(async () => {
      await admin!.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    })
    afterAll(async () => {
      await admin?.end()
    })

    it('creates the chain in PostgreSQL on first use and reads it back exactly after a remount', async () => {
      const dir = await mountDir()
      const content = Buffer.concat([Buffer.from('kept in PostgreSQL\n'), randomBytes(200_000)])
      const first = startUp(['--mount', dir, '--files-store', url], { env, cwd: work })
      expect(await mounted(first)).toBe('/hello, /scratch, /db, /proc, /datasets, /files')
      await writeFile(join(dir, 'files', 'blob.bin'), content)
      expect(await stop(first)).toEqual({ code: 0, signal: null })
      expect(await isMounted(dir)).toBe(false)
      const { rows } = await admin!.query<{ n: string; chains: string }>(`SELECT count(*) AS n, count(DISTINCT chain_id) AS chains FROM ${schema}.facet_chain_blocks`)
      expect(Number(rows[0]!.chains)).toBe(1)
      expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(2)
      expect(await exists(join(home, 'chains', 'files.chain'))).toBe(false)

      const second = startUp(['--mount', dir, '--files-store', url], { env, cwd: work })
      expect(await mounted(second)).toBe('/hello, /scratch, /db, /proc, /datasets, /files')
      expect((await readFile(join(dir, 'files', 'blob.bin'))).equals(content)).toBe(true)
      expect(await stop(second)).toEqual({ code: 0, signal: null })
      // the same store under the same trust pin: no first-use, rollback or forgery warning
      expect(second.stderr).toBe('')
    })

    it('mounts /files read-write in a second facet up on the same store: both write, and each reads what the other closed', async () => {
      const [dirA, dirB] = [await mountDir(), await mountDir()]
      const first = startUp(['--mount', dirA, '--files-store', url], { env, cwd: work })
      await mounted(first)
      await writeFile(join(dirA, 'files', 'shared.txt'), 'written by the first node\n')
      const second = startUp(['--mount', dirB, '--files-store', url], { env, cwd: work })
      expect(await mounted(second)).toBe('/hello, /scratch, /db, /proc, /datasets, /files')
      expect(await readFile(join(dirB, 'files', 'shared.txt'), 'utf8')).toBe('written by the first node\n')
      await writeFile(join(dirB, 'files', 'shared.txt'), 'rewritten by the second node\n')
      await writeFile(join(dirB, 'files', 'new.txt'), 'made by the second node\n')
      // close-to-open: an open after the other node's close reads its content whole
      expect(await readFile(join(dirA, 'files', 'shared.txt'), 'utf8')).toBe('rewritten by the second node\n')
      expect(await readFile(join(dirA, 'files', 'new.txt'), 'utf8')).toBe('made by the second node\n')
      await writeFile(join(dirA, 'files', 'later.txt'), 'written by the first node again\n')
      expect(await readFile(join(dirB, 'files', 'later.txt'), 'utf8')).toBe('written by the first node again\n')
      // listings follow the other node's blocks through NOTIFY; no event reaches this test, so look until they arrive
      await until(async () => (await readdir(join(dirB, 'files'))).length === 3 && (await readdir(join(dirA, 'files'))).length === 3)
      expect((await readdir(join(dirA, 'files'))).sort()).toEqual(['later.txt', 'new.txt', 'shared.txt'])
      expect((await readdir(join(dirB, 'files'))).sort()).toEqual(['later.txt', 'new.txt', 'shared.txt'])
      expect(await stop(second)).toEqual({ code: 0, signal: null })
      expect(await stop(first)).toEqual({ code: 0, signal: null })
      expect([second.stderr, first.stderr]).toEqual(['', ''])
    })
  })

  it('fails with a message naming an unreachable or malformed store, its password masked, and mounts nothing', async () => {
    const dir = await mountDir()
    const cases: [string, string][] = [
      ['postgres://127.0.0.1:1/test', 'facet: cannot open /files in postgres://127.0.0.1:1/test: connect ECONNREFUSED 127.0.0.1:1\n'],
      ['postgresql://me:s3cret@127.0.0.1:1/test', 'facet: cannot open /files in postgresql://me:***@127.0.0.1:1/test: connect ECONNREFUSED 127.0.0.1:1\n'],
      ['postgres://no host/test', 'facet: cannot open /files in postgres://no host/test: invalid PostgreSQL URL (expected postgres://[USER[:PASSWORD]@]HOST[:PORT]/DB)\n'],
    ]
    const missing = new URL(PG_URL)
    missing.pathname = '/facet_no_such_db'
    if (admin) cases.push([missing.href, `facet: cannot open /files in ${missing.href}: database "facet_no_such_db" does not exist\n`])
    for (const [store, stderr] of cases) {
      expect(await facet(['up', '--no-graphql', '--mount', dir, '--files-store', store], { env, cwd: work })).toEqual({ code: 1, stdout: '', stderr })
      expect(await isMounted(dir)).toBe(false)
    }
    expect(await facet(['up', '--no-graphql', '--mount', dir, '--files-store', ''], { env, cwd: work })).toEqual({ code: 2, stdout: '', stderr: 'facet: --files-store needs a log file path or a postgres://HOST/DB URL\n' })
    const config = join(ROOT, 'examples', 'hello', 'facet.config.ts')
    expect(await facet(['up', '--no-graphql', '--mount', dir, '--config', config, '--files-store', 'x.chain'], { env, cwd: work })).toEqual({
      code: 2,
      stdout: '',
      stderr: `facet: --files-store is for the built-in demo's /files; ${config} says where its own chains live\n`,
    })
    expect(await isMounted(dir)).toBe(false)
  })
})
