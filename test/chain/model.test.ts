import { constants as fsc } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { tempHome, testIdentity } from './helpers.ts'

const name = fc.constantFrom('a', 'b', 'c')
const path = fc.array(name, { minLength: 1, maxLength: 3 }).map(ns => '/' + ns.join('/'))
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc.integer({ min: 60_000, max: 140_000 }).map(n => Buffer.alloc(n, n & 0xff)),
)

type Op =
  | { op: 'writeFile'; p: string; data: Uint8Array }
  | { op: 'pwrite'; p: string; offset: number; data: Uint8Array; append: boolean }
  | { op: 'truncate'; p: string; size: number }
  | { op: 'mkdir'; p: string }
  | { op: 'unlink'; p: string }
  | { op: 'rmdir'; p: string }
  | { op: 'rename'; p: string; to: string }
  | { op: 'symlink'; p: string; target: string }
  | { op: 'chmod'; p: string; mode: number }
  | { op: 'reopen' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('writeFile' as const), p: path, data: bytes }),
  fc.record({ op: fc.constant('pwrite' as const), p: path, offset: fc.integer({ min: 0, max: 200_000 }), data: bytes, append: fc.boolean() }),
  fc.record({ op: fc.constant('truncate' as const), p: path, size: fc.integer({ min: 0, max: 150_000 }) }),
  fc.record({ op: fc.constant('mkdir' as const), p: path }),
  fc.record({ op: fc.constant('unlink' as const), p: path }),
  fc.record({ op: fc.constant('rmdir' as const), p: path }),
  fc.record({ op: fc.constant('rename' as const), p: path, to: path }),
  fc.record({ op: fc.constant('symlink' as const), p: path, target: fc.constantFrom('a', '../b', '/c/a') }),
  fc.record({ op: fc.constant('chmod' as const), p: path, mode: fc.constantFrom(0o600, 0o755, 0o444) }),
  fc.constant({ op: 'reopen' as const }),
)

async function apply(vfs: Vfs, o: Op): Promise<string> {
  const p = '/c' + ('p' in o ? o.p : '')
  try {
    switch (o.op) {
      case 'writeFile':
        await vfs.writeFile(p, o.data)
        break
      case 'pwrite': {
        const fh = await vfs.open(p, fsc.O_RDWR | fsc.O_CREAT | (o.append ? fsc.O_APPEND : 0))
        try {
          await vfs.write(fh, o.offset, o.data)
        } finally {
          await vfs.release(fh)
        }
        break
      }
      case 'truncate':
        await vfs.truncate(p, o.size)
        break
      case 'mkdir':
        await vfs.mkdir(p)
        break
      case 'unlink':
        await vfs.unlink(p)
        break
      case 'rmdir':
        await vfs.rmdir(p)
        break
      case 'rename':
        await vfs.rename(p, '/c' + o.to)
        break
      case 'symlink':
        await vfs.symlink(o.target, p)
        break
      case 'chmod':
        await vfs.chmod(p, o.mode)
        break
      case 'reopen':
        break
    }
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

async function snapshot(vfs: Vfs, dir = '/c'): Promise<unknown[]> {
  const out: unknown[] = []
  const entries = (await vfs.readdirAll(dir)).sort((a, b) => (a.name < b.name ? -1 : 1))
  for (const e of entries) {
    const p = `${dir}/${e.name}`
    const s = await vfs.lstat(p)
    if (e.kind === 'dir') out.push([p, 'dir', s.mode, await snapshot(vfs, p)])
    else if (e.kind === 'symlink') out.push([p, 'symlink', await vfs.readlink(p)])
    else {
      const data = await vfs.readFile(p)
      out.push([p, 'file', s.mode, s.size, data.length, Buffer.from(data).toString('base64')])
    }
  }
  return out
}

describe('chain mount against the memory mount', () => {
  it('gives the same results and tree for random operation sequences, across close and reopen', async () => {
    const t = await tempHome()
    let run = 0
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async ops => {
          const path = `${t.home}/m${run++}.chain`
          let chain = await Chain.create(path, { identity: testIdentity(), home: t.home, trust: false })
          let cv = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
          const mv = createVfs({ mounts: { '/c': memoryMount() }, logger: silentLogger })
          try {
            for (const o of ops) {
              if (o.op === 'reopen') {
                await cv.close()
                chain = await Chain.open(path, { identity: testIdentity(), home: t.home, trust: false })
                cv = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
                continue
              }
              const [a, b] = [await apply(cv, o), await apply(mv, o)]
              expect(a, JSON.stringify({ ...o, data: undefined })).toBe(b)
            }
            expect(await snapshot(cv)).toEqual(await snapshot(mv))
            await cv.close()
            chain = await Chain.open(path, { identity: testIdentity(), home: t.home, trust: false })
            cv = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
            expect(await snapshot(cv)).toEqual(await snapshot(mv))
          } finally {
            await cv.close()
            await mv.close()
          }
        }),
        { numRuns: Number(process.env.MODEL_RUNS ?? 30) },
      )
    } finally {
      await t.cleanup()
    }
  }, 120_000)
})
