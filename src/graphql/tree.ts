import { constants as fsc } from 'node:fs'
import picomatch from 'picomatch'
import { vfsError, VfsError } from '../vfs/errors.ts'
import type { DirEntry, NodeKind } from '../vfs/node.ts'
import { basename, isWithin, normalize } from '../vfs/path.ts'
import type { CallerContext, MountInfo, Stat, Vfs } from '../vfs/vfs.ts'
import type { ResolvedLimits } from './limits.ts'
import type { RevocationWatch } from './revocation.ts'

/** What every resolver receives as its context: the tree, who is asking, and the limits. */
export interface GraphQLContext {
  /** The tree every field reads and writes through. */
  readonly vfs: Vfs
  /** Passed to every VFS call; `undefined` means the process's own uid and gid. */
  readonly caller: CallerContext | undefined
  /** The limits in force. */
  readonly limits: ResolvedLimits
  /** The mount table, read once per request. */
  mounts(): MountInfo[]
  /** Content bytes this request has returned so far, against `limits.maxRequestBytes`. */
  bytesRead: number
  /** The token the request or connection came with, when tokens are required. */
  readonly token?: string | undefined
  /** Tells a subscription when {@link token} is revoked, so it ends. */
  readonly revocations?: RevocationWatch | undefined
}

/**
 * A node of the tree as GraphQL resolves it: a path and a kind, and the attributes
 * `stat` gives. The attribute fields (`size`, `mode`, `mtime`, …) are plain getters,
 * so the executor reads them without a resolver call, a promise or an info object
 * per field (a page of 100 entries reads hundreds). They read attributes fetched
 * before: whoever hands a `NodeRef` to GraphQL with any of {@link STAT_FIELDS}
 * selected gives it its attributes first (the constructor's `stat`, {@link load},
 * or {@link prefetchStats} for a page). A getter of a node whose `lstat` failed
 * returns that error, which GraphQL reports on the field, as a resolver's would be.
 */
export class NodeRef {
  /** The attributes once fetched. */
  known: Stat | undefined
  /** Why fetching the attributes failed, when it did; the attribute fields give it. */
  failed: Error | undefined
  /** The last name of the path; `''` for the root. */
  readonly name: string
  private statPromise: Promise<Stat> | undefined
  private texts: { permissions?: string; atime?: string; mtime?: string; ctime?: string } | undefined
  constructor(
    readonly path: string,
    readonly kind: NodeKind,
    stat?: Stat,
    name?: string,
  ) {
    this.known = stat
    this.name = name ?? basename(path)
  }

  /** The node's own attributes (`lstat`), fetched once. */
  stat(ctx: GraphQLContext): Promise<Stat> {
    if (this.known) return Promise.resolve(this.known)
    return (this.statPromise ??= ctx.vfs.lstat(this.path, ctx.caller).then(st => (this.known = st)))
  }

  /** Fetches the attributes, if not known yet, for the attribute fields; a failure is kept in {@link failed}, not thrown. */
  async load(ctx: GraphQLContext): Promise<this> {
    if (this.known || this.failed) return this
    try {
      await this.stat(ctx)
    } catch (err) {
      this.failed = err instanceof Error ? err : new Error(String(err))
    }
    return this
  }

  private missing(): Error {
    return (this.failed ??= new Error(`the attributes of ${this.path} were not fetched before GraphQL read them (NodeRef.load)`))
  }

  get size(): number | Error {
    return this.known ? this.known.size : this.missing()
  }
  get mode(): number | Error {
    return this.known ? this.known.mode & 0o7777 : this.missing()
  }
  get uid(): number | Error {
    return this.known ? this.known.uid : this.missing()
  }
  get gid(): number | Error {
    return this.known ? this.known.gid : this.missing()
  }
  get nlink(): number | Error {
    return this.known ? this.known.nlink : this.missing()
  }
  get ino(): number | Error {
    return this.known ? this.known.ino : this.missing()
  }
  // the executor reads a field's value more than once: the texts are made once
  get permissions(): string | Error {
    const st = this.known
    if (!st) return this.missing()
    const t = (this.texts ??= {})
    return (t.permissions ??= permissionString(this.kind, st.mode))
  }
  get atime(): string | Error {
    const st = this.known
    if (!st) return this.missing()
    const t = (this.texts ??= {})
    return (t.atime ??= isoTime(st.atimeMs))
  }
  get mtime(): string | Error {
    const st = this.known
    if (!st) return this.missing()
    const t = (this.texts ??= {})
    return (t.mtime ??= isoTime(st.mtimeMs))
  }
  get ctime(): string | Error {
    const st = this.known
    if (!st) return this.missing()
    const t = (this.texts ??= {})
    return (t.ctime ??= isoTime(st.ctimeMs))
  }
}

/** Fields of `Node` that need the node's attributes. */
export const STAT_FIELDS: ReadonlySet<string> = new Set(['size', 'mode', 'permissions', 'uid', 'gid', 'nlink', 'ino', 'atime', 'mtime', 'ctime'])

/**
 * Fetches the attributes of every node of a page at once, one `lstatEntries` call per
 * folder, so their fields resolve without a path walk each. A node whose attributes
 * the batch misses fetches its own, so its fields report its error.
 */
export async function prefetchStats(ctx: GraphQLContext, page: Page): Promise<Page> {
  const byDir = new Map<string, NodeRef[]>()
  for (const { node } of page.edges) {
    if (node.known) continue
    const dir = node.path.slice(0, node.path.length - node.name.length - 1) || '/'
    let list = byDir.get(dir)
    if (!list) byDir.set(dir, (list = []))
    list.push(node)
  }
  const missed: NodeRef[] = []
  for (const [dir, nodes] of byDir) {
    const stats = await ctx.vfs.lstatEntries(dir, nodes.map(n => n.name), ctx.caller).catch(() => [])
    nodes.forEach((n, i) => {
      n.known = stats[i]
      if (!n.known) missed.push(n)
    })
  }
  if (missed.length) await Promise.all(missed.map(n => n.load(ctx)))
  return page
}

/** Finds the node at `path` without following a final symlink; `null` when nothing is there. */
export async function nodeAt(ctx: GraphQLContext, path: string): Promise<NodeRef | null> {
  const p = normalize(path)
  try {
    const st = await ctx.vfs.lstat(p, ctx.caller)
    return new NodeRef(p, st.kind, st)
  } catch (err) {
    if (err instanceof VfsError && err.code === 'ENOENT') return null
    throw err
  }
}

/** The node at `path`, which must exist. */
export async function existingNode(ctx: GraphQLContext, path: string): Promise<NodeRef> {
  const p = normalize(path)
  const st = await ctx.vfs.lstat(p, ctx.caller)
  return new NodeRef(p, st.kind, st)
}

/** The mount a path lies in: the deepest mount point at or above it. */
export function mountOf(ctx: GraphQLContext, path: string): MountInfo | null {
  let best: MountInfo | null = null
  for (const m of ctx.mounts()) if (isWithin(path, m.path) && (!best || m.path.length > best.path.length)) best = m
  return best
}

/** Formats mode bits as `ls -l` does: `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`. */
export function permissionString(kind: NodeKind, mode: number): string {
  const t = kind === 'dir' ? 'd' : kind === 'symlink' ? 'l' : '-'
  const rwx = (bits: number, special: number, ch: string) =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-')
  return (
    t +
    rwx((mode >> 6) & 7, mode & 0o4000, 's') +
    rwx((mode >> 3) & 7, mode & 0o2000, 's') +
    rwx(mode & 7, mode & 0o1000, 't')
  )
}

/** Reads bytes `[offset, offset+length)` of a file (to its end when `length` is absent), refusing more than `maxFieldBytes` with `EFBIG`. */
export async function readRange(ctx: GraphQLContext, path: string, offset = 0, length?: number | null): Promise<Buffer> {
  const max = ctx.limits.maxFieldBytes
  const tooBig = () =>
    new VfsError('EFBIG', `a field returns at most ${max} bytes; ask for a range with offset and length`, 'read', path)
  if (!Number.isSafeInteger(offset) || offset < 0) throw new VfsError('EINVAL', `bad offset ${offset}`, 'read', path)
  if (length != null && (!Number.isSafeInteger(length) || length < 0)) throw new VfsError('EINVAL', `bad length ${length}`, 'read', path)
  if (length != null && length > max) throw tooBig()
  const { vfs, caller } = ctx
  const fh = await vfs.open(path, fsc.O_RDONLY, 0, caller)
  try {
    let want = length ?? max + 1
    if (length == null) {
      const size = (await vfs.fstat(fh, caller)).size
      if (size - offset > max) throw tooBig()
    }
    const chunks: Uint8Array[] = []
    let at = offset
    let got = 0
    while (want > 0) {
      const chunk = await vfs.read(fh, at, Math.min(want, 1 << 20), caller)
      if (chunk.length === 0) break
      chunks.push(chunk)
      at += chunk.length
      got += chunk.length
      want -= chunk.length
    }
    if (length == null && got > max) throw tooBig()
    ctx.bytesRead += got
    if (ctx.bytesRead > ctx.limits.maxRequestBytes) {
      throw new VfsError('EFBIG', `one request returns at most ${ctx.limits.maxRequestBytes} bytes of content; ask for fewer files or shorter ranges`, 'read', path)
    }
    return chunks.length === 1 ? Buffer.from(chunks[0]!.buffer, chunks[0]!.byteOffset, chunks[0]!.length) : Buffer.concat(chunks)
  } finally {
    await vfs.release(fh, caller)
  }
}

/** One item of a connection page, with the position its cursor encodes. */
export interface Edge {
  readonly node: NodeRef
  readonly position: unknown
}

/** A page of nodes in the Relay connection shape. */
export interface Page {
  edges: Edge[]
  hasNextPage: boolean
  endCursor: string | null
}

/** Encodes a cursor position as an opaque string. */
export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url')
}

function decodeCursor<T>(cursor: string, check: (v: unknown) => v is T): T {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString())
  } catch {
    value = undefined
  }
  if (!check(value)) throw vfsError('EINVAL', 'bad cursor')
  return value
}

/** Checks `first` against the page-size limit; `EINVAL` outside 0..maxPageSize. */
export function checkFirst(ctx: GraphQLContext, first: number): number {
  const max = ctx.limits.maxPageSize
  if (!Number.isSafeInteger(first) || first < 0 || first > max) throw vfsError('EINVAL', `first must be between 0 and ${max}`)
  return first
}

/** A position in a directory listing: the VFS page cursor `c`, its limit `l`, and the index `i` of the last entry taken. */
interface DirPosition {
  c?: string
  l: number
  i: number
}

const isDirPosition = (v: unknown): v is DirPosition => {
  const p = v as DirPosition | null
  return (
    typeof p === 'object' && p !== null && Number.isSafeInteger(p.l) && p.l > 0 && Number.isSafeInteger(p.i) && p.i >= -1 &&
    (p.c === undefined || typeof p.c === 'string')
  )
}

/**
 * A page of directory `path`, `first` entries after cursor `after`, whose names match
 * `glob` (picomatch, dot files included). Pages come from the VFS's paged readdir;
 * a cursor records the VFS page and the index in it, so listing resumes without
 * reading the directory from its start.
 */
export async function listEntries(
  ctx: GraphQLContext,
  path: string,
  first: number,
  after?: string | null,
  glob?: string | null,
): Promise<Page> {
  checkFirst(ctx, first)
  const match = glob ? picomatch(glob, { dot: true }) : undefined
  const start: DirPosition = after ? decodeCursor(after, isDirPosition) : { l: Math.min(Math.max(first + 1, 16), 1000), i: -1 }
  let cursor = start.c
  let limit = start.l
  let index = start.i + 1
  const edges: Edge[] = []
  let scanned = 0
  for (;;) {
    const page = await ctx.vfs.readdir(path, cursor === undefined ? { limit } : { limit, cursor }, ctx.caller)
    for (let i = index; i < page.entries.length; i++) {
      const e = page.entries[i]!
      scanned++
      if (match && !match(e.name)) {
        if (scanned >= ctx.limits.maxFindScan) {
          return { edges, hasNextPage: true, endCursor: encodeCursor(cursor === undefined ? { l: limit, i } : { c: cursor, l: limit, i }) }
        }
        continue
      }
      if (edges.length === first) return finish(edges, true)
      edges.push({ node: childRef(path, e), position: cursor === undefined ? { l: limit, i } : { c: cursor, l: limit, i } })
    }
    if (page.cursor === undefined) return finish(edges, false)
    cursor = page.cursor
    limit = Math.min(Math.max(first + 1, 64), 1000)
    index = 0
  }
}

function finish(edges: Edge[], hasNextPage: boolean): Page {
  const last = edges[edges.length - 1]
  return { edges, hasNextPage, endCursor: last ? encodeCursor(last.position) : null }
}

function childRef(dir: string, e: DirEntry): NodeRef {
  return new NodeRef(dir === '/' ? '/' + e.name : dir + '/' + e.name, e.kind, undefined, e.name)
}

/** Options of {@link findNodes}. */
export interface FindOptions {
  /** Matched against the path relative to the start folder (`**\/*.json`); every node when absent. */
  glob?: string | null
  /** Only nodes of this kind. */
  kind?: NodeKind | null
  /** How many levels below the start folder to visit; 1 is its own entries. @default unlimited */
  maxDepth?: number | null
  first: number
  after?: string | null
}

/** A position in a walk: per open folder, its VFS page cursor `c` and the index `i` of the entry being visited. */
interface WalkPosition {
  l: number
  f: Array<{ c?: string; i: number }>
}

const isWalkPosition = (v: unknown): v is WalkPosition => {
  const p = v as WalkPosition | null
  return (
    typeof p === 'object' && p !== null && Number.isSafeInteger(p.l) && p.l > 0 && Array.isArray(p.f) && p.f.length > 0 &&
    p.f.every(f => typeof f === 'object' && f !== null && Number.isSafeInteger(f.i) && f.i >= 0 && (f.c === undefined || typeof f.c === 'string'))
  )
}

interface Frame {
  dir: string
  cursor: string | undefined
  entries: DirEntry[]
  /** Index of the entry last visited; -1 before the first. */
  index: number
  next: string | undefined
}

const WALK_PAGE = 256

/**
 * A page of the nodes below `root` (depth first, in listing order, without following
 * symlinks) that match `glob` and `kind`. The walk is lazy: it reads only the folder
 * pages it needs for this page, stops after `maxFindScan` visited entries (returning
 * what it found, with `hasNextPage`), and its cursor resumes it where it stopped.
 */
export async function findNodes(ctx: GraphQLContext, root: string, options: FindOptions): Promise<Page> {
  const first = checkFirst(ctx, options.first)
  const start = normalize(root)
  const st = await ctx.vfs.stat(start, ctx.caller)
  if (st.kind !== 'dir') throw new VfsError('ENOTDIR', undefined, 'scandir', start)
  const match = options.glob ? picomatch(options.glob, { dot: true }) : undefined
  const maxDepth = options.maxDepth ?? Infinity
  const readPage = (dir: string, cursor: string | undefined, limit: number) =>
    ctx.vfs.readdir(dir, cursor === undefined ? { limit } : { limit, cursor }, ctx.caller)
  const limit = options.after ? decodeCursor(options.after, isWalkPosition).l : WALK_PAGE

  const stack: Frame[] = []
  if (options.after) {
    const pos = decodeCursor(options.after, isWalkPosition)
    let dir = start
    for (const f of pos.f) {
      const page = await readPage(dir, f.c, limit)
      const frame: Frame = { dir, cursor: f.c, entries: page.entries, index: f.i, next: page.cursor }
      stack.push(frame)
      const entry = page.entries[f.i]
      if (!entry) break
      dir = join2(dir, entry.name)
    }
    const top = stack[stack.length - 1]!
    const last = top.entries[top.index]
    if (stack.length === pos.f.length && last?.kind === 'dir' && stack.length < maxDepth) {
      const dir = join2(top.dir, last.name)
      const page = await readPage(dir, undefined, limit)
      stack.push({ dir, cursor: undefined, entries: page.entries, index: -1, next: page.cursor })
    }
  } else {
    const page = await readPage(start, undefined, limit)
    stack.push({ dir: start, cursor: undefined, entries: page.entries, index: -1, next: page.cursor })
  }

  const position = (): WalkPosition => ({
    l: limit,
    f: stack.map(fr => (fr.cursor === undefined ? { i: fr.index } : { c: fr.cursor, i: fr.index })),
  })
  const prefixLength = start === '/' ? 1 : start.length + 1
  const edges: Edge[] = []
  let scanned = 0
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!
    if (top.index + 1 >= top.entries.length) {
      if (top.next === undefined) {
        stack.pop()
        continue
      }
      const page = await readPage(top.dir, top.next, limit)
      top.cursor = top.next
      top.entries = page.entries
      top.next = page.cursor
      top.index = -1
      continue
    }
    const entry = top.entries[top.index + 1]!
    const path = join2(top.dir, entry.name)
    const wanted = (!options.kind || entry.kind === options.kind) && (!match || match(path.slice(prefixLength)))
    if (wanted && edges.length === first) return finish(edges, true)
    top.index++
    scanned++
    if (wanted) edges.push({ node: new NodeRef(path, entry.kind, undefined, entry.name), position: position() })
    if (entry.kind === 'dir' && stack.length < maxDepth) {
      const page = await readPage(path, undefined, limit)
      stack.push({ dir: path, cursor: undefined, entries: page.entries, index: -1, next: page.cursor })
    }
    if (scanned >= ctx.limits.maxFindScan && stack.length > 0) {
      return { edges, hasNextPage: true, endCursor: encodeCursor(wanted ? edges[edges.length - 1]!.position : positionBeforeDescent(stack, entry, path)) }
    }
  }
  return finish(edges, false)

  function positionBeforeDescent(s: Frame[], entry: DirEntry, path: string): WalkPosition {
    const frames = s[s.length - 1]?.dir === path && entry.kind === 'dir' ? s.slice(0, -1) : s
    return { l: limit, f: frames.map(fr => (fr.cursor === undefined ? { i: fr.index } : { c: fr.cursor, i: fr.index })) }
  }
}

function join2(dir: string, name: string): string {
  return dir === '/' ? '/' + name : dir + '/' + name
}

const pad2 = (n: number) => (n < 10 ? '0' + n : String(n))
const pad3 = (n: number) => (n < 10 ? '00' + n : n < 100 ? '0' + n : String(n))
const MAX_FOUR_DIGIT_YEAR_MS = 253402300800000

/**
 * Formats milliseconds since the epoch as `Date#toISOString` does
 * (`2024-05-01T12:00:00.000Z`), several times faster: a page of 100 entries formats
 * 300 times. Falls back to `Date` outside years 1970..9999.
 */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < MAX_FOUR_DIGIT_YEAR_MS)) return new Date(ms).toISOString()
  const t = Math.floor(ms)
  const days = Math.floor(t / 86_400_000)
  let rest = t - days * 86_400_000
  // Days to a civil date (H. Hinnant's algorithm), with March as the first month.
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const doe = z - era * 146_097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0)
  const h = Math.floor(rest / 3_600_000)
  rest -= h * 3_600_000
  const m = Math.floor(rest / 60_000)
  rest -= m * 60_000
  const s = Math.floor(rest / 1000)
  return `${year}-${pad2(month)}-${pad2(day)}T${pad2(h)}:${pad2(m)}:${pad2(s)}.${pad3(rest - s * 1000)}Z`
}
