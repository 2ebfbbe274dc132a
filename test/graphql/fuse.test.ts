import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDemoConfig } from '../../src/demo/index.ts'
import { createGraphQLApi, type GraphQLApi } from '../../src/graphql/index.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { gql } from './helpers.ts'

const run = promisify(execFile)

interface TestMount {
  dir: string
  unmount(): Promise<void>
}
interface FuseHelpers {
  mountForTest(vfs: Vfs): Promise<TestMount>
  fuseSkip: string | undefined
}

/** The shared FUSE test helpers when they exist; else a mount made the same way with `mountFuse`. */
async function fuseHelpers(): Promise<FuseHelpers> {
  const shared = '../helpers/fuse.ts'
  try {
    return (await import(/* @vite-ignore */ shared)) as FuseHelpers
  } catch {
    const { mountFuse } = await import('../../src/fuse/index.ts')
    let fuseSkip: string | undefined
    try {
      const { loadFuse } = await import('../../src/fuse/binding.ts')
      loadFuse()
    } catch (err) {
      fuseSkip = `FUSE unavailable: ${err instanceof Error ? err.message : String(err)}`
    }
    return {
      fuseSkip,
      async mountForTest(vfs) {
        const dir = await mkdtemp(join(tmpdir(), 'facet-test-'))
        const m = await mountFuse(vfs, dir)
        return { dir, unmount: async () => (await m.unmount(), await rm(dir, { recursive: true, force: true })) }
      },
    }
  }
}

const helpers = await fuseHelpers()

describe.skipIf(helpers.fuseSkip)('GraphQL beside FUSE on the demo tree', () => {
  let vfs: Vfs
  let api: GraphQLApi
  let mnt: TestMount

  beforeAll(async () => {
    const { mounts } = await createDemoConfig({ chain: false })
    // /proc renders its own op counts, which every read changes: the one folder whose two reads differ by design.
    delete mounts['/proc']
    vfs = createVfs({ mounts, logger: silentLogger })
    api = createGraphQLApi(vfs)
    mnt = await helpers.mountForTest(vfs)
  })
  afterAll(async () => {
    await mnt?.unmount()
    await vfs?.close()
  })

  it('lists and reads the same names, sizes, modes and bytes as ls, stat and cat through FUSE', async () => {
    const r = await gql(api, `{ root: node(path: "/") { ... on Directory { entries(first: 1000) { nodes { path } } } } find(first: 1000) { nodes { path kind size permissions ... on File { base64 } ... on Directory { entries(first: 1000) { nodes { name } } } } } }`)
    expect(r.errors).toBeUndefined()
    const nodes: Array<{ path: string; kind: string; size: number; permissions: string; base64?: string; entries?: { nodes: Array<{ name: string }> } }> = r.data.find.nodes
    const files = nodes.filter(n => n.kind === 'FILE')
    const dirs = nodes.filter(n => n.kind === 'DIRECTORY')
    expect(files.map(f => f.path)).toEqual(expect.arrayContaining(['/hello/README.txt', '/hello/summary.txt', '/hello/planets/earth.json', '/scratch/README.txt']))

    const rootLs = (await run('ls', ['-A1', mnt.dir])).stdout.split('\n').filter(Boolean).sort()
    expect(rootLs).toEqual(r.data.root.entries.nodes.map((n: { path: string }) => n.path.slice(1)).sort())
    for (const d of dirs) {
      const ls = (await run('ls', ['-A1', mnt.dir + d.path])).stdout.split('\n').filter(Boolean).sort()
      expect(ls, d.path).toEqual(d.entries!.nodes.map(n => n.name).sort())
    }
    const statOut = (await run('stat', ['-c', '%s %A', ...nodes.map(n => mnt.dir + n.path)])).stdout.trim().split('\n')
    expect(statOut).toEqual(nodes.map(n => `${n.size} ${n.permissions}`))
    for (const f of files) {
      const { stdout } = await run('cat', [mnt.dir + f.path], { encoding: 'buffer' })
      expect(stdout.toString('base64'), f.path).toBe(f.base64)
    }
  })

  it('shows a GraphQL mutation through FUSE at once', async () => {
    const r = await gql(api, `mutation { mkdir(path: "/scratch/gql") { path } writeFile(path: "/scratch/gql/note.txt", text: "from graphql\\n") { size } }`)
    expect(r).toEqual({ data: { mkdir: { path: '/scratch/gql' }, writeFile: { size: 13 } } })
    expect((await run('cat', [mnt.dir + '/scratch/gql/note.txt'])).stdout).toBe('from graphql\n')
    expect((await run('ls', ['-A1', mnt.dir + '/scratch/gql'])).stdout).toBe('note.txt\n')
    await gql(api, `mutation { move(from: "/scratch/gql/note.txt", to: "/scratch/gql/moved.txt") { path } }`)
    expect((await run('ls', ['-A1', mnt.dir + '/scratch/gql'])).stdout).toBe('moved.txt\n')
  })

  it('returns the EROFS a shell write to the read-only view gets, in the same words', async () => {
    const shell = await run('sh', ['-c', `echo x > ${mnt.dir}/hello/README.txt`]).catch((e: { stderr: string }) => e)
    expect((shell as { stderr: string }).stderr).toMatch(/Read-only file system/)
    const r = await gql(api, `mutation { writeFile(path: "/hello/README.txt", text: "x") { path } }`)
    expect(r.errors?.[0]).toMatchObject({ message: "EROFS: read-only file system, open '/hello/README.txt'", extensions: { code: 'EROFS' } })
  })

  it('delivers an edit made through FUSE by a shell to a subscription', async () => {
    const res = await api.fetch('http://facet/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: `subscription { changes(path: "/scratch/f") { type path } }` }),
    })
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    await run('sh', ['-c', `echo x > ${mnt.dir}/scratch/f`])
    let text = ''
    while (!text.includes('event: next')) {
      const { value, done } = await reader.read()
      if (done) break
      text += value
    }
    await reader.cancel()
    const data = JSON.parse(text.split('\n').find(l => l.startsWith('data:'))!.slice(5))
    expect(data).toEqual({ data: { changes: { type: 'CREATE', path: '/scratch/f' } } })
    expect((await gql(api, `{ node(path: "/scratch/f") { ... on File { text } } }`)).data.node.text).toBe('x\n')
  })
})
