import { GraphQLError, GraphQLScalarType, Kind, type GraphQLResolveInfo, type SelectionSetNode, type ValueNode } from 'graphql'
import { VfsError } from '../vfs/errors.ts'
import type { NodeKind } from '../vfs/node.ts'
import { dirname, normalize, split } from '../vfs/path.ts'
import type { ChangeEvent } from '../vfs/vfs.ts'
import { parseRecord, recordFormat, stringifyRecord } from './records.ts'
import { removeTree } from './remove.ts'
import {
  existingNode,
  prefetchStats,
  STAT_FIELDS,
  findNodes,
  listEntries,
  mountOf,
  nodeAt,
  NodeRef,
  readRange,
  encodeCursor,
  type Edge,
  type GraphQLContext,
  type Page,
} from './tree.ts'

/** The fields of interface Node, which SDL makes every implementing type repeat; documented on the interface. */
const NODE_FIELDS = `  path: String!
  name: String!
  kind: NodeKind!
  size: Float!
  mode: Int!
  permissions: String!
  uid: Int!
  gid: Int!
  nlink: Int!
  ino: Float!
  atime: String!
  mtime: String!
  ctime: String!
  mount: Mount
  parent: Directory`

/** The SDL of the generic tree every FacetFS GraphQL API serves. */
export const treeTypeDefs = /* GraphQL */ `
"Any JSON value: a parsed record, or input for one."
scalar JSON

"What a node is."
enum NodeKind {
  FILE
  DIRECTORY
  SYMLINK
  FIFO
  CHAR_DEVICE
  BLOCK_DEVICE
  SOCKET
}

"A file, directory or symlink of the tree, with the attributes 'stat' reports (of the node itself, not a symlink's target)."
interface Node {
  "Absolute path, e.g. '/hello/planets/earth.json'."
  path: String!
  "The last name of the path; '' for the root."
  name: String!
  kind: NodeKind!
  "Exact byte length of the content (of the target text, for a symlink)."
  size: Float!
  "Permission bits, e.g. 420 (0o644)."
  mode: Int!
  "Mode as 'ls -l' prints it, e.g. '-rw-r--r--'."
  permissions: String!
  uid: Int!
  gid: Int!
  nlink: Int!
  ino: Float!
  "ISO 8601 times."
  atime: String!
  mtime: String!
  ctime: String!
  "The mount the node lies in; null above every mount."
  mount: Mount
  "The folder holding this node; null for the root."
  parent: Directory
}

type File implements Node {
${NODE_FIELDS}
  "Content as UTF-8 text: 'length' bytes from byte 'offset' (to the end when absent). At most the field byte limit (EFBIG beyond)."
  text(offset: Float = 0, length: Float): String!
  "Content as base64: 'length' bytes from byte 'offset' (to the end when absent). At most the field byte limit (EFBIG beyond)."
  base64(offset: Float = 0, length: Float): String!
  "The parsed record for a .json, .yaml, .yml or .ndjson file (an ndjson file gives an array); null for other files."
  json: JSON
}

type Directory implements Node {
${NODE_FIELDS}
  "A page of this folder's entries in listing order, those whose names match 'glob' (picomatch) when given."
  entries(first: Int = 100, after: String, glob: String): NodeConnection!
  "The entry called 'name', or null."
  entry(name: String!): Node
}

type Symlink implements Node {
${NODE_FIELDS}
  "The link text, as readlink returns it."
  target: String!
  "The node the link leads to, following every link; null when it dangles."
  resolved: Node
}

"A named pipe, device node or socket: it holds no content of its own."
type Special implements Node {
${NODE_FIELDS}
}

"A mounted tree."
type Mount {
  "Mount point, e.g. '/db'."
  path: String!
  "The mount's name, e.g. 'sql'."
  name: String!
  root: Directory
}

type NodeEdge {
  cursor: String!
  node: Node!
}

type PageInfo {
  hasNextPage: Boolean!
  "Pass as 'after' for the next page; null when the page is empty."
  endCursor: String
}

"A page of nodes (Relay connection)."
type NodeConnection {
  edges: [NodeEdge!]!
  nodes: [Node!]!
  pageInfo: PageInfo!
}

enum ChangeType {
  CREATE
  UPDATE
  DELETE
  RENAME
}

"A change in the tree, from any front door (FUSE, GraphQL, the CLI) or from a view's own source."
type Change {
  type: ChangeType!
  path: String!
  "The path before a rename."
  oldPath: String
  kind: NodeKind
  "The mount point the change happened in."
  mount: String!
  "The node as it is now; null once it is gone."
  node: Node
}

type Query {
  "The node at 'path' (a final symlink is not followed); null when nothing is there."
  node(path: String!): Node
  "Every mount, shallowest first."
  mounts: [Mount!]!
  "Nodes below 'path', depth first, without following symlinks: those whose path relative to 'path' matches 'glob' and whose kind is 'kind'. Lazy and paged."
  find(path: String = "/", glob: String, kind: NodeKind, maxDepth: Int, first: Int = 100, after: String): NodeConnection!
}

type Mutation {
  "Writes the whole content of a file, creating it: exactly one of 'text', 'base64' or 'json' (rendered by the file's extension: .json, .yaml, .yml or .ndjson). A view validates it as it does a FUSE write."
  writeFile(path: String!, text: String, base64: String, json: JSON): File!
  "Makes a folder; with 'parents', also the missing folders above it, and an existing folder is fine (mkdir -p)."
  mkdir(path: String!, parents: Boolean = false, mode: Int = 493): Directory!
  "Removes a file, symlink or empty folder; with 'recursive', a folder and all below it (rm -r), once the whole subtree is checked: a mount point in it gives EBUSY, a read-only part EROFS, a folder the caller may not empty EACCES, and then nothing is deleted."
  remove(path: String!, recursive: Boolean = false): Boolean!
  "Moves or renames within one mount (EXDEV across mounts), replacing the target."
  move(from: String!, to: String!): Node!
  "Sets the permission bits."
  chmod(path: String!, mode: Int!): Node!
  "Makes a symlink at 'path' pointing at 'target'."
  symlink(target: String!, path: String!): Symlink!
}

type Subscription {
  "Changes at 'path' and below it ('recursive', the default), or at 'path' and its direct entries."
  changes(path: String = "/", recursive: Boolean = true): Change!
}
`

function parseLiteral(ast: ValueNode, variables?: Record<string, unknown> | null): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value)
    case Kind.NULL:
      return null
    case Kind.LIST:
      return ast.values.map(v => parseLiteral(v, variables))
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map(f => [f.name.value, parseLiteral(f.value, variables)]))
    case Kind.VARIABLE:
      return variables?.[ast.name.value]
    default:
      return undefined
  }
}

/** The `JSON` scalar: any JSON value, in and out. */
export const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'Any JSON value.',
  serialize: v => v,
  parseValue: v => v,
  parseLiteral,
})

type Args<T> = T
type Ctx = GraphQLContext

/** The node at `path` for a field of type Node: with its attributes fetched when the field selects any of them (the attribute fields are getters, see {@link NodeRef}). */
const refFor = (path: string, kind: NodeKind, ctx: Ctx, info: GraphQLResolveInfo): NodeRef | Promise<NodeRef> => {
  const ref = new NodeRef(path, kind)
  return selectsFields(info, STAT_FIELDS, 'node') ? ref.load(ctx) : ref
}

// path, name, kind and the attribute fields are read off the NodeRef itself (no resolver)
const nodeFields = {
  mount: (ref: NodeRef, _: unknown, ctx: Ctx) => mountOf(ctx, ref.path),
  parent: (ref: NodeRef, _: unknown, ctx: Ctx, info: GraphQLResolveInfo) => (ref.path === '/' ? null : refFor(dirname(ref.path), 'dir', ctx, info)),
}

// edges is read off the page itself
const connection = {
  nodes: (page: Page) => page.edges.map(e => e.node),
  pageInfo: (page: Page) => page,
}

/**
 * True when a field selects any of `names` on the nodes it gives: on the node itself
 * (`level` 'node', a field of type Node), or on the nodes of a connection (`level`
 * 'connection': `nodes { … }` or `edges { node { … } }`), through fragments too.
 */
function selectsFields(info: GraphQLResolveInfo, names: ReadonlySet<string>, level: 'connection' | 'node'): boolean {
  const fragments = info.fragments
  const seen = new Set<string>()
  const has = (set: SelectionSetNode | undefined, level: 'connection' | 'edge' | 'node'): boolean => {
    if (!set) return false
    for (const sel of set.selections) {
      if (sel.kind === Kind.INLINE_FRAGMENT) {
        if (has(sel.selectionSet, level)) return true
      } else if (sel.kind === Kind.FRAGMENT_SPREAD) {
        const frag = fragments[sel.name.value]
        if (frag && !seen.has(sel.name.value + level)) {
          seen.add(sel.name.value + level)
          if (has(frag.selectionSet, level)) return true
        }
      } else {
        const name = sel.name.value
        if (level === 'node' && names.has(name)) return true
        if (level === 'connection' && name === 'nodes' && has(sel.selectionSet, 'node')) return true
        if (level === 'connection' && name === 'edges' && has(sel.selectionSet, 'edge')) return true
        if (level === 'edge' && name === 'node' && has(sel.selectionSet, 'node')) return true
      }
    }
    return false
  }
  return info.fieldNodes.some(f => has(f.selectionSet, level))
}

const KIND_TYPE: Record<NodeKind, string> = { file: 'File', dir: 'Directory', symlink: 'Symlink', fifo: 'Special', chardev: 'Special', blockdev: 'Special', socket: 'Special' }

function oneContent(path: string, args: { text?: string | null; base64?: string | null; json?: unknown }): Uint8Array | string {
  const given = [args.text != null, args.base64 != null, args.json !== undefined].filter(Boolean).length
  if (given !== 1) throw new VfsError('EINVAL', 'give exactly one of text, base64 or json', 'open', path)
  if (args.text != null) return args.text
  if (args.base64 != null) {
    if (!/^[A-Za-z0-9+/\-_]*={0,2}$/.test(args.base64)) throw new VfsError('EINVAL', 'base64 input is not valid base64', 'open', path)
    return Buffer.from(args.base64, 'base64')
  }
  const format = recordFormat(path)
  if (!format) throw new VfsError('EINVAL', 'json input needs a .json, .yaml, .yml or .ndjson file', 'open', path)
  try {
    return stringifyRecord(args.json, format)
  } catch (err) {
    if (err instanceof VfsError) throw err.at('open', path)
    throw err
  }
}

async function mkdirParents(ctx: Ctx, path: string, mode: number): Promise<void> {
  let at = ''
  for (const name of split(path)) {
    at += '/' + name
    try {
      const st = await ctx.vfs.stat(at, ctx.caller)
      if (st.kind !== 'dir') throw new VfsError('ENOTDIR', undefined, 'mkdir', at)
      continue
    } catch (err) {
      if (!(err instanceof VfsError) || err.code !== 'ENOENT') throw err
    }
    try {
      await ctx.vfs.mkdir(at, mode, ctx.caller)
    } catch (err) {
      if (!(err instanceof VfsError) || err.code !== 'EEXIST') throw err
    }
  }
}

/** The node a symlink leads to, following every link (40 at most, then ELOOP); null when it dangles. */
async function followLinks(ctx: Ctx, path: string): Promise<NodeRef | null> {
  let p = path
  for (let hops = 0; hops <= 40; hops++) {
    let st
    try {
      st = await ctx.vfs.lstat(p, ctx.caller)
    } catch (err) {
      if (err instanceof VfsError && err.code === 'ENOENT') return null
      throw err
    }
    if (st.kind !== 'symlink') return new NodeRef(p, st.kind, st)
    const target = await ctx.vfs.readlink(p, ctx.caller)
    p = normalize(target.startsWith('/') ? target : `${dirname(p)}/${target}`)
  }
  throw new VfsError('ELOOP', undefined, 'stat', path)
}

const MAX_QUEUED_CHANGES = 10_000

/**
 * The changes at or below `path` as an async iterator. It listens from the moment it is
 * made (so a change right after the subscription starts is not missed), queues up to
 * 10000 events for a slow client, and then ends the subscription with `SLOW_CONSUMER`.
 * When the request's token is revoked it delivers nothing more and ends with
 * `UNAUTHENTICATED`, which closes an SSE stream.
 */
function changeStream(ctx: Ctx, path: string, recursive: boolean): AsyncIterableIterator<ChangeEvent> {
  const root = normalize(path)
  const direct = (p: string | undefined) => p !== undefined && (p === root || dirname(p) === root)
  const queue: ChangeEvent[] = []
  let waiting: { resolve(r: IteratorResult<ChangeEvent>): void; reject(err: unknown): void } | undefined
  let failed: GraphQLError | undefined
  let done = false
  const end = (): Promise<IteratorResult<ChangeEvent>> => {
    if (!done) {
      done = true
      off()
      unwatch()
      queue.length = 0
      waiting?.resolve({ value: undefined, done: true })
      waiting = undefined
    }
    return Promise.resolve({ value: undefined, done: true })
  }
  /** Ends the stream with `error`: at once when a `next()` is pending, else at the next one. */
  const fail = (error: GraphQLError) => {
    if (done) return
    queue.length = 0
    const w = waiting
    waiting = undefined
    if (!w) {
      failed = error
      return
    }
    void end()
    w.reject(error)
  }
  const off = ctx.vfs.watch(root, event => {
    if (done || failed || (!recursive && !direct(event.path) && !direct(event.oldPath))) return
    if (waiting) {
      const w = waiting
      waiting = undefined
      w.resolve({ value: event, done: false })
    } else if (queue.length < MAX_QUEUED_CHANGES) {
      queue.push(event)
    } else {
      fail(new GraphQLError('too many changes queued: the subscriber is not keeping up', { extensions: { code: 'SLOW_CONSUMER' } }))
    }
  })
  const signal = ctx.caller?.signal
  signal?.addEventListener('abort', () => void end(), { once: true })
  const unwatch =
    ctx.token !== undefined && ctx.revocations
      ? ctx.revocations.watch(ctx.token, () =>
          fail(new GraphQLError('the token of this subscription was revoked', { extensions: { code: 'UNAUTHENTICATED' } })),
        )
      : () => {}
  return {
    next() {
      if (failed) {
        const err = failed
        void end()
        return Promise.reject(err)
      }
      const event = queue.shift()
      if (event) return Promise.resolve({ value: event, done: false })
      if (done) return Promise.resolve({ value: undefined, done: true })
      return new Promise((resolve, reject) => (waiting = { resolve, reject }))
    },
    return: end,
    throw: end,
    [Symbol.asyncIterator]() {
      return this
    },
  }
}

/** Resolvers of {@link treeTypeDefs}. */
export const treeResolvers = {
  JSON: JSONScalar,
  NodeKind: { FILE: 'file', DIRECTORY: 'dir', SYMLINK: 'symlink', FIFO: 'fifo', CHAR_DEVICE: 'chardev', BLOCK_DEVICE: 'blockdev', SOCKET: 'socket' },
  ChangeType: { CREATE: 'create', UPDATE: 'update', DELETE: 'delete', RENAME: 'rename' },
  Node: {
    __resolveType: (ref: NodeRef) => KIND_TYPE[ref.kind],
  },
  File: {
    ...nodeFields,
    text: async (ref: NodeRef, a: Args<{ offset: number; length?: number | null }>, ctx: Ctx) =>
      (await readRange(ctx, ref.path, a.offset, a.length)).toString('utf8'),
    base64: async (ref: NodeRef, a: Args<{ offset: number; length?: number | null }>, ctx: Ctx) =>
      (await readRange(ctx, ref.path, a.offset, a.length)).toString('base64'),
    json: async (ref: NodeRef, _: unknown, ctx: Ctx) => {
      const format = recordFormat(ref.name)
      if (!format) return null
      const text = (await readRange(ctx, ref.path)).toString('utf8')
      try {
        return parseRecord(text, format)
      } catch (err) {
        if (err instanceof VfsError) throw err.at('read', ref.path)
        throw err
      }
    },
  },
  Directory: {
    ...nodeFields,
    entries: (ref: NodeRef, a: Args<{ first: number; after?: string | null; glob?: string | null }>, ctx: Ctx, info: GraphQLResolveInfo) =>
      listEntries(ctx, ref.path, a.first, a.after, a.glob)
        .then(page => (selectsFields(info, STAT_FIELDS, 'connection') ? prefetchStats(ctx, page) : page))
        .catch(err => {
          throw err instanceof VfsError ? err.at('scandir', ref.path) : err
        }),
    entry: (ref: NodeRef, a: Args<{ name: string }>, ctx: Ctx) =>
      nodeAt(ctx, (ref.path === '/' ? '' : ref.path) + '/' + a.name),
  },
  Symlink: {
    ...nodeFields,
    target: (ref: NodeRef, _: unknown, ctx: Ctx) => ctx.vfs.readlink(ref.path, ctx.caller),
    resolved: (ref: NodeRef, _: unknown, ctx: Ctx) => followLinks(ctx, ref.path),
  },
  Special: nodeFields,
  Mount: {
    root: (m: { path: string }, _: unknown, ctx: Ctx, info: GraphQLResolveInfo) => refFor(m.path, 'dir', ctx, info),
  },
  NodeEdge: {
    cursor: (e: Edge) => encodeCursor(e.position),
  },
  NodeConnection: connection,
  Change: {
    node: (e: ChangeEvent, _: unknown, ctx: Ctx) => (e.type === 'delete' ? null : nodeAt(ctx, e.path)),
  },
  Query: {
    node: (_: unknown, a: Args<{ path: string }>, ctx: Ctx) => nodeAt(ctx, a.path),
    mounts: (_: unknown, __: unknown, ctx: Ctx) => ctx.mounts(),
    find: (
      _: unknown,
      a: Args<{ path: string; glob?: string | null; kind?: NodeKind | null; maxDepth?: number | null; first: number; after?: string | null }>,
      ctx: Ctx,
      info: GraphQLResolveInfo,
    ) =>
      findNodes(ctx, a.path, a)
        .then(page => (selectsFields(info, STAT_FIELDS, 'connection') ? prefetchStats(ctx, page) : page))
        .catch(err => {
          throw err instanceof VfsError ? err.at('scandir', normalize(a.path)) : err
        }),
  },
  Mutation: {
    writeFile: async (_: unknown, a: Args<{ path: string; text?: string | null; base64?: string | null; json?: unknown }>, ctx: Ctx) => {
      const path = normalize(a.path)
      await ctx.vfs.writeFile(path, oneContent(path, a), ctx.caller)
      return existingNode(ctx, path)
    },
    mkdir: async (_: unknown, a: Args<{ path: string; parents: boolean; mode: number }>, ctx: Ctx) => {
      const path = normalize(a.path)
      if (a.parents) await mkdirParents(ctx, path, a.mode)
      else await ctx.vfs.mkdir(path, a.mode, ctx.caller)
      return existingNode(ctx, path)
    },
    remove: async (_: unknown, a: Args<{ path: string; recursive: boolean }>, ctx: Ctx) => {
      const path = normalize(a.path)
      const st = await ctx.vfs.lstat(path, ctx.caller)
      if (st.kind !== 'dir') await ctx.vfs.unlink(path, ctx.caller)
      else if (a.recursive) await removeTree(ctx, path)
      else await ctx.vfs.rmdir(path, ctx.caller)
      return true
    },
    move: async (_: unknown, a: Args<{ from: string; to: string }>, ctx: Ctx) => {
      await ctx.vfs.rename(a.from, a.to, ctx.caller)
      return existingNode(ctx, a.to)
    },
    chmod: async (_: unknown, a: Args<{ path: string; mode: number }>, ctx: Ctx) => {
      if (!Number.isInteger(a.mode) || a.mode < 0 || a.mode > 0o7777) throw new VfsError('EINVAL', `bad mode ${a.mode}`, 'chmod', a.path)
      await ctx.vfs.chmod(a.path, a.mode, ctx.caller)
      return existingNode(ctx, a.path)
    },
    symlink: async (_: unknown, a: Args<{ target: string; path: string }>, ctx: Ctx) => {
      await ctx.vfs.symlink(a.target, a.path, ctx.caller)
      return existingNode(ctx, a.path)
    },
  },
  Subscription: {
    changes: {
      subscribe: (_: unknown, a: Args<{ path: string; recursive: boolean }>, ctx: Ctx) => changeStream(ctx, a.path, a.recursive),
      resolve: (event: ChangeEvent) => event,
    },
  },
}
