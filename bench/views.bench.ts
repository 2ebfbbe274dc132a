import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { mountFuse, fuseAvailability } from '../src/fuse/index.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import { collection } from '../src/views/collection.ts'
import { defineView } from '../src/views/view.ts'
import { mountBareFuse, type BareMount, type BareTree } from './baselines/bare-fuse.ts'
import { BARE_FUSE_NATIVE, fuseNativeAvailability, mountBareFuseNative } from './baselines/bare-fuse-native.ts'
import { median, nodeChild, timeCommand, type BenchContext, CAT_LOOP } from './lib.ts'

interface User {
  id: number
  name: string
  email: string
  groups: string[]
}

const BARE = 'bare fuse-napi'

function user(i: number): User {
  return { id: i, name: `user ${i}`, email: `user${i}@example.org`, groups: ['staff', i % 2 ? 'odd' : 'even'] }
}

const key = (u: User): string => `user-${String(u.id).padStart(7, '0')}`

/**
 * View figures: `ls -l` of a 100,000-record collection and reading one record, through
 * FUSE, each against the bare fuse-napi handler serving the same names and bytes from
 * a Map (the floor of the binding, mounted with the adapter's options) and the same
 * handler on fuse-native (libfuse 2, the old floor); and the memory of paging through a
 * 1,000,000-record collection in-process, against holding just its names in an array.
 */
export default async function bench(b: BenchContext): Promise<void> {
  const n = b.quick ? 10_000 : 100_000
  const reps = b.quick ? 1 : 3
  const cats = b.quick ? 500 : 3_000
  const listN = b.quick ? 100_000 : 1_000_000

  const avail = await fuseAvailability()
  if (avail.ok) {
    const users = Array.from({ length: n }, (_, i) => user(i))
    const byKey = new Map(users.map(u => [key(u), u]))
    const view = defineView(() => ({
      name: 'users',
      root: collection<User>({ list: users, key, get: k => byKey.get(k), version: u => u.id }),
    }))()
    const vfs = createVfs({ mounts: { '/users': view }, logger: silentLogger })
    b.defer(() => vfs.close())
    const oursDir = b.tmpdir('views-ours')
    const ours = await mountFuse(vfs, oursDir)
    b.defer(() => ours.unmount())

    const tree: BareTree = {}
    for (const u of users) tree[`${key(u)}.json`] = Buffer.from(JSON.stringify(u, null, 2) + '\n')
    const bareDir = b.tmpdir('views-bare')
    const bare = await mountBareFuse(bareDir, { users: tree })
    b.defer(() => bare.unmount())
    const oldFloor = fuseNativeAvailability()
    let old: BareMount | undefined
    if (oldFloor.ok) {
      old = await mountBareFuseNative(b.tmpdir('views-bare-fuse-native'), { users: tree })
      b.defer(() => old!.unmount())
    } else b.log(oldFloor.reason)

    const ls = async (folder: string): Promise<number[]> => {
      await timeCommand('ls', ['-l', folder], { timeoutMs: 600_000 })
      const out: number[] = []
      for (let i = 0; i < reps; i++) out.push(await timeCommand('ls', ['-l', folder], { timeoutMs: 600_000 }))
      return out
    }
    b.log(`ls -l of ${n} records, ${reps} runs per side after a warm-up`)
    const oursLs = await ls(`${oursDir}/users`)
    const bareLs = await ls(`${bareDir}/users`)
    const oldLs = old ? await ls(`${old.mountpoint}/users`) : undefined
    b.row({ figure: `ls -l, ${n.toLocaleString('en')}-record collection`, value: median(oursLs), unit: 'ms', baseline: BARE, baselineValue: median(bareLs), higherIsBetter: false, note: `median of ${reps}` })
    if (oldLs) b.row({ figure: `ls -l, ${n.toLocaleString('en')}-record collection`, value: median(oursLs), unit: 'ms', baseline: BARE_FUSE_NATIVE, baselineValue: median(oldLs), higherIsBetter: false, note: `median of ${reps}; the old floor, same options` })

    const one = `${key(users[n >> 1]!)}.json`
    const oursCat = await nodeChild<{ ms: number }>(CAT_LOOP, [`${oursDir}/users/${one}`, String(cats)])
    const bareCat = await nodeChild<{ ms: number }>(CAT_LOOP, [`${bareDir}/users/${one}`, String(cats)])
    b.row({ figure: 'cat of one record (open+read+close)', value: (oursCat.ms * 1000) / cats, unit: 'µs', baseline: BARE, baselineValue: (bareCat.ms * 1000) / cats, higherIsBetter: false, note: `${cats} reads from a child process` })
    if (old) {
      const oldCat = await nodeChild<{ ms: number }>(CAT_LOOP, [`${old.mountpoint}/users/${one}`, String(cats)])
      b.row({ figure: 'cat of one record (open+read+close)', value: (oursCat.ms * 1000) / cats, unit: 'µs', baseline: BARE_FUSE_NATIVE, baselineValue: (oldCat.ms * 1000) / cats, higherIsBetter: false, note: `${cats} reads; the old floor, same options` })
    }
  } else {
    b.log(`FUSE figures skipped: ${avail.reason}`)
  }

  const big = defineView(() => ({
    name: 'big',
    root: collection<User>({
      list: ({ limit, cursor }) => {
        const start = cursor ? Number(cursor) : 0
        const items: User[] = []
        for (let i = start; i < Math.min(listN, start + limit); i++) items.push(user(i))
        return { items, cursor: start + limit < listN ? String(start + limit) : undefined }
      },
      key,
      get: k => user(Number(k.slice(5))),
    }),
  }))()
  const vfs = createVfs({ mounts: { '/big': big }, logger: silentLogger })
  b.defer(() => vfs.close())
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const page = (cursor: string | undefined) => vfs.readdir('/big', cursor === undefined ? { limit: 10_000 } : { limit: 10_000, cursor })

  gc()
  let heap0 = process.memoryUsage().heapUsed
  let peakWithGarbage = 0
  let count = 0
  let cursor: string | undefined
  const t0 = process.hrtime.bigint()
  do {
    const p = await page(cursor)
    count += p.entries.length
    cursor = p.cursor
    peakWithGarbage = Math.max(peakWithGarbage, process.memoryUsage().heapUsed - heap0)
  } while (cursor !== undefined)
  const listMs = Number(process.hrtime.bigint() - t0) / 1e6
  if (count !== listN) throw new Error(`listed ${count} of ${listN} records`)

  gc()
  heap0 = process.memoryUsage().heapUsed
  let peakLive = 0
  do {
    const p = await page(cursor)
    cursor = p.cursor
    gc()
    peakLive = Math.max(peakLive, process.memoryUsage().heapUsed - heap0)
  } while (cursor !== undefined)

  gc()
  const heapAfter = process.memoryUsage().heapUsed - heap0
  const heap1 = process.memoryUsage().heapUsed
  const names: string[] = []
  for (let i = 0; i < listN; i++) names.push(`${key(user(i))}.json`)
  gc()
  const namesBytes = process.memoryUsage().heapUsed - heap1
  if (names.length !== listN) throw new Error('unreachable')
  b.row({
    figure: `live heap while paging ${listN.toLocaleString('en')} records`,
    value: peakLive / 2 ** 20,
    unit: 'MiB',
    baseline: 'their names held in an array',
    baselineValue: namesBytes / 2 ** 20,
    higherIsBetter: false,
    note: `max after a GC per page; ${(peakWithGarbage / 2 ** 20).toFixed(0)} MiB incl. garbage without, ${(heapAfter / 2 ** 20).toFixed(1)} MiB left after; pages of 10,000; listed in ${Math.round(listMs)} ms (${Math.round(listN / (listMs / 1000)).toLocaleString('en')} entries/s)`,
  })
}
