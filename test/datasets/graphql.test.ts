import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { datasetsGraphQL, datasetsMount, openDatasetStore, push, type OpenDatasetStore } from '../../src/datasets/index.ts'
import { createGraphQLApi } from '../../src/graphql/index.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { gql } from '../graphql/helpers.ts'
import { tempDir, testIdentity } from './helpers.ts'

describe('datasets in GraphQL', () => {
  let root: string
  let open: OpenDatasetStore
  let vfs: Vfs
  beforeEach(async () => {
    root = await tempDir()
    open = await openDatasetStore({ identity: testIdentity(), home: join(root, 'home') })
    vfs = createVfs({ mounts: { '/datasets': datasetsMount(open.store) }, logger: silentLogger })
  })
  afterEach(async () => {
    await vfs.close()
    await open.close()
    await rm(root, { recursive: true, force: true })
  })

  async function pushTree(files: Record<string, string>, tag: string): Promise<string> {
    const dir = join(root, `src-${tag}`)
    await mkdir(dir, { recursive: true })
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
    return (await push(open.store, dir, 'corpus', tag)).version
  }

  it('lists datasets with their tags, versions and tag history', async () => {
    const v1 = await pushTree({ 'a.txt': 'one\n' }, '1.0.0')
    const v2 = await pushTree({ 'a.txt': 'two\n', 'b.txt': 'more\n' }, '1.1.0')
    await open.store.moveTag('corpus', 'stable', v1)
    await open.store.moveTag('corpus', 'stable', v2)
    await open.store.moveTag('corpus', 'old', v1)
    await open.store.moveTag('corpus', 'old', null)
    const api = createGraphQLApi(vfs)
    const res = await gql(api, `{
      datasets { name tags { name version created moved history { version by } } versions { id files bytes created } }
      missing: dataset(name: "nope") { name }
      tree: node(path: "/datasets/corpus/stable/b.txt") { ... on File { text } }
    }`)
    expect(res.errors).toBeUndefined()
    const [ds] = res.data.datasets
    expect(ds.name).toBe('corpus')
    expect(ds.tags.map((t: { name: string; version: string }) => [t.name, t.version])).toEqual([['1.0.0', v1], ['1.1.0', v2], ['stable', v2]])
    const m2 = await open.store.version('corpus', v2)
    expect(ds.tags[1].created).toBe(m2.created)
    expect(ds.tags[2].history).toEqual([{ version: v1, by: 'tester' }, { version: v2, by: 'tester' }])
    expect(Date.parse(ds.tags[2].moved)).toBeGreaterThan(0)
    expect(ds.versions.map((v: { id: string; files: number; bytes: number }) => [v.id, v.files, v.bytes]).sort()).toEqual([[v1, 1, 4], [v2, 2, 9]].sort())
    expect(res.data.missing).toBeNull()
    expect(res.data.tree.text).toBe('more\n')
  })

  it('shows a moved tag on the next query', async () => {
    const v1 = await pushTree({ 'a.txt': 'one\n' }, 'latest')
    const v2 = await pushTree({ 'a.txt': 'two\n' }, 'next')
    const api = createGraphQLApi(vfs)
    const q = `{ dataset(name: "corpus") { tags { name version } } }`
    expect((await gql(api, q)).data.dataset.tags).toEqual([{ name: 'latest', version: v1 }, { name: 'next', version: v2 }])
    await open.store.moveTag('corpus', 'latest', v2)
    expect((await gql(api, q)).data.dataset.tags).toEqual([{ name: 'latest', version: v2 }, { name: 'next', version: v2 }])
  })

  it('serves a store opened on first use, as a lazily opened mount needs', async () => {
    const v1 = await pushTree({ 'a.txt': 'one\n' }, 'latest')
    let opened = 0
    const bare = createVfs({ mounts: {}, logger: silentLogger })
    const api = createGraphQLApi(bare, { contributions: [datasetsGraphQL(async () => (opened++, open.store))] })
    expect(opened).toBe(0)
    expect((await gql(api, '{ datasets { tags { name version } } }')).data.datasets).toEqual([{ tags: [{ name: 'latest', version: v1 }] }])
    expect(opened).toBeGreaterThan(0)
    await bare.close()
  })
})
