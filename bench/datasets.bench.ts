import { randomBytes } from 'node:crypto'
import { mkdir, open as openFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateIdentity } from '../src/crypto/identity.ts'
import { openDatasetStore, pull, push } from '../src/datasets/index.ts'
import { msSince, timeCommand, type BenchContext } from './lib.ts'

/** A tree of `mib` MiB of incompressible data: 80% in 8 big files, 20% in small files of 4–200 KiB. */
async function makeTree(dir: string, mib: number): Promise<number> {
  const total = mib << 20
  const bigSize = Math.floor((total * 0.8) / 8)
  await mkdir(join(dir, 'big'), { recursive: true })
  for (let i = 0; i < 8; i++) {
    const fh = await openFile(join(dir, 'big', `part-${i}.bin`), 'w')
    for (let at = 0; at < bigSize; at += 8 << 20) await fh.write(randomBytes(Math.min(8 << 20, bigSize - at)))
    await fh.close()
  }
  let left = total - 8 * bigSize
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, 4096 + Math.floor(Math.random() * 196 * 1024))
    const sub = join(dir, 'small', String(i % 16))
    await mkdir(sub, { recursive: true })
    await writeFile(join(sub, `f-${i}.dat`), randomBytes(size))
    left -= size
  }
  return total
}

/** Changes about `share` of the tree's bytes: overwrites a few regions of every big file, inserts bytes in each, and rewrites a share of the small files. */
async function changeTree(dir: string, share: number): Promise<void> {
  for (const name of await readdir(join(dir, 'big'))) {
    const path = join(dir, 'big', name)
    const size = (await stat(path)).size
    const fh = await openFile(path, 'r+')
    const regions = 4
    for (let r = 0; r < regions; r++) await fh.write(randomBytes(Math.floor((size * share) / regions)), 0, undefined, Math.floor(((r + 0.3) * size) / regions))
    await fh.close()
  }
  for (const sub of await readdir(join(dir, 'small'))) {
    const files = await readdir(join(dir, 'small', sub))
    for (const f of files.slice(0, Math.ceil(files.length * share))) {
      const p = join(dir, 'small', sub, f)
      await writeFile(p, randomBytes((await stat(p)).size))
    }
  }
}

export default async function datasetsBench(b: BenchContext): Promise<void> {
  const mib = b.quick ? 256 : 1024
  const root = b.tmpdir('facet-bench-datasets-')
  const src = join(root, 'src')
  b.log(`making a ${mib} MiB tree`)
  const bytes = await makeTree(src, mib)
  const mbps = (ms: number) => bytes / 1e6 / (ms / 1000)
  const { seeds: _s, ...identity } = generateIdentity('bench')
  const home = join(root, 'home')
  const log = join(home, 'chains', 'datasets.chain')
  let opened = await openDatasetStore({ identity, home })
  b.defer(() => opened.close())

  const cpMs = await timeCommand('cp', ['-r', src, join(root, 'cp-copy')])
  const tarMs = await timeCommand('tar', ['-cf', join(root, 'tree.tar'), '-C', src, '.'])
  await mkdir(join(root, 'tar-out'))
  const untarMs = await timeCommand('tar', ['-xf', join(root, 'tree.tar'), '-C', join(root, 'tar-out')])
  const logBefore = (await stat(log)).size
  let t = process.hrtime.bigint()
  const r1 = await push(opened.store, src, 'bench', 'v1')
  const pushMs = msSince(t)
  const storedV1 = (await stat(log)).size - logBefore
  b.row({ figure: `push ${mib} MiB tree (chunk, seal, sign)`, value: mbps(pushMs), unit: 'MB/s', baseline: 'cp -r', baselineValue: mbps(cpMs), higherIsBetter: true, note: `${r1.files} files` })
  b.row({ figure: `push ${mib} MiB tree`, value: mbps(pushMs), unit: 'MB/s', baseline: 'tar -cf', baselineValue: mbps(tarMs), higherIsBetter: true })

  // pull from a store opened anew, so no chunk is read from a cache
  await opened.close()
  opened = await openDatasetStore({ identity, home })
  t = process.hrtime.bigint()
  await pull(opened.store, 'bench', 'v1', join(root, 'pulled'))
  const pullMs = msSince(t)
  b.row({ figure: `pull ${mib} MiB tree into a new folder (verified, fsync'd)`, value: mbps(pullMs), unit: 'MB/s', baseline: 'cp -r', baselineValue: mbps(cpMs), higherIsBetter: true })
  b.row({ figure: `pull ${mib} MiB tree into a new folder`, value: mbps(pullMs), unit: 'MB/s', baseline: 'tar -xf', baselineValue: mbps(untarMs), higherIsBetter: true })

  await changeTree(src, 0.05)
  const logMid = (await stat(log)).size
  const r2 = await push(opened.store, src, 'bench', 'v2')
  const storedV2 = (await stat(log)).size - logMid
  b.row({
    figure: 'bytes stored for a second version, 5% changed',
    value: storedV2 / 1e6,
    unit: 'MB',
    baseline: 'a full copy',
    baselineValue: bytes / 1e6,
    higherIsBetter: false,
    note: `${((100 * storedV2) / bytes).toFixed(1)}% of the tree (target < 10%); chunks new ${(r2.bytesNew / 1e6).toFixed(1)} MB; first version stored ${(storedV1 / 1e6).toFixed(0)} MB`,
  })
  t = process.hrtime.bigint()
  const p2 = await pull(opened.store, 'bench', 'v2', join(root, 'pulled'))
  const updateMs = msSince(t)
  b.row({ figure: 'pull of the second version over the first', value: updateMs, unit: 'ms', baseline: 'cp -r of the tree', baselineValue: cpMs, higherIsBetter: false, note: `read ${(p2.bytesFetched / 1e6).toFixed(1)} MB from the store, kept ${(p2.bytesLocal / 1e6).toFixed(0)} MB` })
}
