import type { ChainBackend } from './backend.ts'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { LRUCache } from 'lru-cache'
import { createIdentity, facetHome, IdentityNotFoundError, loadIdentity, readPublicIdentity, type Identity } from '../crypto/identity.ts'
import { resolvePassphrase } from '../crypto/passphrase.ts'
import { vfsError } from '../vfs/errors.ts'
import type { LockTable } from '../vfs/locks/table.ts'
import type { Logger } from '../vfs/log.ts'
import type { Mount, ViewContext } from '../vfs/mounts.ts'
import type {
  Attr,
  AttrChanges,
  DirEntry,
  DirPage,
  FileHandle,
  MaybePromise,
  NodeCreate,
  NodeExchange,
  NodeFsync,
  NodeGetattr,
  NodeGetxattr,
  NodeLink,
  NodeListxattr,
  NodeLookup,
  NodeMkdir,
  NodeMknod,
  NodeOpen,
  NodeRead,
  NodeReaddir,
  NodeReadlink,
  NodeRemovexattr,
  NodeRename,
  NodeRmdir,
  NodeSetattr,
  NodeSetxattr,
  NodeStatfs,
  NodeSymlink,
  NodeTruncate,
  NodeUnlink,
  NodeWrite,
  OpContext,
  OpenFlags,
  PageRequest,
  SpecialKind,
  StatFs,
  VNode,
} from '../vfs/node.ts'
import { AutoCompactor, cannotAutoCompact, type CompactionPolicy } from './auto-compact.ts'
import { ROOT_INO } from './format.ts'
import { grantedPaths } from './grant-refresh.ts'
import { applyModeGrants, modeGrantPlan } from './mode-grants.ts'
import { Chain, type ChainOptions, type CreateChainOptions } from './store.ts'
import type { ChainTree, Inode } from './tree.ts'
import { checkWriteScope } from './write-scope.ts'

/** The hidden folder of the chain root that shows past states: `/.history/<seq>/…`. */
export const HISTORY_NAME = '.history'

interface Ctx {
  chain: Chain
  tree: ChainTree
  live: boolean
  history?: HistoryDir | undefined
  /** Why writes are refused (`EROFS`) when not `live`. */
  readOnlyWhy: string
}

type AnyNode = ChainFile | ChainDir | ChainSymlink | ChainSpecial

/** The VFS node of inode `n` (one per inode, so every name of a hard-linked file gives the same node). */
function nodeOf(ctx: Ctx, n: Inode): AnyNode {
  if (n.node && (n.node as { ctx?: Ctx }).ctx === ctx) return n.node as AnyNode
  const kind = ctx.tree.meta(n).kind
  const node = kind === 'dir' ? new ChainDir(ctx, n) : kind === 'file' ? new ChainFile(ctx, n) : kind === 'symlink' ? new ChainSymlink(ctx, n) : new ChainSpecial(ctx, n, kind)
  n.node = node
  return node
}

abstract class ChainNode implements NodeGetattr, NodeSetattr, NodeGetxattr, NodeSetxattr, NodeListxattr, NodeRemovexattr {
  abstract readonly kind: 'file' | 'dir' | 'symlink' | SpecialKind
  constructor(
    readonly ctx: Ctx,
    readonly inode: Inode,
  ) {}

  getattr(): Attr {
    return this.ctx.chain.namespace.attr(this.inode, this.ctx.tree)
  }

  setattr(changes: AttrChanges): MaybePromise<void> {
    // a folder's o+r, and g+r of a chain group, are grants (mode-grants.ts): EPERM for anyone but the owner,
    // after a writer's write scope (EACCES) and before a reader's EROFS
    if (this.ctx.live) this.mutable('meta')
    const grants = modeGrantPlan(this.ctx.chain, this.ctx.tree, this.inode, changes)
    if (!this.ctx.live) this.mutable('meta')
    const done = this.ctx.chain.atomic(() => this.ctx.chain.namespace.setattr(this.inode, changes))
    if (!grants) return done
    return Promise.resolve(done).then(() => applyModeGrants(this.ctx.chain, grants))
  }

  getxattr(name: string): Uint8Array | undefined {
    return this.ctx.chain.namespace.getxattr(this.inode, name, this.ctx.tree)
  }

  listxattr(): string[] {
    return this.ctx.chain.namespace.listxattr(this.inode, this.ctx.tree)
  }

  setxattr(name: string, value: Uint8Array): MaybePromise<void> {
    this.mutable()
    return this.ctx.chain.atomic(() => this.ctx.chain.namespace.setxattr(this.inode, name, value))
  }

  removexattr(name: string): MaybePromise<void> {
    this.mutable()
    return this.ctx.chain.atomic(() => this.ctx.chain.namespace.removexattr(this.inode, name))
  }

  /** Throws EROFS on a view that takes no changes, and EACCES for a change outside the writer's write scope: `in` the node (content, entries), or of its own `meta`data. */
  mutable(how: 'in' | 'meta' = 'in'): void {
    if (!this.ctx.live) throw vfsError('EROFS', this.ctx.readOnlyWhy)
    checkWriteScope(this.ctx.chain, this.inode, how)
  }
}

class ChainFile extends ChainNode implements NodeOpen, NodeRead, NodeWrite, NodeTruncate, NodeFsync {
  readonly kind = 'file' as const

  open(flags: OpenFlags): MaybePromise<FileHandle> {
    if (flags.write) this.mutable()
    // close-to-open across nodes: what another node closed before this open is read whole
    if (this.ctx.live && this.ctx.chain.sharedWriters) return this.ctx.chain.catchUp().then(() => this.handle())
    return this.handle()
  }

  private handle(): FileHandle {
    let wrote = false
    const { chain, tree } = this.ctx
    const n = this.inode
    return {
      read: (offset, length) => chain.read(n, offset, length, tree),
      readInto: (offset, dest) => chain.readInto(n, offset, dest, tree),
      // every write is sealed or copied into a dirty chunk before it settles
      copiesWrites: true,
      write: (offset, data) => {
        wrote = true
        return chain.write(n, offset, data)
      },
      truncate: size => {
        wrote = true
        return chain.truncate(n, size)
      },
      flush: () => {
        if (!wrote) return
        // close(2) waits for flush, not for release: with other writers, what close returns after is committed
        if (chain.sharedWriters) return chain.sync()
        chain.flushInode(n)
      },
      fsync: () => chain.sync(),
      // a close through the API waits for its file's block and hears if it failed; FUSE's
      // RELEASE has no one to tell, so its content joins the commit already scheduled (within
      // the group-commit delay) instead of forcing a block, and an fdatasync, per closed file
      release: ctx => {
        if (!wrote) return
        if (!ctx.unawaited) return chain.sync()
        chain.flushInode(n)
      },
    }
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.ctx.chain.read(this.inode, offset, length, this.ctx.tree)
  }

  write(offset: number, data: Uint8Array): Promise<number> {
    this.mutable()
    return this.ctx.chain.write(this.inode, offset, data)
  }

  truncate(size: number): Promise<void> {
    this.mutable()
    return this.ctx.chain.truncate(this.inode, size)
  }

  fsync(): Promise<void> {
    return this.ctx.live ? this.ctx.chain.sync() : Promise.resolve()
  }
}

class ChainSymlink extends ChainNode implements NodeReadlink {
  readonly kind = 'symlink' as const
  readlink(): string {
    return this.ctx.tree.meta(this.inode).target ?? ''
  }
}

/** A fifo, device node or socket: attributes only, its data lives elsewhere (the kernel, a driver). */
class ChainSpecial extends ChainNode {
  constructor(
    ctx: Ctx,
    inode: Inode,
    readonly kind: SpecialKind,
  ) {
    super(ctx, inode)
  }
}

class ChainDir
  extends ChainNode
  implements NodeLookup, NodeReaddir, NodeCreate, NodeMkdir, NodeSymlink, NodeMknod, NodeLink, NodeUnlink, NodeRmdir, NodeRename, NodeExchange, NodeFsync, NodeStatfs
{
  readonly kind = 'dir' as const

  lookup(name: string): MaybePromise<VNode | undefined> {
    const found = this.find(name)
    // a name another node made a moment ago is not missed: a miss looks for new blocks first
    if (found || !this.ctx.live || !this.ctx.chain.sharedWriters) return found
    return this.ctx.chain.catchUp().then(() => this.find(name))
  }

  private find(name: string): VNode | undefined {
    const { chain, tree } = this.ctx
    const child = chain.lookup(this.inode, name, tree)
    if (child) return nodeOf(this.ctx, child)
    if (name === HISTORY_NAME && this.inode.ino === ROOT_INO && this.ctx.history) return this.ctx.history
    return undefined
  }

  readdir(page: PageRequest): MaybePromise<DirPage> {
    // a listing begun after another node's change returned shows it, as an open reads what another node closed
    if (page.cursor === undefined && this.ctx.live && this.ctx.chain.sharedWriters) return this.ctx.chain.catchUp().then(() => this.page(page))
    return this.page(page)
  }

  private page(page: PageRequest): DirPage {
    const names = this.ctx.tree.names(this.inode)
    const start = page.cursor === undefined ? 0 : Number(page.cursor)
    if (!Number.isSafeInteger(start) || start < 0) throw vfsError('EINVAL', 'bad cursor')
    const entries: DirEntry[] = []
    let i = 0
    for (const [name, ino] of names) {
      if (i++ < start) continue
      if (entries.length === page.limit) return { entries, cursor: String(start + entries.length) }
      const n = this.ctx.tree.inodes.get(ino)!
      entries.push({ name, kind: this.ctx.tree.meta(n).kind, node: nodeOf(this.ctx, n) })
    }
    return { entries }
  }

  private add(name: string): void {
    this.mutable()
    if (name === HISTORY_NAME && this.inode.ino === ROOT_INO && this.ctx.history) throw vfsError('EEXIST', 'the name is reserved for the history view')
  }

  create(name: string, mode: number, ctx: OpContext): MaybePromise<VNode> {
    this.add(name)
    return this.ctx.chain.atomic(() => nodeOf(this.ctx, this.ctx.chain.make(this.inode, name, 'file', mode, ctx)))
  }

  mkdir(name: string, mode: number, ctx: OpContext): MaybePromise<VNode> {
    this.add(name)
    return this.ctx.chain.atomic(() => nodeOf(this.ctx, this.ctx.chain.make(this.inode, name, 'dir', mode, ctx)))
  }

  symlink(name: string, target: string, ctx: OpContext): MaybePromise<VNode> {
    this.add(name)
    return this.ctx.chain.atomic(() => nodeOf(this.ctx, this.ctx.chain.make(this.inode, name, 'symlink', 0o777, ctx, target)))
  }

  mknod(name: string, kind: SpecialKind, mode: number, rdev: number, ctx: OpContext): MaybePromise<VNode> {
    this.add(name)
    return this.ctx.chain.atomic(() => nodeOf(this.ctx, this.ctx.chain.make(this.inode, name, kind, mode, ctx, undefined, rdev)))
  }

  link(name: string, target: VNode): MaybePromise<void> {
    this.add(name)
    if (!(target instanceof ChainNode) || target.ctx !== this.ctx) throw vfsError('EXDEV')
    target.mutable('meta')
    return this.ctx.chain.atomic(() => this.ctx.chain.namespace.link(this.inode, name, target.inode))
  }

  unlink(name: string): MaybePromise<void> {
    this.mutable()
    return this.ctx.chain.atomic(() => this.ctx.chain.namespace.remove(this.inode, name))
  }

  rmdir(name: string): MaybePromise<void> {
    this.mutable()
    return this.ctx.chain.atomic(() => {
      const child = this.ctx.chain.lookup(this.inode, name)
      if (!child) throw vfsError('ENOENT')
      if (this.ctx.tree.meta(child).kind !== 'dir') throw vfsError('ENOTDIR')
      this.ctx.chain.namespace.remove(this.inode, name)
    })
  }

  rename(name: string, newParent: VNode, newName: string): MaybePromise<void> {
    const to = this.sibling(newParent, newName)
    return this.ctx.chain.atomic(() => this.ctx.chain.namespace.rename(this.inode, name, to.inode, newName))
  }

  exchange(name: string, newParent: VNode, newName: string): MaybePromise<void> {
    const to = this.sibling(newParent, newName)
    return this.ctx.chain.atomic(() => this.ctx.chain.namespace.exchange(this.inode, name, to.inode, newName))
  }

  /** Checks that a name may move to `newName` in `newParent`, a folder of this same tree. */
  private sibling(newParent: VNode, newName: string): ChainDir {
    this.mutable()
    if (!(newParent instanceof ChainDir) || newParent.ctx !== this.ctx) throw vfsError('EXDEV')
    newParent.mutable()
    if (newName === HISTORY_NAME && newParent.inode.ino === ROOT_INO && this.ctx.history) throw vfsError('EBUSY', 'the name is reserved for the history view')
    return newParent
  }

  /** Commits the folder's entries (and every other change made so far). */
  fsync(): Promise<void> {
    return this.ctx.live ? this.ctx.chain.sync() : Promise.resolve()
  }

  statfs(): Promise<StatFs> {
    return this.ctx.chain.statfs()
  }
}

/** `/.history`: one read-only folder per block, showing the tree right after it. */
class HistoryDir implements NodeGetattr, NodeLookup, NodeReaddir {
  readonly kind = 'dir' as const
  private readonly trees = new LRUCache<number, Promise<ChainDir>>({ max: 4 })
  constructor(private readonly chain: Chain) {}

  getattr(): Attr {
    const { ino: _ino, ...a } = this.chain.attr(this.chain.root)
    return { ...a, mode: 0o555 }
  }

  async lookup(name: string): Promise<VNode | undefined> {
    if (!/^(0|[1-9]\d*)$/.test(name)) return undefined
    const seq = Number(name)
    if (seq < this.chain.baseSeq || seq > this.chain.headSeq) return undefined
    let p = this.trees.get(seq)
    if (!p) {
      p = this.chain.treeAt(seq).then(tree => {
        const ctx: Ctx = { chain: this.chain, tree, live: false, readOnlyWhy: `history is read-only: /${HISTORY_NAME}/${seq} is the tree as it was after block ${seq}` }
        return nodeOf(ctx, tree.inodes.get(ROOT_INO)!) as ChainDir
      })
      this.trees.set(seq, p)
    }
    return p
  }

  readdir(page: PageRequest): DirPage {
    const start = page.cursor === undefined ? this.chain.baseSeq : Number(page.cursor)
    const entries: DirEntry[] = []
    let s = start
    for (; s <= this.chain.headSeq && entries.length < page.limit; s++) entries.push({ name: String(s), kind: 'dir' })
    return s <= this.chain.headSeq ? { entries, cursor: String(s) } : { entries }
  }
}

/** Why `chain` refuses writes, for `EROFS` messages. */
function readOnlyWhy(chain: Chain): string {
  const mine = chain.writers.has(Buffer.from(chain.identity.keyId).toString('hex'))
  return mine ? 'the chain is open read-only' : `the chain is read-only for identity '${chain.identity.name}': it is not one of the chain's writers`
}

/** Options for {@link chainMount}. */
export interface ChainMountOptions {
  /** The mount's name. @default 'chain' */
  name?: string
  /** Show past states under `/.history/<seq>/`. @default true */
  history?: boolean
  /** Follow blocks appended by another process (chokidar on a log file, NOTIFY in PostgreSQL); for read-only opens. @default false */
  follow?: boolean
  /** Close the chain when the mount closes. @default true */
  closeChain?: boolean
  /** What a refused write (`EROFS`) says on a read-only chain. @default why the chain is read-only: opened so, or an identity that may not write it */
  readOnlyWhy?: string
  /**
   * When the chain compacts itself while mounted ({@link AutoCompactor}); `false` never.
   * Only the owner's read-write opens of a log file compact.
   * @default a log past 64 MiB and 1.5 times its live state
   */
  compaction?: CompactionPolicy | false
  /** Where locks on the chain's files are kept (not closed with the mount). @default the backend's shared table (PostgreSQL, closed with the mount), else none: the FUSE adapter keeps them */
  locks?: LockTable
}

/** A mount of a chain, with the chain it serves. */
export interface ChainMount extends Mount {
  readonly chain: Chain
}

/**
 * Mounts an open chain as a read-write POSIX tree (read-only when the chain is):
 * files, folders, symlinks, hard links, fifos, device nodes and sockets, extended
 * attributes, rename (with exchange), truncate, chmod/chown/utimens with nanosecond
 * times, sparse files, and files that stay readable through open handles after their
 * last name goes.
 */
export function chainMount(chain: Chain, options: ChainMountOptions = {}): ChainMount {
  const ctx: Ctx = { chain, tree: chain.tree, live: !chain.readOnly, readOnlyWhy: options.readOnlyWhy ?? readOnlyWhy(chain) }
  chain.warmReads()
  if (options.history !== false) ctx.history = new HistoryDir(chain)
  const root = nodeOf(ctx, chain.root)
  const ownLocks = options.locks ? undefined : chain.backend.locks?.(chain.tree.chainId, chain.logger)
  const locks = options.locks ?? ownLocks
  const compactor = options.compaction === false || cannotAutoCompact(chain) ? undefined : new AutoCompactor(chain, options.compaction ?? {}, chain.logger)
  compactor?.start()
  let stopWatch: (() => Promise<void>) | undefined
  let host: ViewContext | undefined
  if (options.follow ?? chain.sharedWriters) {
    let busy: Promise<void> = Promise.resolve()
    let stopped = false
    let retry: NodeJS.Timeout | undefined
    const look = () => {
      busy = busy
        .then(async () => {
          if (stopped) return
          if (host && (await chain.logReplaced())) {
            // another process compacted the log and renamed the new one over it: follow that one
            const next = await chain.reopenReadOnly()
            if (stopped) return void (await next.close())
            stopped = true
            const h = host
            h.logger.info({ path: chain.path, headSeq: next.headSeq }, 'the chain log was replaced (compacted); following the new one')
            // not awaited here: replacing closes this mount, which waits for this look to end
            void h.replaceWith(chainMount(next, options)).catch(err => h.logger.warn({ err, path: chain.path }, 'could not switch to the replaced chain log'))
            return
          }
          const before = chain.headSeq
          await chain.catchUp()
          // chokidar throttles change events of one file and a block may still be half written:
          // look once more shortly after, so the last block is never missed
          if (!stopped && !retry && (chain.behind || chain.headSeq !== before)) retry = setTimeout(() => ((retry = undefined), look()), chain.behind ? 25 : 100)
        })
        .catch(err => host?.logger.warn({ err, path: chain.path }, 'following the chain failed'))
    }
    // every path another process changed leaves the kernel's cache (and reaches GraphQL subscribers)
    let view = chain.tree.partial
    const unlisten = chain.onExternalChange((inos, paths) => {
      if (inos.size === 0) return
      if (chain.tree.partial !== view) {
        // the grants this identity holds changed while mounted (grant-refresh.ts)
        view = chain.tree.partial
        const reads = grantedPaths(chain.tree)
        host?.logger.info({ path: chain.path, reads }, `chain ${chain.path}: the grants of identity '${chain.identity.name}' changed; it reads ${reads.length > 0 ? reads.join(', ') : 'nothing of it'} now`)
      }
      host?.changes.emit({ type: 'update', path: '/', kind: 'dir' })
      for (const path of paths) host?.changes.emit({ type: 'update', path })
    })
    const unwatch = chain.watch(look)
    stopWatch = async () => {
      unlisten()
      stopped = true
      if (retry) clearTimeout(retry)
      await unwatch()
      await busy
    }
  }
  return {
    name: options.name ?? 'chain',
    root,
    chain,
    // a log file's writer lock keeps every other process out; a follower's tree changes behind the kernel
    soleWriter: chain.backend.kind === 'file' && !chain.readOnly && !chain.sharedWriters && !options.follow,
    ...(locks ? { locks } : {}),
    setup(ctx) {
      host = ctx
    },
    async dispose() {
      await stopWatch?.()
      await compactor?.stop()
      await ownLocks?.close()
      if (options.closeChain !== false) await chain.close()
    },
  }
}

/** Options for {@link openChainMount}. */
export interface OpenChainMountOptions extends Omit<CreateChainOptions, 'identity'> {
  /** The FacetFS home. @default facetHome() */
  home?: string
  /** The chain's name: its log is `<home>/chains/<chain>.chain`. @default 'files' */
  chain?: string
  /** An explicit log path instead of one under the home. */
  path?: string
  /** Where the blocks live instead of a log file, e.g. `postgresBackend({ url })`; `path` is then ignored. */
  backend?: ChainBackend
  /** The identity to open with; created on first run when missing. @default 'default' */
  identityName?: string
  /** An unlocked identity to use instead of loading one. */
  identity?: Identity
  /** The passphrase; else `passphraseFile`, `FACET_PASSPHRASE` or a prompt on a terminal. */
  passphrase?: string
  /** A file whose first line is the passphrase. */
  passphraseFile?: string
  /** Mount options. */
  mount?: ChainMountOptions
  logger?: Logger
}

/**
 * Opens (creating on first run) a chain under the FacetFS home and mounts it: the
 * identity `default` and the log `<home>/chains/files.chain` unless told otherwise.
 * Throws `PassphraseRequiredError` when a passphrase is needed and none can be had.
 */
export async function openChainMount(options: OpenChainMountOptions = {}): Promise<ChainMount> {
  const home = options.home ?? facetHome()
  const identity = options.identity ?? (await unlockIdentity(home, options.identityName ?? 'default', options))
  const chainOptions: ChainOptions & CreateChainOptions = { ...options, identity, home }
  let where: string | ChainBackend | undefined = options.backend
  if (!where) {
    where = options.path ?? join(home, 'chains', `${options.chain ?? 'files'}.chain`)
    await mkdir(join(where, '..'), { recursive: true, mode: 0o700 })
  }
  const chain = await Chain.openOrCreate(where, chainOptions)
  return chainMount(chain, { name: options.chain ?? 'files', ...options.mount })
}

async function unlockIdentity(home: string, name: string, options: { passphrase?: string; passphraseFile?: string }): Promise<Identity> {
  let created = false
  try {
    await readPublicIdentity(name, home)
  } catch (err) {
    if (!(err instanceof IdentityNotFoundError)) throw err
    created = true
  }
  const passphrase = options.passphrase ?? (await resolvePassphrase({ passphraseFile: options.passphraseFile, confirm: created, prompt: created ? `New passphrase for identity '${name}': ` : `Passphrase for identity '${name}': ` }))
  if (created) return createIdentity(name, passphrase, { home })
  return loadIdentity(name, passphrase, home)
}
