import { constants as fsc } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { verifyChain } from '../../src/chain/verify.ts'
import { compactChain } from '../../src/chain/compact.ts'
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
  | { op: 'link'; p: string; to: string }
  | { op: 'exchange'; p: string; to: string }
  | { op: 'mkfifo'; p: string }
  | { op: 'setxattr'; p: string; value: string }
  | { op: 'reopen' }
  | { op: 'compact' }

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
  fc.record({ op: fc.constant('link' as const), p: path, to: path }),
  fc.record({ op: fc.constant('exchange' as const), p: path, to: path }),
  fc.record({ op: fc.constant('mkfifo' as const), p: path }),
  fc.record({ op: fc.constant('setxattr' as const), p: path, value: fc.constantFrom('', 'v1', 'v2') }),
  fc.constant({ op: 'reopen' as const }),
  fc.constant({ op: 'compact' as const }),
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
      case 'link':
        await vfs.link(p, '/c' + o.to)
        break
      case 'exchange':
        await vfs.rename(p, '/c' + o.to, undefined, 'exchange')
        break
      case 'mkfifo':
        await vfs.mknod(p, 'fifo', 0o644)
        break
      case 'setxattr':
        await vfs.setxattr(p, 'user.v', Buffer.from(o.value))
        break
      case 'reopen':
      case 'compact':
        break
    }
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

/** The tree below `dir`; hard links show as the first path (in listing order) that names the same inode. */
async function snapshot(vfs: Vfs, dir = '/c', seen = new Map<number, string>()): Promise<unknown[]> {
  const out: unknown[] = []
  const entries = (await vfs.readdirAll(dir)).sort((a, b) => (a.name < b.name ? -1 : 1))
  for (const e of entries) {
    const p = `${dir}/${e.name}`
    const s = await vfs.lstat(p)
    const xattrs = await Promise.all((await vfs.listxattr(p, { follow: false })).sort().map(async n => [n, Buffer.from(await vfs.getxattr(p, n, { follow: false })).toString()]))
    const same = seen.get(s.ino)
    if (same === undefined) seen.set(s.ino, p)
    if (e.kind === 'dir') out.push([p, 'dir', s.mode, s.nlink, xattrs, await snapshot(vfs, p, seen)])
    else if (e.kind === 'symlink') out.push([p, 'symlink', s.nlink, same, await vfs.readlink(p)])
    else if (e.kind !== 'file') out.push([p, e.kind, s.mode, s.nlink, same, xattrs])
    else {
      const data = await vfs.readFile(p)
      out.push([p, 'file', s.mode, s.nlink, same, xattrs, s.size, data.length, Buffer.from(data).toString('base64')])
    }
  }
  return out
}

describe('chain mount against the memory mount', () => {
  it('gives the same results and tree for random operation sequences, across close, reopen and compaction', async () => {
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
              if (o.op === 'compact') {
                await compactChain(chain)
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
            expect(await verifyChain(path, { trust: false })).toMatchObject({ ok: true })
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
