import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity } from '../../src/crypto/identity.ts'
import { fuseSkip, run, sh, testMountDir } from '../helpers/fuse.ts'
import { openWriter, readBack, writeSynced, type OpenWriter } from '../helpers/mount-io.ts'
import { cannotMakeNetns, makeNetns, type Netns } from '../helpers/netns.ts'
import { cannotRunCluster, startPgCluster, type PgCluster } from '../helpers/pg-cluster.ts'
import { isMounted, killRunning, startUp, waitForLine, type Up } from './up-harness.ts'

const skip = fuseSkip ?? (await cannotMakeNetns()) ?? (await cannotRunCluster())

/** Runs `check` until it holds, for at most `ms`; resolves the seconds it took. */
async function until(check: () => Promise<boolean>, ms: number): Promise<number> {
  const start = Date.now()
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`not so within ${ms} ms`)
    await new Promise(r => setTimeout(r, 200))
  }
  return (Date.now() - start) / 1000
}

describe.skipIf(skip)(`facet up --files-store postgres:// on a node cut off from the network${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let netns: Netns | undefined
  let cluster: PgCluster | undefined
  let work = ''
  const dirs: string[] = []
  const writers: OpenWriter[] = []
  const children: ChildProcess[] = []
  /** A lone writer of a chain in `table` (no shared writers: it holds the chain's advisory lock), served by FUSE from the namespace. */
  const loneWriter = async (store: string, table: string): Promise<string> => {
    const dir = await testMountDir()
    dirs.push(dir)
    const home = await mkdtemp(join(work, 'lone-'))
    const seeds = Buffer.from(generateIdentity('tester').seeds).toString('hex')
    const [cmd, ...args] = netns!.wrap([process.execPath, '--import', 'tsx', new URL('../chain/lock-node.ts', import.meta.url).pathname, store, table, home, seeds, 'writer', dir])
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    children.push(child)
    let err = ''
    child.stderr.on('data', d => (err += d))
    await new Promise<void>((done, fail) => {
      child.stdout.on('data', d => String(d).includes('mounted') && done())
      child.once('exit', () => fail(new Error(`the lone writer ended before mounting: ${err}`)))
    })
    return dir
  }
  const up = async (store: string, options: { cutOff?: boolean } = {}): Promise<{ up: Up; dir: string }> => {
    const dir = await testMountDir()
    dirs.push(dir)
    const env = { FACET_HOME: join(work, 'home'), FACET_PASSPHRASE: 'netcut pass' }
    const u = startUp(['--mount', dir, '--files-store', store], { env, cwd: work, ...(options.cutOff ? { wrap: netns!.wrap } : {}) })
    await waitForLine(u, /^FacetFS mounted at /, 30_000)
    return { up: u, dir }
  }
  /** A database of its own on the cluster; its name. */
  const freshStore = async (): Promise<string> => {
    const name = `netcut_${randomBytes(4).toString('hex')}`
    const admin = new pg.Client({ connectionString: cluster!.url() })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    return name
  }

  beforeAll(async () => {
    netns = await makeNetns()
    cluster = await startPgCluster({ listen: [netns.hostIp], clients: [netns.cidr] })
    work = await mkdtemp(join(tmpdir(), 'facet-store-netcut-'))
  }, 60_000)
  afterAll(async () => {
    for (const w of writers) w.kill()
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await killRunning()
    for (const dir of dirs.splice(0)) {
      if (await isMounted(dir)) await sh(`fusermount3 -uz '${dir}' || umount -l '${dir}'`)
      if (!(await isMounted(dir))) await rm(dir, { recursive: true, force: true })
    }
    await cluster?.destroy()
    await netns?.destroy()
    if (work) await rm(work, { recursive: true, force: true })
  }, 60_000)

  it('fails the calls of a cut-off node within the 12 s FUSE bound (a commit ETIMEDOUT, a read EIO), then catches up and writes again once the link is back', async () => {
    const [own, shared] = [await freshStore(), await freshStore()]
    const url = (db: string, host?: string) => cluster!.url(host).replace(/\/postgres$/, `/${db}`)
    // in the namespace: the only writer of one store, and a second writer of another whose first writer is here
    const writer = await up(url(own, netns!.hostIp), { cutOff: true })
    const here = await up(url(shared))
    const node = await up(url(shared, netns!.hostIp), { cutOff: true })
    const lone = await loneWriter(url(own, netns!.hostIp), 'lone_chain')
    const w = (name: string) => join(writer.dir, 'files', name)
    const h = (name: string) => join(here.dir, 'files', name)
    const f = (name: string) => join(node.dir, 'files', name)
    // a file the lone writer keeps open across the cut
    const open = openWriter(w('kept-open.txt'))
    writers.push(open)
    expect((await open.write('before the cut\n')).result).toBe('ok')
    const loneOpen = openWriter(join(lone, 'c', 'kept-open.txt'))
    writers.push(loneOpen)
    expect((await loneOpen.write('before the cut\n')).result).toBe('ok')
    // every facet up on a store writes it
    expect(await writeSynced(f('mine.txt'), 'mine\n')).toMatchObject({ result: 'ok' })
    expect(await writeSynced(h('unread.txt'), 'the other node has not read this yet\n')).toMatchObject({ result: 'ok' })
    // the other node knows of the file (its name), not of its content
    await until(async () => (await run('ls', [join(node.dir, 'files')])).stdout.includes('unread.txt'), 15_000)

    await netns!.down()
    const [written, read, meanwhile, loneWritten] = await Promise.all([open.write('written while cut off\n'), readBack(f('unread.txt')), writeSynced(h('meanwhile.txt'), 'written meanwhile\n'), loneOpen.write('written while cut off\n')])
    console.log(`cut off: write+fsync gave errno ${written.result} after ${written.seconds.toFixed(1)} s on the only facet up of its store, ${loneWritten.result} after ${loneWritten.seconds.toFixed(1)} s on a single writer (advisory lock); the other node's read gave errno ${read.result} after ${read.seconds.toFixed(1)} s`)
    // a read that needs the database fails with EIO after its 10 s. The only facet up of its store answers its write+fsync
    // ETIMEDOUT at the 12 s FUSE bound when it still held the write lease at the cut (its block waits on the dead link),
    // or EIO after the 10 s connect bound when it had given the lease back idle (it cannot take it again); either way the
    // changes stay pending and land once the link is back (checked below)
    expect(read.result).toBe('5')
    expect(['110', '5']).toContain(written.result)
    expect(loneWritten.result).toBe('110')
    // with room for a loaded machine
    expect(Math.max(read.seconds, written.seconds)).toBeLessThan(20)
    expect(meanwhile.result).toBe('ok')

    await netns!.up()
    const back = Date.now()
    const caughtUp = await until(async () => (await readBack(f('meanwhile.txt'), 20_000)).result === 'written meanwhile\n', 40_000).catch(err => {
      throw new Error(`the node did not catch up: ${(err as Error).message}\n${node.up.stderr}`)
    })
    const nodeWrites = await until(async () => (await writeSynced(f('back.txt'), 'its own write\n', 20_000)).result === 'ok', 40_000)
    const writes = await until(async () => (await writeSynced(w('after.txt'), 'written after the cut\n', 20_000)).result === 'ok', 40_000).catch(err => {
      throw new Error(`the writer did not write again: ${(err as Error).message}\n${writer.up.stderr}`)
    })
    console.log(`link back: the other node saw the file written meanwhile after ${caughtUp.toFixed(1)} s and wrote after ${(caughtUp + nodeWrites).toFixed(1)} s; the only facet up of its store wrote again ${((Date.now() - back) / 1000).toFixed(1)} s after`)
    expect(await open.close()).toBe('ok')
    // the lone writer takes its advisory lock again (ending its old session if the server still has it)
    await until(async () => (await writeSynced(join(lone, 'c', 'after.txt'), 'written after the cut\n', 20_000)).result === 'ok', 40_000)
    expect(await loneOpen.close()).toBe('ok')
    expect((await readBack(join(lone, 'c', 'kept-open.txt'))).result).toBe('before the cut\nwritten while cut off\n')
    await until(async () => (await readBack(h('back.txt'))).result === 'its own write\n', 20_000)
    expect((await readBack(f('unread.txt'))).result).toBe('the other node has not read this yet\n')
    // the block that was waiting when the link went down landed: nothing written was lost
    expect((await readBack(w('kept-open.txt'))).result).toBe('before the cut\nwritten while cut off\n')
    expect((await readBack(w('after.txt'))).result).toBe('written after the cut\n')
    expect(writer.up.stderr).not.toMatch(/read-only|commit failed/)
  }, 120_000)
})
