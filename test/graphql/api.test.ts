import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createGraphQLApi, type GraphQLApi } from '../../src/graphql/index.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { gql, PLANETS, testVfs, type usersView } from './helpers.ts'

let vfs: Vfs
let users: ReturnType<typeof usersView>
let api: GraphQLApi

beforeEach(() => {
  ;({ vfs, users } = testVfs())
  api = createGraphQLApi(vfs)
})
afterEach(async () => {
  await vfs.close()
})

const ENTRY_PAGE = /* GraphQL */ `
  query Page($path: String!, $first: Int, $after: String, $glob: String) {
    node(path: $path) {
      ... on Directory {
        entries(first: $first, after: $after, glob: $glob) {
          edges { cursor node { name kind } }
          pageInfo { hasNextPage endCursor }
        }
      }
    }
  }
`

describe('reading the tree', () => {
  it('returns a node with the attributes stat reports', async () => {
    await vfs.writeFile('/scratch/a.txt', 'hello')
    await vfs.chmod('/scratch/a.txt', 0o640)
    const st = await vfs.stat('/scratch/a.txt')
    const r = await gql(api, `{ node(path: "/scratch/a.txt") { path name kind size mode permissions uid gid nlink ino atime mtime ctime mount { path name } parent { path } } }`)
    expect(r).toEqual({
      data: {
        node: {
          path: '/scratch/a.txt',
          name: 'a.txt',
          kind: 'FILE',
          size: 5,
          mode: 0o640,
          permissions: '-rw-r-----',
          uid: st.uid,
          gid: st.gid,
          nlink: 1,
          ino: st.ino,
          atime: new Date(st.atimeMs).toISOString(),
          mtime: new Date(st.mtimeMs).toISOString(),
          ctime: new Date(st.ctimeMs).toISOString(),
          mount: { path: '/scratch', name: 'scratch' },
          parent: { path: '/scratch' },
        },
      },
    })
  })

  it('returns null for a missing path and ENOTDIR below a file', async () => {
    await vfs.writeFile('/scratch/f', 'x')
    expect(await gql(api, `{ node(path: "/scratch/missing") { path } }`)).toEqual({ data: { node: null } })
    const r = await gql(api, `{ node(path: "/scratch/f/x") { path } }`)
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'ENOTDIR', syscall: 'lstat', path: '/scratch/f/x' })
    expect(r.errors?.[0]?.message).toBe("ENOTDIR: not a directory, lstat '/scratch/f/x'")
  })

  it('lists the root with mount points as directories, and the mount table', async () => {
    const r = await gql(api, `{ mounts { path name } node(path: "/") { kind ... on Directory { entries { nodes { name kind } } } } }`)
    expect(r.data.mounts).toEqual([
      { path: '/scratch', name: 'scratch' },
      { path: '/hello', name: 'hello' },
      { path: '/users', name: 'users' },
    ])
    expect(r.data.node.entries.nodes).toEqual([
      { name: 'scratch', kind: 'DIRECTORY' },
      { name: 'hello', kind: 'DIRECTORY' },
      { name: 'users', kind: 'DIRECTORY' },
    ])
  })

  it('pages through a directory with cursors, every entry once, in listing order', async () => {
    const names = Array.from({ length: 25 }, (_, i) => `f${String(i).padStart(2, '0')}`)
    for (const n of names) await vfs.writeFile(`/scratch/${n}`, n)
    const seen: string[] = []
    let after: string | null = null
    let pages = 0
    for (;;) {
      const r: any = await gql(api, ENTRY_PAGE, { path: '/scratch', first: 10, after })
      const conn: any = r.data.node.entries
      seen.push(...conn.edges.map((e: { node: { name: string } }) => e.node.name))
      pages++
      expect(conn.pageInfo.endCursor).toBe(conn.edges.at(-1).cursor)
      if (!conn.pageInfo.hasNextPage) break
      after = conn.pageInfo.endCursor
    }
    expect(seen).toEqual(names)
    expect(pages).toBe(3)
  })

  it('resumes a listing from the cursor of any edge', async () => {
    for (let i = 0; i < 6; i++) await vfs.writeFile(`/scratch/${i}`, '')
    const all = (await gql(api, ENTRY_PAGE, { path: '/scratch', first: 6 })).data.node.entries.edges
    const rest = await gql(api, ENTRY_PAGE, { path: '/scratch', first: 100, after: all[2].cursor })
    expect(rest.data.node.entries.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['3', '4', '5'])
    expect(rest.data.node.entries.pageInfo.hasNextPage).toBe(false)
  })

  it('filters entries by a glob on the name', async () => {
    const r = await gql(api, ENTRY_PAGE, { path: '/hello/planets', first: 2, glob: 'm*.json' })
    expect(r.data.node.entries.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['mercury.json', 'mars.json'])
    expect(r.data.node.entries.pageInfo.hasNextPage).toBe(false)
  })

  it('refuses a page larger than the limit with EINVAL', async () => {
    const r = await gql(api, ENTRY_PAGE, { path: '/scratch', first: 1001 })
    expect(r.errors?.[0]?.extensions?.code).toBe('EINVAL')
    expect(r.errors?.[0]?.message).toBe("EINVAL: invalid argument (first must be between 0 and 1000), scandir '/scratch'")
  })

  it('refuses a forged cursor with EINVAL', async () => {
    const r = await gql(api, ENTRY_PAGE, { path: '/scratch', first: 1, after: 'bm9wZQ' })
    expect(r.errors?.[0]?.extensions?.code).toBe('EINVAL')
  })

  it('reads text, byte ranges and base64', async () => {
    await vfs.writeFile('/scratch/t', 'héllo world')
    const r = await gql(api, `{ node(path: "/scratch/t") { ... on File { all: text mid: text(offset: 7, length: 5) tail: text(offset: 3) b64: base64(offset: 0, length: 3) past: text(offset: 100) } } }`)
    expect(r.data.node).toEqual({ all: 'héllo world', mid: 'world', tail: 'llo world', b64: Buffer.from('hé').toString('base64'), past: '' })
  })

  it('parses .json, .yaml and .ndjson records and gives null for other files', async () => {
    const r = await gql(api, `{
      j: node(path: "/hello/planets/earth.json") { ... on File { json } }
      y: node(path: "/hello/notes.yaml") { ... on File { json } }
      n: node(path: "/hello/log.ndjson") { ... on File { json } }
      t: node(path: "/hello/README.txt") { ... on File { json text } }
    }`)
    expect(r.data).toEqual({
      j: { json: { name: 'earth', order: 3 } },
      y: { json: { title: 'notes', tags: ['a', 'b'] } },
      n: { json: [{ n: 1 }, { n: 2 }] },
      t: { json: null, text: 'hello, world\n' },
    })
  })

  it('reports a record that does not parse with EINVAL', async () => {
    await vfs.writeFile('/scratch/bad.json', '{nope')
    const r = await gql(api, `{ node(path: "/scratch/bad.json") { ... on File { json } } }`)
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'EINVAL', path: '/scratch/bad.json' })
    expect(r.errors?.[0]?.message).toMatch(/^EINVAL: invalid argument \(not valid json: /)
  })

  it('returns a symlink itself, its target and the node it leads to', async () => {
    const r = await gql(api, `{ node(path: "/hello/latest") { kind ... on Symlink { target resolved { path kind ... on File { json } } } } }`)
    expect(r.data.node).toEqual({ kind: 'SYMLINK', target: 'planets/earth.json', resolved: { path: '/hello/planets/earth.json', kind: 'FILE', json: { name: 'earth', order: 3 } } })
  })

  it('finds nodes lazily by glob and kind, across mounts, in pages', async () => {
    await vfs.mkdir('/scratch/d')
    await vfs.writeFile('/scratch/d/x.json', '{}')
    const r = await gql(api, `{ find(path: "/", glob: "**/*.json", kind: FILE, first: 100) { nodes { path } pageInfo { hasNextPage } } }`)
    expect(r.data.find.nodes.map((n: { path: string }) => n.path)).toEqual([
      '/scratch/d/x.json',
      ...PLANETS.map(p => `/hello/planets/${p}.json`),
      '/users/ada.json',
      '/users/linus.json',
    ])
    expect(r.data.find.pageInfo.hasNextPage).toBe(false)

    const seen: string[] = []
    let after: string | null = null
    for (;;) {
      const page: any = await gql(api, `query($after: String) { find(path: "/hello", first: 3, after: $after) { nodes { path } pageInfo { hasNextPage endCursor } } }`, { after })
      seen.push(...page.data.find.nodes.map((n: { path: string }) => n.path))
      if (!page.data.find.pageInfo.hasNextPage) break
      after = page.data.find.pageInfo.endCursor
    }
    expect(seen).toEqual([
      '/hello/README.txt',
      '/hello/planets',
      ...PLANETS.map(p => `/hello/planets/${p}.json`),
      '/hello/notes.yaml',
      '/hello/log.ndjson',
      '/hello/latest',
    ])
  })

  it('limits find to maxDepth and to directories', async () => {
    const r = await gql(api, `{ find(path: "/hello", kind: DIRECTORY) { nodes { path } } shallow: find(path: "/", maxDepth: 1) { nodes { path } } }`)
    expect(r.data.find.nodes).toEqual([{ path: '/hello/planets' }])
    expect(r.data.shallow.nodes).toEqual([{ path: '/scratch' }, { path: '/hello' }, { path: '/users' }])
  })

  it('stops a find after the scan limit and resumes it from the cursor', async () => {
    const small = createGraphQLApi(vfs, { limits: { maxFindScan: 4 } })
    const q = `query($after: String) { find(path: "/hello", glob: "**/*.yaml", after: $after) { nodes { path } pageInfo { hasNextPage endCursor } } }`
    const found: string[] = []
    let after: string | null = null
    let pages = 0
    for (;;) {
      const r: any = await gql(small, q, { after })
      found.push(...r.data.find.nodes.map((n: { path: string }) => n.path))
      pages++
      if (!r.data.find.pageInfo.hasNextPage) break
      after = r.data.find.pageInfo.endCursor
    }
    expect(found).toEqual(['/hello/notes.yaml'])
    expect(pages).toBe(4)
  })
})

describe('attributes of a page', () => {
  it('gives through lstatEntries exactly what lstat gives, mount points included, and undefined for a missing name', async () => {
    await vfs.writeFile('/scratch/a', 'abc')
    await vfs.symlink('a', '/scratch/l')
    const [a, l, missing] = await vfs.lstatEntries('/scratch', ['a', 'l', 'nope'])
    expect(a).toEqual(await vfs.lstat('/scratch/a'))
    expect(l).toEqual(await vfs.lstat('/scratch/l'))
    expect(missing).toBeUndefined()
    expect(await vfs.lstatEntries('/', ['hello', 'users'])).toEqual([await vfs.lstat('/hello'), await vfs.lstat('/users')])
    await expect(vfs.lstatEntries('/scratch/a', ['x'])).rejects.toMatchObject({ code: 'ENOTDIR', syscall: 'lstat', path: '/scratch/a' })
  })

  it('reports the attributes of every entry of a page as lstat does, through fragments too', async () => {
    for (let i = 0; i < 5; i++) await vfs.writeFile(`/scratch/f${i}`, 'x'.repeat(i))
    const r = await gql(api, `{ node(path: "/scratch") { ... on Directory { entries { edges { node { ...A } } } } } } fragment A on Node { name size mode mtime }`)
    const expected = await Promise.all([0, 1, 2, 3, 4].map(async i => {
      const st = await vfs.lstat(`/scratch/f${i}`)
      return { node: { name: `f${i}`, size: i, mode: st.mode & 0o7777, mtime: new Date(st.mtimeMs).toISOString() } }
    }))
    expect(r.data.node.entries.edges).toEqual(expected)
  })

  it.each([true, false])('gives the attributes of a parent and of a mount root as lstat does (jit %s)', async jit => {
    const own = createGraphQLApi(vfs, { jit })
    await vfs.mkdir('/scratch/d')
    await vfs.chmod('/scratch/d', 0o750)
    await vfs.writeFile('/scratch/d/a.txt', 'hello')
    const [d, root] = [await vfs.lstat('/scratch/d'), await vfs.lstat('/scratch')]
    const r = await gql(own, `{ node(path: "/scratch/d/a.txt") { size parent { path size mode permissions mtime } } mounts { path root { mode ctime } } }`)
    expect(r.errors).toBeUndefined()
    expect(r.data.node).toEqual({ size: 5, parent: { path: '/scratch/d', size: d.size, mode: 0o750, permissions: 'drwxr-x---', mtime: new Date(d.mtimeMs).toISOString() } })
    expect(r.data.mounts.find((m: { path: string }) => m.path === '/scratch').root).toEqual({ mode: root.mode & 0o7777, ctime: new Date(root.ctimeMs).toISOString() })
  })
})

describe('limits', () => {
  it('refuses a text field over the byte limit with EFBIG and serves a range of it', async () => {
    await vfs.writeFile('/scratch/big', Buffer.alloc(2 * 1024 * 1024, 'a'))
    const r = await gql(api, `{ node(path: "/scratch/big") { ... on File { text } } }`)
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'EFBIG', path: '/scratch/big' })
    expect(r.errors?.[0]?.message).toBe("EFBIG: file too large (a field returns at most 1048576 bytes; ask for a range with offset and length), read '/scratch/big'")
    const b = await gql(api, `{ node(path: "/scratch/big") { ... on File { base64(offset: 1048575) } } }`)
    expect(b.errors?.[0]?.extensions?.code).toBe('EFBIG')
    const ok = await gql(api, `{ node(path: "/scratch/big") { ... on File { text(offset: 2097150, length: 1048576) } } }`)
    expect(ok.data.node.text).toBe('aa')
    const tooLong = await gql(api, `{ node(path: "/scratch/big") { ... on File { text(offset: 0, length: 1048577) } } }`)
    expect(tooLong.errors?.[0]?.extensions?.code).toBe('EFBIG')
  })

  it('refuses content over the per-request byte budget with EFBIG, however it is split into fields', async () => {
    const small = createGraphQLApi(vfs, { limits: { maxRequestBytes: 10 } })
    for (let i = 0; i < 3; i++) await vfs.writeFile(`/scratch/${i}`, 'abcd')
    const r = await gql(small, `{ node(path: "/scratch") { ... on Directory { entries { nodes { ... on File { text } } } } } }`)
    expect(r.errors).toHaveLength(1)
    expect(r.errors?.[0]?.message).toMatch(/^EFBIG: file too large \(one request returns at most 10 bytes of content; ask for fewer files or shorter ranges\), read '\/scratch\/[0-2]'$/)
    const ok = await gql(small, `{ node(path: "/scratch") { ... on Directory { entries(first: 2) { nodes { ... on File { text } } } } } }`)
    expect(ok.data.node.entries.nodes).toEqual([{ text: 'abcd' }, { text: 'abcd' }])
  })

  it('refuses a query nested deeper than the limit with DEPTH_LIMIT', async () => {
    const deep = `{ node(path: "/") { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { path } } } } } } } } } } } } }`
    const r = await gql(api, deep)
    expect(r.data).toBeUndefined()
    expect(r.errors?.[0]).toMatchObject({ message: 'query depth 13 exceeds the limit of 12', extensions: { code: 'DEPTH_LIMIT' } })
    const viaFragment = await gql(api, `{ node(path: "/") { ...P } } fragment P on Node { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { path } } } } } } } } } } } }`)
    expect(viaFragment.errors?.[0]?.extensions?.code).toBe('DEPTH_LIMIT')
    const shallow = await gql(api, `{ node(path: "/") { parent { path } } }`)
    expect(shallow).toEqual({ data: { node: { parent: null } } })
  })

  it('answers the full introspection query GraphiQL sends despite the depth limit', async () => {
    const { getIntrospectionQuery } = await import('graphql')
    const r = await gql(api, getIntrospectionQuery())
    expect(r.errors).toBeUndefined()
    expect(r.data.__schema.queryType.name).toBe('Query')
  })
})

describe('mutations', () => {
  it('writes text, base64 and json and reads them back', async () => {
    const r = await gql(api, `mutation {
      a: writeFile(path: "/scratch/a.txt", text: "hi\\n") { path size text }
      b: writeFile(path: "/scratch/b.bin", base64: "AAEC") { size base64 }
      c: writeFile(path: "/scratch/c.json", json: { x: [1, 2], y: "z" }) { text json }
      d: writeFile(path: "/scratch/d.yaml", json: { x: 1 }) { text }
    }`)
    expect(r.data).toEqual({
      a: { path: '/scratch/a.txt', size: 3, text: 'hi\n' },
      b: { size: 3, base64: 'AAEC' },
      c: { text: '{\n  "x": [\n    1,\n    2\n  ],\n  "y": "z"\n}\n', json: { x: [1, 2], y: 'z' } },
      d: { text: 'x: 1\n' },
    })
    expect((await vfs.readFile('/scratch/b.bin')).toString('hex')).toBe('000102')
  })

  it('refuses writeFile with no or two contents with EINVAL', async () => {
    const none = await gql(api, `mutation { writeFile(path: "/scratch/x") { path } }`)
    expect(none.errors?.[0]?.extensions?.code).toBe('EINVAL')
    const two = await gql(api, `mutation { writeFile(path: "/scratch/x", text: "a", base64: "YQ==") { path } }`)
    expect(two.errors?.[0]?.message).toBe("EINVAL: invalid argument (give exactly one of text, base64 or json), open '/scratch/x'")
    const json = await gql(api, `mutation { writeFile(path: "/scratch/x.txt", json: 1) { path } }`)
    expect(json.errors?.[0]?.extensions?.code).toBe('EINVAL')
  })

  it('refuses a write to a read-only view with EROFS, as the VFS does', async () => {
    const direct = await vfs.writeFile('/hello/README.txt', 'x').catch(e => e)
    const r = await gql(api, `mutation { writeFile(path: "/hello/README.txt", text: "x") { path } }`)
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'EROFS', errno: 30, path: '/hello/README.txt' })
    expect(r.errors?.[0]?.message).toBe(direct.message)
  })

  it('lets a view validate a write and returns its EINVAL message unchanged', async () => {
    const direct = await vfs.writeFile('/users/ada.json', '{"name":"ada","email":"nope"}').catch(e => e)
    expect(direct.code).toBe('EINVAL')
    const r = await gql(api, `mutation { writeFile(path: "/users/ada.json", json: { name: "ada", email: "nope" }) { path } }`)
    expect(r.errors?.[0]?.message).toBe(direct.message)
    expect(r.errors?.[0]?.message).toBe("EINVAL: invalid argument (email: expected an address), close '/users/ada.json'")
    expect(users.store.get('ada')).toEqual({ name: 'ada', email: 'ada@example.org' })
    const ok = await gql(api, `mutation { writeFile(path: "/users/grace.json", json: { name: "grace", email: "grace@example.org" }) { json } }`)
    expect(ok.data.writeFile.json).toEqual({ name: 'grace', email: 'grace@example.org' })
    expect(users.store.get('grace')).toEqual({ name: 'grace', email: 'grace@example.org' })
  })

  it('makes folders, with parents like mkdir -p', async () => {
    const r = await gql(api, `mutation { a: mkdir(path: "/scratch/a") { path kind mode } b: mkdir(path: "/scratch/x/y/z", parents: true, mode: 448) { path permissions } again: mkdir(path: "/scratch/x/y", parents: true) { path } }`)
    expect(r.data).toEqual({ a: { path: '/scratch/a', kind: 'DIRECTORY', mode: 0o755 }, b: { path: '/scratch/x/y/z', permissions: 'drwx------' }, again: { path: '/scratch/x/y' } })
    const exists = await gql(api, `mutation { mkdir(path: "/scratch/a") { path } }`)
    expect(exists.errors?.[0]).toMatchObject({ message: "EEXIST: file already exists, mkdir '/scratch/a'", extensions: { code: 'EEXIST' } })
  })

  it('removes files and empty folders, refuses a full folder with ENOTEMPTY, and removes it recursively on request', async () => {
    await vfs.mkdir('/scratch/d')
    await vfs.mkdir('/scratch/d/e')
    await vfs.writeFile('/scratch/d/e/f', 'x')
    await vfs.writeFile('/scratch/g', 'x')
    expect((await gql(api, `mutation { remove(path: "/scratch/g") }`)).data).toEqual({ remove: true })
    const full = await gql(api, `mutation { remove(path: "/scratch/d") }`)
    expect(full.errors?.[0]?.extensions).toMatchObject({ code: 'ENOTEMPTY', syscall: 'rmdir' })
    expect((await gql(api, `mutation { remove(path: "/scratch/d", recursive: true) }`)).data).toEqual({ remove: true })
    expect(await vfs.readdirAll('/scratch')).toEqual([])
    const missing = await gql(api, `mutation { remove(path: "/scratch/nope") }`)
    expect(missing.errors?.[0]?.extensions?.code).toBe('ENOENT')
  })

  it('moves within a mount and refuses a move across mounts with EXDEV', async () => {
    await vfs.writeFile('/scratch/a', 'A')
    const r = await gql(api, `mutation { move(from: "/scratch/a", to: "/scratch/b") { path ... on File { text } } }`)
    expect(r.data).toEqual({ move: { path: '/scratch/b', text: 'A' } })
    const x = await gql(api, `mutation { move(from: "/scratch/b", to: "/users/b.json") { path } }`)
    expect(x.errors?.[0]?.extensions).toMatchObject({ code: 'EXDEV', path: '/scratch/b', dest: '/users/b.json' })
  })

  it('sets permission bits and makes symlinks', async () => {
    await vfs.writeFile('/scratch/a', 'A')
    const r = await gql(api, `mutation { chmod(path: "/scratch/a", mode: 384) { permissions } symlink(target: "a", path: "/scratch/l") { target resolved { ... on File { text } } } }`)
    expect(r.data).toEqual({ chmod: { permissions: '-rw-------' }, symlink: { target: 'a', resolved: { text: 'A' } } })
    const bad = await gql(api, `mutation { chmod(path: "/scratch/a", mode: 99999) { path } }`)
    expect(bad.errors?.[0]?.extensions?.code).toBe('EINVAL')
  })

  it('refuses a mutation sent with GET', async () => {
    const res = await api.fetch('http://facet/graphql?query=' + encodeURIComponent('mutation { mkdir(path: "/scratch/g") { path } }'))
    expect(res.status).toBe(405)
    await expect(vfs.stat('/scratch/g')).rejects.toMatchObject({ code: 'ENOENT' })
  })
})

describe('errors and requests', () => {
  it('masks an unexpected error and never sends its text', async () => {
    vfs.mount('/boom', {
      name: 'boom',
      root: { kind: 'dir', readdir: () => { throw new TypeError('secret internals') } } as never,
    })
    const r = await gql(api, `{ node(path: "/boom") { ... on Directory { entries { nodes { name } } } } }`)
    expect(JSON.stringify(r)).not.toContain('secret')
    expect(r.errors?.[0]?.extensions?.code).toBe('EIO')
  })

  it('masks an error thrown by a typed view resolver as "Unexpected error."', async () => {
    const bad = createGraphQLApi(vfs, {
      contributions: [{ typeDefs: 'extend type Query { boom: Int }', resolvers: { Query: { boom: () => { throw new Error('secret internals') } } } }],
    })
    const r = await gql(bad, `{ boom }`)
    expect(r.errors?.[0]).toMatchObject({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } })
    expect(JSON.stringify(r)).not.toContain('secret')
  })

  it('refuses a form-encoded POST, which a web page could send cross-site, with 415', async () => {
    const res = await api.fetch('http://facet/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'query=' + encodeURIComponent('mutation { mkdir(path: "/scratch/csrf") { path } }'),
    })
    expect(res.status).toBe(415)
    await expect(vfs.stat('/scratch/csrf')).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('sends no CORS header, so other origins cannot read answers', async () => {
    const res = await api.fetch('http://facet/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
      body: JSON.stringify({ query: '{ mounts { path } }' }),
    })
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
  })
})

describe('typed views', () => {
  it('merges a view contribution into the schema beside the generic tree', async () => {
    const r = await gql(api, `{ users { name email } node(path: "/users/ada.json") { ... on File { json } } }`)
    expect(r).toEqual({
      data: {
        users: [
          { name: 'ada', email: 'ada@example.org' },
          { name: 'linus', email: 'linus@example.org' },
        ],
        node: { json: { name: 'ada', email: 'ada@example.org' } },
      },
    })
  })

  it('follows the mount table: an unmounted view takes its fields away', async () => {
    expect((await gql(api, `{ users { name } }`)).errors).toBeUndefined()
    await vfs.unmount('/users')
    const r = await gql(api, `{ users { name } }`)
    expect(r.errors?.[0]?.message).toBe('Cannot query field "users" on type "Query".')
  })

  it('leaves out a contribution that clashes and serves the rest', async () => {
    vfs.mount('/other', { ...memoryMount({ name: 'other' }), graphql: { typeDefs: 'type User { id: ID! } extend type Query { others: [User!]! }', resolvers: {} } })
    const r = await gql(api, `{ users { name } }`)
    expect(r.errors).toBeUndefined()
    expect(r.data.users).toHaveLength(2)
  })
})

describe('GraphiQL', () => {
  it('serves GraphiQL from the package, with no external script, style or font', async () => {
    const res = await api.fetch('http://facet/graphql', { headers: { accept: 'text/html' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/html')
    const html = await res.text()
    expect(html).toContain('<title>FacetFS GraphQL</title>')
    expect(html).toContain('YogaGraphiQL.renderYogaGraphiQL')
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i)
    expect(html).not.toMatch(/url\(\s*["']?(https?:)?\/\//i)
    expect(html).not.toMatch(/@import|importScripts\(\s*["']http/i)
    expect(html).not.toMatch(/unpkg\.com|jsdelivr|cdnjs|fonts\.googleapis/i)
  })
})
