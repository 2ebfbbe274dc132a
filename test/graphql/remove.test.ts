import { afterEach, describe, expect, it } from 'vitest'
import { createGraphQLApi } from '../../src/graphql/index.ts'
import { vfsError } from '../../src/vfs/errors.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import type { Attr, DirPage, VNode } from '../../src/vfs/node.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { dir, file } from '../../src/views/view.ts'
import { gql } from './helpers.ts'

let vfs: Vfs
afterEach(async () => {
  await vfs?.close()
})

/** A folder that lists, removes and holds `children`: writable for removal, as a view's collection is. */
function removableDir(children: Map<string, VNode>): VNode & { children: Map<string, VNode> } {
  const attr = (): Attr => ({ mode: 0o755, size: 4096, uid: 0, gid: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 })
  return {
    kind: 'dir',
    children,
    getattr: attr,
    lookup: (name: string) => children.get(name),
    readdir: (): DirPage => ({ entries: [...children].map(([name, node]) => ({ name, kind: node.kind })) }),
    unlink: (name: string) => void children.delete(name),
    rmdir: (name: string) => {
      const child = children.get(name) as { children?: Map<string, VNode> } | undefined
      if (!child?.children) throw vfsError('EROFS')
      if (child.children.size > 0) throw vfsError('ENOTEMPTY')
      children.delete(name)
    },
  } as VNode & { children: Map<string, VNode> }
}

describe('recursive remove', () => {
  it('refuses a mount point with EBUSY before deleting anything, and a folder holding one', async () => {
    vfs = createVfs({ logger: silentLogger, mounts: { '/files': memoryMount({ name: 'files' }), '/data': memoryMount({ name: 'data' }) } })
    for (const name of ['a.txt', 'b.txt', 'c.txt']) await vfs.writeFile(`/files/${name}`, name)
    await vfs.mkdir('/data/sub')
    await vfs.writeFile('/data/sub/keep.txt', 'x')
    vfs.mount('/data/sub/nested', memoryMount({ name: 'nested' }))
    const api = createGraphQLApi(vfs)

    const files = await gql(api, `mutation { remove(path: "/files", recursive: true) }`)
    expect(files.errors?.[0]).toMatchObject({ message: "EBUSY: resource busy or locked (it is a mount point), rmdir '/files'", extensions: { code: 'EBUSY' } })
    expect((await vfs.readdirAll('/files')).map(e => e.name).sort()).toEqual(['a.txt', 'b.txt', 'c.txt'])

    const holding = await gql(api, `mutation { remove(path: "/data/sub", recursive: true) }`)
    expect(holding.errors?.[0]).toMatchObject({ message: "EBUSY: resource busy or locked ('/data/sub/nested' below it is a mount point), rmdir '/data/sub'", extensions: { code: 'EBUSY' } })
    expect(await vfs.readFile('/data/sub/keep.txt', undefined)).toEqual(Buffer.from('x'))
    expect((await gql(api, `mutation { remove(path: "/", recursive: true) }`)).errors?.[0]?.extensions?.code).toBe('EBUSY')
  })

  it('refuses a subtree holding a read-only part with EROFS before deleting anything', async () => {
    const top = removableDir(new Map<string, VNode>([['a.txt', file('a')], ['b.txt', file('b')], ['ro', dir({ 'keep.txt': file('k') })], ['z.txt', file('z')]]))
    const root = removableDir(new Map<string, VNode>([['top', top]]))
    vfs = createVfs({ logger: silentLogger, mounts: { '/mixed': { name: 'mixed', root } } })
    const api = createGraphQLApi(vfs)

    const r = await gql(api, `mutation { remove(path: "/mixed/top", recursive: true) }`)
    expect(r.errors?.[0]).toMatchObject({ message: "EROFS: read-only file system ('/mixed/top/ro' is read-only), rmdir '/mixed/top'", extensions: { code: 'EROFS' } })
    expect((await vfs.readdirAll('/mixed/top')).map(e => e.name)).toEqual(['a.txt', 'b.txt', 'ro', 'z.txt'])

    top.children.delete('ro')
    expect((await gql(api, `mutation { remove(path: "/mixed/top", recursive: true) }`)).data).toEqual({ remove: true })
    expect(await vfs.readdirAll('/mixed')).toEqual([])
  })

  it('refuses a subtree the caller may not empty with EACCES before deleting anything', async () => {
    vfs = createVfs({ logger: silentLogger, mounts: { '/scratch': memoryMount({ name: 'scratch' }) } })
    await vfs.chmod('/scratch', 0o777)
    await vfs.mkdir('/scratch/t', 0o777)
    await vfs.writeFile('/scratch/t/mine.txt', 'x')
    await vfs.mkdir('/scratch/t/locked', 0o755)
    await vfs.writeFile('/scratch/t/locked/root.txt', 'x')
    const api = createGraphQLApi(vfs, { caller: { uid: 65534, gid: 65534 } })

    const r = await gql(api, `mutation { remove(path: "/scratch/t", recursive: true) }`)
    expect(r.errors?.[0]).toMatchObject({ message: "EACCES: permission denied, access '/scratch/t/locked'", extensions: { code: 'EACCES' } })
    expect((await vfs.readdirAll('/scratch/t')).map(e => e.name).sort()).toEqual(['locked', 'mine.txt'])
  })
})
