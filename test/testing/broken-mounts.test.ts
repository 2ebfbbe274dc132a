import { describe, expect, it } from 'vitest'
import { memoryMount } from '../../src/vfs/memory.ts'
import type { Mount } from '../../src/vfs/mounts.ts'
import { can, type Attr, type DirPage, type MaybePromise, type OpContext, type VNode } from '../../src/vfs/node.ts'
import { dir, file } from '../../src/views/view.ts'
import { CaseSkipped, FULL_POSIX, mountConformanceCases, runMountCase, type MountCase, type MountConformanceOptions } from '../../src/testing/index.ts'

/** Wraps every folder of `mount` so that `override` replaces some of its capabilities; other calls reach the real node. */
function tampered(mount: Mount, override: (node: VNode) => Record<string, unknown>): Mount {
  const seen = new WeakMap<VNode, VNode>()
  const wrap = <T extends VNode | undefined>(node: T): T => {
    if (!node) return node
    let w = seen.get(node)
    if (!w) {
      const own = override(node)
      w = new Proxy(node, {
        get(target, prop) {
          if (typeof prop === 'string' && prop in own) return own[prop]
          const v = Reflect.get(target, prop, target) as unknown
          if (typeof v !== 'function') return v
          const call = (v as (...a: unknown[]) => unknown).bind(target)
          if (prop === 'lookup' || prop === 'create' || prop === 'mkdir') return (...a: unknown[]) => then(call(...a) as MaybePromise<VNode | undefined>, wrap)
          if (prop === 'readdir') return (...a: unknown[]) => then(call(...a) as MaybePromise<DirPage>, p => ({ ...p, entries: p.entries.map(e => ({ ...e, node: wrap(e.node) })) }))
          return call
        },
      })
      seen.set(node, w)
    }
    return w as T
  }
  return { name: `${mount.name}-tampered`, root: wrap(mount.root) }
}

function then<T, U>(v: MaybePromise<T>, f: (t: T) => U): MaybePromise<U> {
  return v instanceof Promise ? v.then(f) : f(v)
}

/** The cases of `options` whose names match `pattern`; at least one must. */
function casesNamed(options: MountConformanceOptions, pattern: RegExp): MountCase[] {
  const found = mountConformanceCases(options).vfs.filter(c => pattern.test(c.name))
  expect(found.length, `cases matching ${pattern}`).toBeGreaterThan(0)
  return found
}

/** Runs every case on the mount and resolves the names of those that failed (skips do not count). */
async function failing(cases: MountCase[], makeMount: () => Mount, options: MountConformanceOptions): Promise<string[]> {
  const failed: string[] = []
  for (const c of cases) {
    try {
      await runMountCase(c, makeMount, options)
    } catch (err) {
      if (!(err instanceof CaseSkipped)) failed.push(c.name)
    }
  }
  return failed
}

const full: MountConformanceOptions = { capabilities: FULL_POSIX }
const readOnly: MountConformanceOptions = { capabilities: {} }

describe('the mount conformance suite on broken mounts', () => {
  it('passes the memory mount on the cases the broken mounts below fail', async () => {
    const cases = casesNamed(full, /rename|link|stat the exact byte length/)
    expect(await failing(cases, () => memoryMount(), full)).toEqual([])
  })

  it('fails a mount whose rename does nothing', async () => {
    const broken = () => tampered(memoryMount(), () => ({ rename: () => {} }))
    const failed = await failing(casesNamed(full, /^renames /), broken, full)
    expect(failed).toContain('renames a file over an existing one: the old name goes and the target has the moved content')
    expect(failed.length).toBe(casesNamed(full, /^renames /).length)
  })

  it('fails an empty read-only mount, which claims content by being read-only', async () => {
    const empty = () => ({ name: 'empty', root: dir({}) })
    const all = mountConformanceCases(readOnly).vfs
    const failed = await failing(all, empty, readOnly)
    expect(failed).toContain('lists content in its tree, and every name the fixture names (an empty mount fails)')
    expect(failed).toContain('reports on stat the exact byte length that reading returns, and type bits that match the kind')
    expect(failed.length).toBeGreaterThan(all.length / 2)
  })

  it('fails a read-only mount that lacks a name its fixture names', async () => {
    const view = () => ({ name: 'hello', root: dir({ 'a.txt': file('a\n') }) })
    const options = { capabilities: {}, fixture: { names: ['a.txt', 'b.txt'] } }
    expect(await failing(casesNamed(options, /^lists content/), view, options)).toHaveLength(1)
    expect(await failing(casesNamed(readOnly, /^lists content/), view, readOnly)).toEqual([])
  })

  it('fails a mount whose stat size disagrees with what a read returns', async () => {
    const lying = () => tampered(memoryMount(), node => {
      if (!can.lookup(node)) return {}
      return {
        lookup: (name: string, ctx: OpContext) =>
          then(node.lookup(name, ctx), child => {
            if (!child || !can.getattr(child) || child.kind !== 'file') return child
            const getattr = async (c: OpContext): Promise<Attr> => ({ ...(await child.getattr(c)), size: 1 })
            return new Proxy(child, { get: (t, p) => (p === 'getattr' ? getattr : Reflect.get(t, p, t)) })
          }),
      }
    })
    expect(await failing(casesNamed(full, /stat the exact byte length/), lying, full)).toHaveLength(1)
  })

  it('fails a mount that declares a capability off but has it, instead of skipping the case', async () => {
    const options = { capabilities: { ...FULL_POSIX, hardLinks: false, xattrs: false } }
    const failed = await failing(casesNamed(options, /without hard links|without extended attributes/), () => memoryMount(), options)
    expect(failed).toEqual(expect.arrayContaining(['refuses link with EPERM on a mount without hard links, and makes no name', 'rejects setxattr on a mount without extended attributes with EOPNOTSUPP']))
  })
})
