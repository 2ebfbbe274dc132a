import { join } from 'node:path'
import { chainMount } from '../src/chain/mount.ts'
import { compactChain } from '../src/chain/compact.ts'
import { rekeyChainPath } from '../src/chain/rekey.ts'
import { shareChainPath, unshareChainPath } from '../src/chain/sharing.ts'
import { Chain } from '../src/chain/store.ts'
import { generateIdentity, type Identity } from '../src/crypto/identity.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import type { BenchContext } from './lib.ts'

const person = (name: string): Identity => (({ seeds: _s, ...id }) => id)(generateIdentity(name))

/** Median of `runs` timings of `fn`, in ms. */
async function median(runs: number, fn: () => Promise<void>): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    await fn()
    times.push(performance.now() - t)
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!
}

/** Opens the chain at `path` read-only as `id`, lists `dir` in it, and closes it; returns the open's and the listing's time. */
async function openAndList(path: string, home: string, id: Identity, dir: string): Promise<{ open: number; list: number; entries: number }> {
  let t = performance.now()
  const chain = await Chain.open(path, { identity: id, home, trust: false, readOnly: true })
  const open = performance.now() - t
  const vfs = createVfs({ mounts: { '/c': chainMount(chain, { history: false }) }, logger: silentLogger })
  t = performance.now()
  const entries = (await vfs.readdirAll(`/c${dir}`)).length
  const list = performance.now() - t
  await vfs.close()
  return { open, list, entries }
}

/**
 * Sharing a folder of many files: the grant is one block whatever the folder holds (one
 * ML-KEM encapsulation and one signature), against a one-file write of one block; then a
 * contact holding only that folder's grant opens the chain and lists the folder, against the
 * owner doing the same.
 */
export default async function sharingBench(b: BenchContext): Promise<void> {
  const files = b.quick ? 1_000 : 10_000
  const alice = person('alice')
  const home = b.tmpdir('facet-sharing-bench-')
  const path = join(home, 'shared.chain')
  const chain = await Chain.create(path, { identity: alice, home, trust: false })
  const vfs = createVfs({ mounts: { '/c': chainMount(chain, { history: false }) }, logger: silentLogger })
  await vfs.mkdir('/c/big')
  await vfs.mkdir('/c/other')
  for (let i = 0; i < files; i++) await vfs.writeFile(`/c/big/f${i}.txt`, `file ${i}\n`)
  await vfs.writeFile('/c/other/secret.txt', 'not shared\n')
  await chain.sync()
  b.log(`made ${files} files in /big`)
  const readers = [0, 1, 2, 3, 4].map(i => person(`reader${i}`))
  let r = 0
  const share = await median(5, async () => void (await shareChainPath(chain, '/big', readers[r++]!)))
  let w = 0
  const write = await median(5, async () => {
    await vfs.writeFile(`/c/other/w${w++}.txt`, 'one block\n')
    await chain.sync()
  })
  b.row({ figure: `share a folder of ${files} files (one key grant block)`, value: share, unit: 'ms', baseline: 'write one small file and sync (one block)', baselineValue: write, higherIsBetter: false })
  await vfs.close()
  const reader = await openAndList(path, home, readers[0]!, '/big')
  const owner = await openAndList(path, home, alice, '/big')
  if (reader.entries !== files || owner.entries !== files) throw new Error(`listed ${reader.entries} and ${owner.entries} of ${files} files`)
  b.row({ figure: `open of the chain by a reader of /big only (${files} files)`, value: reader.open, unit: 'ms', baseline: "the owner's open", baselineValue: owner.open, higherIsBetter: false })
  b.row({ figure: `first listing of /big by that reader`, value: reader.list, unit: 'ms', baseline: "the owner's first listing", baselineValue: owner.list, higherIsBetter: false })

  // taking read access back: one block that gives every inode of /big a new key (rotation.ts), against the share above
  const again = await Chain.open(path, { identity: alice, home, trust: false })
  try {
    let t = performance.now()
    const un = await unshareChainPath(again, '/big', readers[0]!, { readers })
    const rotate = performance.now() - t
    if (un.rotation?.inodes !== files + 1) throw new Error(`rotated ${un.rotation?.inodes} inodes`)
    b.row({ figure: `unshare a folder of ${files} files, rotating every key (one block; 4 readers stay)`, value: rotate, unit: 'ms', baseline: `share of that folder (above)`, baselineValue: share, higherIsBetter: false })
    // rekey: a rotation, every chunk sealed again, and a compaction, against a compaction alone of the same chain
    t = performance.now()
    await compactChain(again)
    const compact = performance.now() - t
    t = performance.now()
    const rk = await rekeyChainPath(again, '/big', { readers })
    const rekey = performance.now() - t
    if (rk.chunks !== files) throw new Error(`rekeyed ${rk.chunks} chunks`)
    b.row({ figure: `rekey a folder of ${files} files (rotate, seal every chunk again, compact)`, value: rekey, unit: 'ms', baseline: 'compact the same chain', baselineValue: compact, higherIsBetter: false })
  } finally {
    await again.close()
  }
}
