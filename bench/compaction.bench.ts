import { randomBytes } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { join } from 'node:path'
import { liveBytes } from '../src/chain/auto-compact.ts'
import { chainMount } from '../src/chain/mount.ts'
import { Chain } from '../src/chain/store.ts'
import { generateIdentity, type Identity } from '../src/crypto/identity.ts'
import { silentLogger, type Logger } from '../src/vfs/log.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import type { BenchContext } from './lib.ts'

const MiB = 2 ** 20

interface Churn {
  /** The live file's size. */
  fileBytes: number
  /** Bytes overwritten in all, in 1 MiB writes at random offsets. */
  writtenBytes: number
}

/**
 * Overwrites one file of a fresh chain at random offsets, through a mount whose
 * compaction is `policy` (the default policy, looked at every 200 ms) or off; returns the
 * log and live sizes once the writing and any compaction are done, and how many
 * compactions ran.
 */
async function churn(path: string, home: string, id: Identity, c: Churn, compact: boolean): Promise<{ log: number; live: number; compactions: number; ms: number }> {
  let compactions = 0
  let settled: (() => void) | undefined
  const logger = { ...silentLogger, info: (_o: unknown, msg?: string) => void (String(msg).includes(': compacted ') && (compactions++, settled?.())) } as Logger
  const chain = await Chain.create(path, { identity: id, home, trust: false, logger })
  const vfs = createVfs({ mounts: { '/c': chainMount(chain, { compaction: compact ? { intervalMs: 200 } : false }) }, logger: silentLogger })
  const started = performance.now()
  try {
    const chunk = randomBytes(MiB)
    await vfs.writeFile('/c/data.bin', Buffer.alloc(c.fileBytes, 1))
    const fh = await vfs.open('/c/data.bin', fsc.O_WRONLY)
    try {
      for (let done = 0, i = 0; done < c.writtenBytes; done += MiB, i++) {
        const at = Math.floor(Math.random() * (c.fileBytes / 4096 - 256)) * 4096
        await vfs.write(fh, at, chunk)
        if (i % 16 === 15) await vfs.fsync(fh)
      }
      await vfs.fsync(fh)
    } finally {
      await vfs.release(fh)
    }
    await chain.sync()
    // the policy is looked at every 200 ms: wait for the look after the last write
    // (the compactor's timer does not keep the process alive; this wait's own timer does)
    if (compact && chain.logBytes > 1.5 * liveBytes(chain) && chain.logBytes >= 64 * MiB) {
      await new Promise<void>((done, fail) => {
        const late = setTimeout(() => fail(new Error('no compaction within 60 s of the last write')), 60_000)
        settled = () => (clearTimeout(late), done())
      })
    }
    return { log: chain.logBytes, live: liveBytes(chain), compactions, ms: performance.now() - started }
  } finally {
    await vfs.close()
  }
}

/** How long a read-only open of the chain at `path` takes, median of three. */
async function openMs(path: string, home: string, id: Identity): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < 3; i++) {
    const t = performance.now()
    const c = await Chain.open(path, { identity: id, home, trust: false, readOnly: true })
    times.push(performance.now() - t)
    await c.close()
  }
  return times.sort((a, b) => a - b)[1]!
}

/**
 * Automatic compaction under churn: one file overwritten at random offsets through a
 * chain mount with the default policy (compact past 64 MiB and 1.5x the live state)
 * against the same churn with compaction off, in the same run. Rows: the log's size
 * against its live state (target ≤ 1.5x), the time the churn took with and without
 * compaction, and the open of each resulting chain.
 */
export default async function compactionBench(b: BenchContext): Promise<void> {
  const c: Churn = b.quick ? { fileBytes: 16 * MiB, writtenBytes: 96 * MiB } : { fileBytes: 48 * MiB, writtenBytes: 480 * MiB }
  const id = (({ seeds: _s, ...rest }) => rest)(generateIdentity('bench'))
  const home = b.tmpdir('facet-compaction-bench-')
  const on = await churn(join(home, 'on.chain'), home, id, c, true)
  const off = await churn(join(home, 'off.chain'), home, id, c, false)
  const sizes = `${c.fileBytes / MiB} MiB file, ${c.writtenBytes / MiB} MiB overwritten in 1 MiB writes`
  b.row({ figure: `log size after churn, default compaction policy (${sizes})`, value: on.log / MiB, unit: 'MiB', baseline: 'live state', baselineValue: on.live / MiB, higherIsBetter: false, note: `target ≤ 1.5x: ${on.log <= 1.5 * on.live ? 'met' : 'missed'}; ${on.compactions} compactions` })
  b.row({ figure: `log size after the same churn, compaction off`, value: off.log / MiB, unit: 'MiB', baseline: 'live state', baselineValue: off.live / MiB, higherIsBetter: false })
  b.row({ figure: `churn time with automatic compaction`, value: on.ms, unit: 'ms', baseline: 'compaction off', baselineValue: off.ms, higherIsBetter: false, note: `${on.compactions} compactions ran during it` })
  b.row({ figure: `open of the chain after churn, compacted`, value: await openMs(join(home, 'on.chain'), home, id), unit: 'ms', baseline: 'open after the same churn, compaction off', baselineValue: await openMs(join(home, 'off.chain'), home, id), higherIsBetter: false })
}
