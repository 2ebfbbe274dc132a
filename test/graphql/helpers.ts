import { vfsError } from '../../src/vfs/errors.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import type { Mount } from '../../src/vfs/mounts.ts'
import type { Attr, DirPage, FileHandle, NodeGetattr, NodeLookup, NodeOpen, NodeReaddir, OpContext, PageRequest, VNode } from '../../src/vfs/node.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { dir, file, symlink } from '../../src/views/view.ts'
import type { GraphQLApi } from '../../src/graphql/index.ts'

/** A user record of the test `users` view. */
export interface User {
  name: string
  email: string
}

/**
 * A small writable view: `/<name>.json` per user, validated on flush (email must
 * contain '@', else EINVAL "email: expected an address"), plus a typed GraphQL
 * contribution `users { name email }` reading the same store.
 */
export function usersView(initial: User[]): Mount & { store: Map<string, User> } {
  const store = new Map(initial.map(u => [u.name, u]))
  const render = (u: User) => JSON.stringify(u, null, 2) + '\n'
  const t = Date.now()
  const record = (name: string): VNode & NodeGetattr & NodeOpen => ({
    kind: 'file',
    getattr: (ctx: OpContext): Attr => {
      const u = store.get(name)
      const size = u ? Buffer.byteLength(render(u)) : 0
      return { mode: 0o644, size, uid: ctx.uid, gid: ctx.gid, atimeMs: t, mtimeMs: t, ctimeMs: t }
    },
    open: (): FileHandle => {
      const u = store.get(name)
      let buf = Buffer.from(u ? render(u) : '')
      return {
        read: (offset, length) => buf.subarray(offset, offset + length),
        write: (offset, data) => {
          const end = offset + data.length
          if (end > buf.length) buf = Buffer.concat([buf, Buffer.alloc(end - buf.length)])
          buf.set(data, offset)
          return data.length
        },
        truncate: size => {
          buf = size <= buf.length ? buf.subarray(0, size) : Buffer.concat([buf, Buffer.alloc(size - buf.length)])
        },
        getattr: ctx => ({ mode: 0o644, size: buf.length, uid: ctx.uid, gid: ctx.gid, atimeMs: t, mtimeMs: t, ctimeMs: t }),
        flush: () => {
          let value: unknown
          try {
            value = JSON.parse(buf.toString())
          } catch {
            throw vfsError('EINVAL', 'not valid JSON')
          }
          const email = (value as { email?: unknown }).email
          if (typeof email !== 'string' || !email.includes('@')) throw vfsError('EINVAL', 'email: expected an address')
          store.set(name, { name, email })
        },
      }
    },
  })
  const root: VNode & NodeLookup & NodeReaddir & { create(name: string): VNode; unlink(name: string): void } = {
    kind: 'dir',
    lookup: name => (name.endsWith('.json') && store.has(name.slice(0, -5)) ? record(name.slice(0, -5)) : undefined),
    readdir: (page: PageRequest): DirPage => {
      const names = [...store.keys()].sort().map(n => `${n}.json`)
      const start = page.cursor === undefined ? 0 : Number(page.cursor)
      const slice = names.slice(start, start + page.limit)
      const next = start + slice.length
      const entries = slice.map(name => ({ name, kind: 'file' as const }))
      return next < names.length ? { entries, cursor: String(next) } : { entries }
    },
    create: (name: string) => {
      if (!name.endsWith('.json')) throw vfsError('EINVAL', 'a user file is named <name>.json')
      return record(name.slice(0, -5))
    },
    unlink: (name: string) => {
      store.delete(name.slice(0, -5))
    },
  }
  return {
    name: 'users',
    root,
    store,
    graphql: {
      typeDefs: /* GraphQL */ `
        type User {
          name: String!
          email: String!
        }
        extend type Query {
          users: [User!]!
        }
      `,
      resolvers: { Query: { users: () => [...store.values()].sort((a, b) => a.name.localeCompare(b.name)) } },
    },
  }
}

/** The planets of the read-only `/hello` view. */
export const PLANETS = ['mercury', 'venus', 'earth', 'mars', 'jupiter', 'saturn', 'uranus', 'neptune']

/** A read-only view: `README.txt`, `planets/<name>.json`, `notes.yaml`, `log.ndjson` and a symlink `latest` → `planets/earth.json`. */
export function helloView(): Mount {
  return {
    name: 'hello',
    root: dir({
      'README.txt': file('hello, world\n'),
      planets: dir(() =>
        Object.fromEntries(PLANETS.map((name, i) => [`${name}.json`, file(() => JSON.stringify({ name, order: i + 1 }) + '\n')])),
      ),
      'notes.yaml': file('title: notes\ntags:\n  - a\n  - b\n'),
      'log.ndjson': file('{"n":1}\n{"n":2}\n'),
      latest: symlink('planets/earth.json'),
    }),
  }
}

/** A VFS with `/scratch` (memory), `/hello` (read-only view) and `/users` (typed, validating view). */
export function testVfs(): { vfs: Vfs; users: ReturnType<typeof usersView> } {
  const users = usersView([
    { name: 'ada', email: 'ada@example.org' },
    { name: 'linus', email: 'linus@example.org' },
  ])
  const vfs = createVfs({
    logger: silentLogger,
    mounts: { '/scratch': memoryMount({ name: 'scratch' }), '/hello': helloView(), '/users': users },
  })
  return { vfs, users }
}

/** A GraphQL response body. */
export interface Result<T = any> {
  data?: T
  errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> }>
}

/** Runs `query` through `api.fetch` in-process and returns the parsed body. */
export async function gql<T = any>(api: GraphQLApi, query: string, variables?: Record<string, unknown>): Promise<Result<T>> {
  const res = await api.fetch('http://facet/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, variables }),
  })
  return (await res.json()) as Result<T>
}
