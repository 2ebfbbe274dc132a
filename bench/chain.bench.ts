import { readFile, stat } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { generateIdentity, type Identity } from '../src/crypto/identity.ts'
import { Chain } from '../src/chain/store.ts'
import { chainMount } from '../src/chain/mount.ts'
import { mountFuse } from '../src/fuse/index.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import { memoryMount } from '../src/vfs/memory.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { exec, median, nodeChild, timeCommand, type BenchContext } from './lib.ts'
import { captureMountOptions, mountBareFuse } from './baselines/bare-fuse.ts'

interface Sizes {
  seqMiB: number
  smallFiles: number
  openEvents: number
  reps: number
}
const FULL: Sizes = { seqMiB: 256, smallFiles: 10_000, openEvents: 100_000, reps: 3 }
const QUICK: Sizes = { seqMiB: 32, smallFiles: 1_000, openEvents: 10_000, reps: 1 }

/** Child script: writes `count` small files into a folder, timed inside the child. */
const SMALL = `
import { writeFileSync, mkdirSync } from 'node:fs'
const [dir, count] = process.argv.slice(1)
mkdirSync(dir, { recursive: true })
const t = process.hrtime.bigint()
for (let i = 0; i < Number(count); i++) writeFileSync(dir + '/f' + i + '.txt', 'small file number ' + i + '\\n')
console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - t) / 1e6 }))
`

async function ensureGocryptfs(b: BenchContext): Promise<boolean> {
  try {
    await exec('gocryptfs', ['-version'])
    return true
  } catch {
    b.log('gocryptfs missing: apt-get install -y gocryptfs')
    try {
      await exec('apt-get', ['install', '-y', '-q', 'gocryptfs'], { timeoutMs: 300_000, env: { DEBIAN_FRONTEND: 'noninteractive' } })
      return true
    } catch (err) {
      b.log(`could not install gocryptfs: ${(err as Error).message.split('\n')[0]}`)
      return false
    }
  }
}

/** One target folder with a way to drop its page cache (remount) between write and read. */
interface Side {
  name: string
  dir: string
  remount(): Promise<void>
}

async function measure(b: BenchContext, side: Side, s: Sizes): Promise<{ write: number; read: number; small: number; ls: number }> {
  const file = join(side.dir, 'seq.bin')
  const writes: number[] = []
  const reads: number[] = []
  for (let r = 0; r < s.reps; r++) {
    writes.push(await timeCommand('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${s.seqMiB}`, 'conv=fsync', 'status=none']))
    await side.remount()
    reads.push(await timeCommand('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'status=none']))
  }
  await exec('rm', ['-f', file])
  const { ms: smallMs } = await nodeChild<{ ms: number }>(SMALL, [join(side.dir, 'small'), String(s.smallFiles)], { timeoutMs: 600_000 })
  await exec('sync', [])
  await side.remount()
  const ls = await timeCommand('ls', ['-lR', join(side.dir, 'small')])
  const mbps = (ms: number) => (s.seqMiB * 1.048576) / (ms / 1000)
  b.log(`${side.name}: write ${writes.map(w => w.toFixed(0)).join('/')} ms, read ${reads.map(w => w.toFixed(0)).join('/')} ms, ${s.smallFiles} files ${smallMs.toFixed(0)} ms, ls -lR ${ls.toFixed(0)} ms`)
  return { write: mbps(median(writes)), read: mbps(median(reads)), small: s.smallFiles / (smallMs / 1000), ls }
}

/**
 * Opening a chain of N events against hashing the same bytes. A function of its own, so the
 * big chain it builds is garbage once it returns (a block of the caller's async frame keeps
 * its values alive, and a big live heap slows every later garbage collection).
 */
async function measureOpen(b: BenchContext, s: Sizes, id: Identity, home: string): Promise<void> {
  const path = join(home, 'open.chain')
  const chain = await Chain.create(path, { identity: id, home, trust: false })
  const files = Math.ceil(s.openEvents / 2)
  for (let i = 0; i < files; i++) {
    const n = chain.make(chain.root, `f${i}`, 'file', 0o644, { uid: 0, gid: 0 })
    await chain.write(n, 0, Buffer.from(`content of file ${i}\n`))
    if (i % 1000 === 999) await chain.sync()
  }
  await chain.close()
  const opens: number[] = []
  const hashes: number[] = []
  let events = 0
  for (let r = 0; r < Math.max(3, s.reps); r++) {
    let t = performance.now()
    const c = await Chain.open(path, { identity: id, home, trust: false, readOnly: true })
    opens.push(performance.now() - t)
    events = c.report.events
    await c.close()
    t = performance.now()
    createHash('sha256').update(await readFile(path)).digest()
    hashes.push(performance.now() - t)
  }
  const size = (await stat(path)).size
  b.row({ figure: `open a chain of ${events} events (${(size / 2 ** 20).toFixed(1)} MiB, verify all)`, value: median(opens), unit: 'ms', baseline: 'read + sha256 of the log', baselineValue: median(hashes), higherIsBetter: false })
}

/** Encrypted chains: sequential I/O, small files and `ls -lR` through FUSE against gocryptfs and the native disk; opening a big chain against hashing it. */
export default async function chainBench(b: BenchContext): Promise<void> {
  const s = b.quick ? QUICK : FULL
  const id = (({ seeds: _s, ...rest }) => rest)(generateIdentity('bench'))
  const home = b.tmpdir('facet-chain-bench-')

  await measureOpen(b, s, id, home)

  // FUSE sides
  const chainPath = join(home, 'files.chain')
  let chain = await Chain.create(chainPath, { identity: id, home })
  let vfs = createVfs({ mounts: { '/': chainMount(chain) }, logger: silentLogger })
  const oursDir = b.tmpdir('facet-chain-mnt-')
  const captured = await captureMountOptions(() => mountFuse(vfs, oursDir))
  let ours = captured.result
  const adapterOpts = captured.mounts.find(m => m.mountpoint === oursDir)?.opts ?? {}
  b.defer(async () => {
    await ours.unmount()
    await vfs.close()
  })
  const sides: Side[] = [
    {
      name: 'chain',
      dir: oursDir,
      remount: async () => {
        await ours.unmount()
        await vfs.close()
        chain = await Chain.open(chainPath, { identity: id, home })
        vfs = createVfs({ mounts: { '/': chainMount(chain) }, logger: silentLogger })
        ours = await mountFuse(vfs, oursDir)
      },
    },
  ]
  if (await ensureGocryptfs(b)) {
    const cipher = b.tmpdir('facet-gocrypt-cipher-')
    const plain = b.tmpdir('facet-gocrypt-plain-')
    await exec('gocryptfs', ['-init', '-q', '-extpass', 'echo benchpass', '-scryptn', '10', cipher])
    const mountG = () => exec('gocryptfs', ['-q', '-extpass', 'echo benchpass', cipher, plain])
    await mountG()
    b.defer(() => exec('fusermount', ['-uz', plain]).catch(() => {}))
    sides.push({
      name: 'gocryptfs',
      dir: plain,
      remount: async () => {
        await exec('fusermount', ['-u', plain])
        await mountG()
      },
    })
  }
  const native = b.tmpdir('facet-native-')
  sides.push({ name: 'native disk', dir: native, remount: async () => exec('sync', []).then(() => {}) })

  const results = new Map<string, Awaited<ReturnType<typeof measure>>>()
  for (const side of sides) results.set(side.name, await measure(b, side, s))
  const ch = results.get('chain')!

  // the ceiling of any reader in this process: fuse-native serving the same bytes from memory, no crypto
  const floorDir = b.tmpdir('facet-bare-read-')
  const floor = await mountBareFuse(floorDir, { 'seq.bin': Buffer.alloc(s.seqMiB * 2 ** 20) }, { ...adapterOpts })
  const floorReads: number[] = []
  try {
    for (let r = 0; r < s.reps; r++) floorReads.push(await timeCommand('dd', [`if=${join(floorDir, 'seq.bin')}`, 'of=/dev/null', 'bs=1M', 'status=none']))
  } finally {
    await floor.unmount()
  }
  const floorRead = (s.seqMiB * 1.048576) / (median(floorReads) / 1000)
  b.log(`bare fuse-native read: ${floorReads.map(w => w.toFixed(0)).join('/')} ms`)
  b.row({ figure: `sequential read ${s.seqMiB} MiB (dd, cold)`, value: ch.read, unit: 'MB/s', baseline: 'bare fuse-native, from memory, no crypto', baselineValue: floorRead, higherIsBetter: true, note: 'the ceiling of a fuse-native filesystem' })
  // the same adapter over the memory mount: what FUSE and the router cost a small file, without a chain
  const memDir = b.tmpdir('facet-mem-')
  const memVfs = createVfs({ mounts: { '/': memoryMount() }, logger: silentLogger })
  const mem = await mountFuse(memVfs, memDir)
  let memMs: number
  try {
    ;({ ms: memMs } = await nodeChild<{ ms: number }>(SMALL, [join(memDir, 'small'), String(s.smallFiles)], { timeoutMs: 600_000 }))
  } finally {
    await mem.unmount()
    await memVfs.close()
  }
  b.row({ figure: `create ${s.smallFiles} small files`, value: ch.small, unit: 'files/s', baseline: 'memory mount, same FUSE adapter', baselineValue: s.smallFiles / (memMs / 1000), higherIsBetter: true, note: 'what the chain adds to FUSE and the router' })
  const gocrypt = results.get('gocryptfs')
  if (gocrypt) b.row({ figure: `sequential read ${s.seqMiB} MiB: the bare fuse-native ceiling itself`, value: floorRead, unit: 'MB/s', baseline: 'gocryptfs', baselineValue: gocrypt.read, higherIsBetter: true })
  for (const base of ['gocryptfs', 'native disk']) {
    const r = results.get(base)
    if (!r) continue
    const target = base === 'gocryptfs'
    b.row({ figure: `sequential write ${s.seqMiB} MiB (dd, fsync)`, value: ch.write, unit: 'MB/s', baseline: base, baselineValue: r.write, higherIsBetter: true, note: target ? `target >= 70%: ${ch.write >= 0.7 * r.write ? 'met' : 'missed'}` : undefined })
    b.row({ figure: `sequential read ${s.seqMiB} MiB (dd, cold)`, value: ch.read, unit: 'MB/s', baseline: base, baselineValue: r.read, higherIsBetter: true, note: target ? `target >= 100%: ${ch.read >= r.read ? 'met' : 'missed'}` : undefined })
    b.row({ figure: `create ${s.smallFiles} small files`, value: ch.small, unit: 'files/s', baseline: base, baselineValue: r.small, higherIsBetter: true, note: target ? `target >= 70%: ${ch.small >= 0.7 * r.small ? 'met' : 'missed'}` : undefined })
    b.row({ figure: `ls -lR of ${s.smallFiles} files (cold)`, value: ch.ls, unit: 'ms', baseline: base, baselineValue: r.ls, higherIsBetter: false })
  }
}
