import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fuseSkip, run, sh, testMountDir } from '../helpers/fuse.ts'
import { readBack, writeSynced } from '../helpers/mount-io.ts'
import { cannotMakeNetns, makeNetns, type Netns } from '../helpers/netns.ts'
import { cannotRunCluster, startPgCluster, type PgCluster } from '../helpers/pg-cluster.ts'
import { facet } from './run.ts'
import { isMounted, killRunning, startUp, waitForLine, type Up } from './up-harness.ts'

const skip = fuseSkip ?? (await cannotMakeNetns()) ?? (await cannotRunCluster())
/** The two cut-off cases take some 40 s more (a call's 10–12 s bound, the 25 s dead-node bound, the rejoins): run them with FACET_TEST_CLUSTER_CUT=1. */
const withCut = process.env.FACET_TEST_CLUSTER_CUT === '1'

/** One machine of the cluster: a network namespace, a FacetFS home with its identity, and the facet up serving its mount. */
interface Node {
  readonly name: 'alice' | 'bob' | 'carol'
  readonly netns: Netns
  readonly env: Record<string, string>
  up: Up
  dir: string
}

/** Runs `check` until it holds, for at most `ms`; resolves the seconds it took. */
async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<number> {
  const start = Date.now()
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`${what}: not so within ${ms} ms`)
    await new Promise(r => setTimeout(r, 100))
  }
  return (Date.now() - start) / 1000
}

/** Seconds since `start`, one decimal. */
const since = (start: number) => ((Date.now() - start) / 1000).toFixed(1)

describe.skipIf(skip)(`three nodes writing one /files in PostgreSQL (facet up --files-store postgres://, each in its own network namespace)${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let cluster: PgCluster | undefined
  let work = ''
  let db = ''
  const nodes: Node[] = []
  const dirs: string[] = []
  const holders: ChildProcess[] = []
  const PASS = 'cluster pass'
  const alice = () => nodes[0]!
  const bob = () => nodes[1]!
  const carol = () => nodes[2]!
  const url = (n: Node) => cluster!.url(n.netns.hostIp).replace(/\/postgres$/, `/${db}`)
  const f = (n: Node, path: string) => join(n.dir, 'files', path)

  /** Starts `n`'s facet up in its namespace on a fresh mount folder; resolves once mounted. */
  const mount = async (n: Node): Promise<void> => {
    n.dir = await testMountDir()
    dirs.push(n.dir)
    n.up = startUp(['--mount', n.dir, '--files-store', url(n)], { env: n.env, cwd: work, wrap: n.netns.wrap })
    await waitForLine(n.up, /^FacetFS mounted at /, 30_000)
  }
  const cli = async (args: string[], n: Node, input?: string) => {
    const r = await facet(args, { env: n.env, cwd: work, ...(input !== undefined ? { input } : {}) })
    if (r.code !== 0) throw new Error(`facet ${args.join(' ')} as ${n.name} ended with ${r.code}: ${r.stderr}`)
    return r.stdout
  }
  /** What a mount holds: every path with its kind and size, then every file's md5. */
  const tree = async (n: Node): Promise<string> => {
    const r = await sh(`cd '${n.dir}/files' && find . -mindepth 1 -printf '%P %y %s\\n' | LC_ALL=C sort && find . -type f -exec md5sum {} + | LC_ALL=C sort -k2`, { timeoutMs: 30_000 })
    if (r.code !== 0) throw new Error(`listing ${n.name}'s mount ended with ${r.code}: ${r.stderr}`)
    return r.stdout
  }
  /**
   * Waits until the three mounts list the same tree (a listing may be one NOTIFY behind),
   * checks `facet verify` is clean, and resolves the tree.
   */
  const agreed = async (): Promise<string> => {
    let seen: string[] = []
    await until(async () => {
      seen = await Promise.all(nodes.map(tree))
      return seen.every(t => t === seen[0])
    }, 15_000, 'the three mounts list the same tree').catch(err => {
      throw new Error(`${(err as Error).message}\n${nodes.map((n, i) => `--- ${n.name}\n${seen[i]}`).join('\n')}`)
    })
    const verified = await facet(['verify', url(alice())], { env: alice().env, cwd: work })
    expect(verified.stderr).toBe('')
    expect(verified.stdout).toMatch(/: ok, \d+ blocks, \d+ events, head \d+, .*pinned here\n$/)
    expect(verified.code).toBe(0)
    return seen[0]!
  }

  beforeAll(async () => {
    const start = Date.now()
    work = await mkdtemp(join(tmpdir(), 'facet-cluster-'))
    const nets = await Promise.all([makeNetns(), makeNetns(), makeNetns()])
    for (const [i, name] of (['alice', 'bob', 'carol'] as const).entries()) {
      nodes.push({ name, netns: nets[i]!, env: { FACET_HOME: join(work, name), FACET_PASSPHRASE: PASS }, up: undefined!, dir: '' })
    }
    cluster = await startPgCluster({ listen: nets.map(n => n.hostIp), clients: nets.map(n => n.cidr) })
    db = `cluster_${randomBytes(4).toString('hex')}`
    const admin = new pg.Client({ connectionString: cluster.url() })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${db}`)
    await admin.end()
    await Promise.all(nodes.map(n => cli(['identity', 'create', 'default'], n)))
    // alice's facet up makes the chain; she authorises bob and carol from their cards while it runs
    await mount(alice())
    for (const n of [bob(), carol()]) {
      const card = await cli(['identity', 'export', 'default'], n)
      await cli(['identity', 'import', '-', '--as', n.name], alice(), card)
      await cli(['share', '/', '--with', n.name, '--write', '--files-store', url(alice())], alice())
    }
    await Promise.all([mount(bob()), mount(carol())])
    console.log(`cluster: three nodes up in ${since(start)} s`)
  }, 120_000)

  afterAll(async () => {
    for (const h of holders) if (h.exitCode === null && h.signalCode === null) process.kill(-h.pid!, 'SIGKILL')
    await killRunning()
    for (const dir of dirs.splice(0)) {
      if (await isMounted(dir)) await sh(`fusermount3 -uz '${dir}' || umount -l '${dir}'`)
      if (!(await isMounted(dir))) await rm(dir, { recursive: true, force: true })
    }
    await cluster?.destroy()
    for (const n of nodes) await n.netns.destroy()
    if (work) await rm(work, { recursive: true, force: true })
  }, 60_000)

  it('creates 20 files from each node at once in one folder: every node lists the 60, none lost or doubled, each with its content', async () => {
    const start = Date.now()
    expect((await run('mkdir', [f(alice(), 'many')])).code).toBe(0)
    const loops = await Promise.all(
      nodes.map(n => sh(`cd '${f(n, 'many')}' && i=1; while [ $i -le 20 ]; do printf '%s %s\\n' ${n.name} $i > ${n.name}-$i.txt || exit 1; i=$((i+1)); done`, { timeoutMs: 60_000 })),
    )
    expect(loops.map(l => [l.code, l.stderr])).toEqual(nodes.map(() => [0, '']))
    console.log(`cluster: 60 creates from three nodes at once in ${since(start)} s`)
    const names = nodes.flatMap(n => Array.from({ length: 20 }, (_, i) => `${n.name}-${i + 1}.txt`)).sort()
    for (const n of nodes) expect((await run('ls', ['-1', f(n, 'many')])).stdout).toBe(names.join('\n') + '\n')
    const content = names.map(name => name.replace(/^(\w+)-(\d+)\.txt$/, '$1 $2\n')).join('')
    expect((await sh(`cd '${f(bob(), 'many')}' && cat ${names.join(' ')}`)).stdout).toBe(content)
    const t = await agreed()
    expect(t.split('\n').filter(l => /^many\/\S+ f \d+$/.test(l)).length).toBe(60)
  }, 90_000)

  it('lets exactly one of two nodes racing to rename one file win; the other fails with ENOENT', async () => {
    expect((await run('mkdir', [f(alice(), 'race')])).code).toBe(0)
    for (let round = 0; round < 3; round++) {
      expect((await sh(`printf 'round ${round}\\n' > '${f(alice(), `race/x${round}.txt`)}'`)).code).toBe(0)
      // both racers have looked the file up
      for (const n of [bob(), carol()]) expect((await readBack(f(n, `race/x${round}.txt`))).result).toBe(`round ${round}\n`)
      const [b, c] = await Promise.all([bob(), carol()].map(n => run('mv', [f(n, `race/x${round}.txt`), f(n, `race/by-${n.name}-${round}.txt`)], { timeoutMs: 30_000 })))
      const results = [b!, c!].map(r => (r.code === 0 ? 'won' : /No such file or directory/.test(r.stderr) ? 'ENOENT' : `${r.code} ${r.stderr}`))
      expect(results.sort()).toEqual(['ENOENT', 'won'])
      const winner = b!.code === 0 ? bob() : carol()
      expect((await readBack(f(alice(), `race/by-${winner.name}-${round}.txt`))).result).toBe(`round ${round}\n`)
    }
    const t = await agreed()
    const raced = t.split('\n').filter(l => l.startsWith('race/') && / f \d+$/.test(l))
    expect(raced.map(l => l.replace(/by-(bob|carol)-/, 'by-?-')).sort()).toEqual(['race/by-?-0.txt f 8', 'race/by-?-1.txt f 8', 'race/by-?-2.txt f 8'])
  }, 60_000)

  it('reads on another node, whole, what cat > file wrote once it returned (close-to-open), also over content that node had read before', async () => {
    const first = randomBytes(150_000).toString('hex') + '\n'
    const second = `rewritten by alice: ${randomBytes(1000).toString('hex')}\n`
    for (const content of [first, second]) {
      const wrote = await run('sh', ['-c', `cat > '${f(alice(), 'c2o.txt')}'`], { input: content, timeoutMs: 30_000 })
      expect([wrote.code, wrote.stderr]).toEqual([0, ''])
      for (const n of [bob(), carol()]) {
        const read = await run('cat', [f(n, 'c2o.txt')], { timeoutMs: 30_000 })
        expect(read.code).toBe(0)
        expect(read.stdout.length).toBe(content.length)
        expect(read.stdout === content).toBe(true)
      }
    }
    const t = await agreed()
    expect(t).toContain(`c2o.txt f ${second.length}\n`)
  }, 60_000)

  it("keeps flock -n on other nodes failing while a node holds the file, and frees it at once when that node's facet up is SIGKILLed", async () => {
    expect((await sh(`printf 'locked by carol\\n' > '${f(carol(), 'lock.txt')}'`)).code).toBe(0)
    const holder = spawn('flock', ['-x', f(carol(), 'lock.txt'), '-c', 'echo locked; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'], detached: true })
    holders.push(holder)
    await new Promise<void>((done, fail) => {
      holder.stdout.on('data', d => String(d).includes('locked') && done())
      holder.once('exit', code => fail(new Error(`flock on carol ended with ${code}`)))
    })
    for (const n of [alice(), bob()]) expect((await run('flock', ['-n', f(n, 'lock.txt'), 'true'])).code).toBe(1)
    const killed = Date.now()
    carol().up.child.kill('SIGKILL')
    await carol().up.exited
    const freed = await until(async () => (await run('flock', ['-n', f(bob(), 'lock.txt'), 'true'])).code === 0, 10_000, "carol's flock freed")
    console.log(`cluster: carol's flock was free on bob ${freed.toFixed(2)} s after her facet up was SIGKILLed`)
    expect((await run('flock', ['-n', f(alice(), 'lock.txt'), 'true'])).code).toBe(0)
    process.kill(-holder.pid!, 'SIGKILL')
    await sh(`fusermount3 -uz '${carol().dir}' || umount -l '${carol().dir}'`)
    // carol's machine comes back: she mounts again and writes
    await mount(carol())
    expect(await writeSynced(f(carol(), 'back.txt'), 'carol is back\n')).toMatchObject({ result: 'ok' })
    expect((await readBack(f(bob(), 'back.txt'))).result).toBe('carol is back\n')
    await agreed()
  }, 90_000)

  it.runIf(withCut)('fails the calls of a node cut off from the network with EIO within its bound, then the node rejoins, sees what others wrote meanwhile, and writes', async () => {
    // alice's change takes the write lease from bob if he held it: bob is cut off holding nothing
    expect((await run('mkdir', [f(alice(), 'cut')])).code).toBe(0)
    await bob().netns.down()
    const [made, written, meanwhile] = await Promise.all([
      run('python3', ['-c', `import os,sys,time\nt=time.time()\ntry: os.mkdir(sys.argv[1]); r='ok'\nexcept OSError as e: r=str(e.errno)\nprint(r, time.time()-t)`, f(bob(), 'cut/by-bob')], { timeoutMs: 60_000 }),
      writeSynced(f(bob(), 'cut/bob.txt'), 'written while cut off\n'),
      writeSynced(f(alice(), 'cut/meanwhile.txt'), 'written meanwhile by alice\n'),
    ])
    const [mkdirErrno, mkdirSeconds] = made.stdout.trim().split(' ')
    console.log(`cluster: cut off, bob's mkdir gave ${mkdirErrno} after ${Number(mkdirSeconds).toFixed(1)} s, his write+fsync ${written.result} after ${written.seconds.toFixed(1)} s; alice's write meanwhile ${meanwhile.result} after ${meanwhile.seconds.toFixed(1)} s`)
    // EIO once PostgreSQL does not answer within 10 s, or ETIMEDOUT at the 12 s FUSE bound; with room for a loaded machine
    expect(['5', '110']).toContain(mkdirErrno)
    expect(['5', '110']).toContain(written.result)
    expect(Math.max(Number(mkdirSeconds), written.seconds)).toBeLessThan(20)
    expect(meanwhile.result).toBe('ok')
    expect(await writeSynced(f(carol(), 'cut/carol.txt'), 'written meanwhile by carol\n')).toMatchObject({ result: 'ok' })

    await bob().netns.up()
    const back = Date.now()
    await until(async () => (await readBack(f(bob(), 'cut/meanwhile.txt'), 20_000)).result === 'written meanwhile by alice\n', 40_000, 'bob catches up')
    expect((await readBack(f(bob(), 'cut/carol.txt'))).result).toBe('written meanwhile by carol\n')
    await until(async () => (await writeSynced(f(bob(), 'cut/after.txt'), 'written by bob after the cut\n', 20_000)).result === 'ok', 40_000, "bob's writes work again")
    console.log(`cluster: link back, bob caught up and wrote again within ${since(back)} s`)
    expect((await readBack(f(carol(), 'cut/after.txt'))).result).toBe('written by bob after the cut\n')
    await agreed()
  }, 120_000)

  it.runIf(withCut)('lets the other nodes write again within the 25 s dead-node bound when a node is cut off holding the write lease', async () => {
    // bob's change leaves him holding the lease (until 2 s idle, or asked): he is cut off with it
    expect((await run('mkdir', [f(bob(), 'cut-holding')])).code).toBe(0)
    await bob().netns.down()
    const cut = Date.now()
    try {
      const waited = await until(async () => (await writeSynced(f(alice(), 'cut-holding/alice.txt'), 'written while bob holds the lease\n', 30_000)).result === 'ok', 45_000, "alice's write lands")
      console.log(`cluster: bob cut off holding the lease; alice's writes worked again after ${waited.toFixed(1)} s`)
      expect(waited).toBeLessThan(35)
      expect(await writeSynced(f(carol(), 'cut-holding/carol.txt'), 'and carol\n')).toMatchObject({ result: 'ok' })
    } finally {
      await bob().netns.up()
    }
    console.log(`cluster: link back after ${since(cut)} s`)
    await until(async () => (await writeSynced(f(bob(), 'cut-holding/bob.txt'), 'bob again\n', 20_000)).result === 'ok', 40_000, "bob's writes work again")
    expect((await readBack(f(bob(), 'cut-holding/carol.txt'))).result).toBe('and carol\n')
    await agreed()
  }, 150_000)

  it('keeps every node up through a PostgreSQL restart with creates in flight on all three: a create fails with EIO at worst, and every node writes after', async () => {
    expect((await run('mkdir', [f(alice(), 'inflight')])).code).toBe(0)
    const loops = Promise.all(
      nodes.map(n => sh(`cd '${f(n, 'inflight')}' && i=1; while [ $i -le 30 ]; do printf '%s %s\\n' ${n.name} $i > ${n.name}-$i.txt || echo "failed $i"; i=$((i+1)); done`, { timeoutMs: 60_000 })),
    )
    // the restart comes once the loops are under way
    await until(async () => (await run('ls', [f(alice(), 'inflight')])).stdout.split('\n').length > 6, 20_000, 'the creates are under way')
    await cluster!.stop()
    await cluster!.start()
    const done = await loops
    const failed = done.map(d => d.stdout.split('\n').filter(Boolean).length)
    console.log(`cluster: creates failed through the restart: ${nodes.map((n, i) => `${n.name} ${failed[i]}`).join(', ')} of 30 each`)
    for (const [i, d] of done.entries()) {
      expect(d.code).toBe(0)
      for (const line of d.stderr.split('\n').filter(Boolean)) expect(line, `${nodes[i]!.name}'s facet up said:\n${nodes[i]!.up.stderr}`).toMatch(/Input\/output error$/)
    }
    for (const n of nodes) {
      expect(n.up.child.exitCode, `${n.name}'s facet up said:\n${n.up.stderr}`).toBe(null)
      expect(await writeSynced(f(n, `inflight/after-${n.name}.txt`), 'after the restart\n', 30_000), `${n.name}'s facet up said:\n${n.up.stderr}`).toMatchObject({ result: 'ok' })
    }
    await agreed()
  }, 120_000)

  it('compacts the chain in place with facet compact URL while the three stay mounted and bob writes: the rows below are gone, every node lists the same tree, and writes on', async () => {
    const before = (await agreed()).split('\n').filter(Boolean)
    expect((await run('mkdir', [f(bob(), 'during')])).code).toBe(0)
    const writing = sh(`cd '${f(bob(), 'during')}' && i=1; while [ $i -le 15 ]; do printf 'bob %s\\n' $i > b-$i.txt || exit 1; i=$((i+1)); done`, { timeoutMs: 60_000 })
    const compacted = await facet(['compact', url(alice())], { env: alice().env, cwd: work })
    expect(compacted.stderr).toBe('')
    expect(compacted.code).toBe(0)
    const from = Number(/ from seq (\d+)\n$/.exec(compacted.stdout)?.[1])
    const wrote = await writing
    expect([wrote.code, wrote.stderr]).toEqual([0, ''])
    const client = new pg.Client({ connectionString: url(alice()) })
    await client.connect()
    try {
      expect(Number((await client.query<{ lo: string }>('SELECT min(seq) AS lo FROM facet_chain_blocks')).rows[0]!.lo)).toBe(from)
    } finally {
      await client.end()
    }
    for (const n of nodes) expect(await writeSynced(f(n, `after-compact-${n.name}.txt`), `${n.name} after the compaction\n`), `${n.name}'s facet up said:\n${n.up.stderr}`).toMatchObject({ result: 'ok' })
    const after = (await agreed()).split('\n').filter(Boolean)
    // what was there stays, byte for byte, with what came during and after
    for (const line of before) expect(after).toContain(line)
    expect(after.filter(l => /^during\/b-\d+\.txt f \d+$/.test(l)).length).toBe(15)
    for (const n of nodes) expect((await readBack(f(bob(), `after-compact-${n.name}.txt`))).result).toBe(`${n.name} after the compaction\n`)
  }, 90_000)

  it('survives a PostgreSQL restart on every node: each writes, and reads what the others wrote, after it', async () => {
    const said = nodes.map(n => n.up.stderr.length)
    expect(await writeSynced(f(alice(), 'before-restart.txt'), 'before the restart\n')).toMatchObject({ result: 'ok' })
    const start = Date.now()
    await cluster!.stop()
    await cluster!.start()
    console.log(`cluster: PostgreSQL restarted in ${since(start)} s`)
    for (const n of nodes) {
      const w = await writeSynced(f(n, `after-restart-${n.name}.txt`), `written by ${n.name} after the restart\n`)
      console.log(`cluster: ${n.name}'s first write+fsync after the restart gave ${w.result} after ${w.seconds.toFixed(1)} s`)
      expect(w.result, `${n.name}'s facet up said:\n${n.up.stderr}`).toBe('ok')
      expect((await run('mkdir', [f(n, `dir-after-restart-${n.name}`)])).code).toBe(0)
    }
    for (const n of nodes) for (const m of nodes) expect((await readBack(f(n, `after-restart-${m.name}.txt`))).result).toBe(`written by ${m.name} after the restart\n`)
    await agreed()
    for (const [i, n] of nodes.entries()) expect(n.up.stderr.slice(said[i])).not.toMatch(/read-only|commit failed/)
  }, 90_000)
})
