import type { FileHandle } from 'node:fs/promises'
import { facetHome, type Identity } from '../crypto/identity.ts'
import { acquirePqPool, type PqLease, type PqPool } from '../crypto/pq-pool.ts'
import { vfsError } from '../vfs/errors.ts'
import { silentLogger, type Logger } from '../vfs/log.ts'
import { MAX_FILE_SIZE } from '../vfs/memory.ts'
import type { Attr, NodeKind, OpContext, StatFs } from '../vfs/node.ts'
import { FORMAT_VERSION, ROOT_INO, type ChainEvent, type UnsignedBlock } from './format.ts'
import { fileBackend, fileLog, type ChainBackend, type ChainLog } from './backend.ts'
import { BlockVerifier, ChainIntegrityError, type ChainWriter } from './log.ts'
import { ChainTree, ForgedDataError, Inode } from './tree.ts'
import { Namespace, scopedSink, type ChangeSink } from './namespace.ts'
import { ChunkReader } from './reader.ts'
import { type ChainOptions, type CreateChainOptions, type OpenReport } from './chain-options.ts'
import { signBlockWith, type SignedBody } from './signing.ts'
import { newGenesis } from './genesis.ts'
import { treeAtSeq } from './history-read.ts'
import { openVerifiedLog } from './open-log.ts'
import { checkpointAtClose } from './checkpoint.ts'
import { readAfterCompaction } from './resync.ts'
import { PendingChanges } from './pending-changes.ts'
import { ChunkWriter } from './chunk-writer.ts'
import { CommitQueue } from './commit-queue.ts'
import { LogHead } from './log-head.ts'
import { Follower, type ExternalChangeListener } from './follower.ts'
import { BlockCommitter } from './block-committer.ts'
import { SharedWriting } from './shared-writing.ts'
import { RollbackError } from './trust.ts'
import { TrustRecorder } from './trust-recorder.ts'

/**
 * An open chain: the verified log, its materialised tree, and the commit engine.
 *
 * Changes go to memory (metadata, plaintext dirty chunks); chunks are sealed as they
 * fill, and one signed block is written per group commit — on `sync()` (fsync, close),
 * after `commitDelayMs`, or when `blockBytes` of content is waiting.
 *
 * The work is done by one piece per responsibility, which this class wires together:
 * {@link ChunkReader} (content read), {@link Namespace} (names and attributes),
 * {@link ChunkWriter} (content written and sealed), {@link PendingChanges} (what waits for
 * the next block), {@link CommitQueue} (when commits run), {@link BlockCommitter} (blocks
 * signed and appended), {@link Follower} (blocks others append), {@link TrustRecorder}
 * (the trusted head) and {@link LogHead} (where this node stands in the log).
 */
export class Chain {
  readonly tree: ChainTree
  readonly chunkSize: number
  readonly readOnly: boolean
  readonly logger: Logger
  readonly home: string
  report: OpenReport
  ownerName: string

  /** The open log, and where this node stands in it. */
  private readonly head: LogHead
  /** Reads content: the chunk cache, read-ahead, and the chunk worker that opens chunks. */
  private readonly reader: ChunkReader
  /** Names, links, attributes and extended attributes. */
  readonly namespace: Namespace
  /** Writes file content: dirty chunks, and their sealing for the next block. */
  private readonly chunkWriter: ChunkWriter
  /** What waits for the next block, and the blocks signed and not landed yet. */
  private readonly pending: PendingChanges
  /** When commits run: group commit, one block at a time. */
  private readonly commits: CommitQueue
  /** Seals, signs and appends the blocks. */
  private readonly committer: BlockCommitter
  private pq: PqLease | undefined
  /** Records the head in the trust store as it moves. */
  private readonly trust: TrustRecorder
  private closed = false
  private warmed = false
  private readonly options: ChainOptions
  private unlock: (() => Promise<void>) | undefined
  /** The write lease, on a chain that several nodes write (see shared-writing.ts). */
  private readonly shared: SharedWriting | undefined
  /** Reads and applies what other processes or nodes append. */
  private readonly follower: Follower

  private constructor(
    /** Where the blocks are stored. */
    readonly backend: ChainBackend,
    fh: ChainLog,
    verifier: BlockVerifier,
    tree: ChainTree,
    end: number,
    report: OpenReport,
    options: ChainOptions,
    unlock: (() => Promise<void>) | undefined,
    pq: PqLease | undefined,
  ) {
    this.head = new LogHead(fh, verifier, end)
    this.tree = tree
    this.pending = new PendingChanges(tree.maxIno)
    this.report = report
    this.options = options
    this.unlock = unlock
    this.chunkSize = verifier.genesis!.chunkSize
    this.ownerName = verifier.genesis!.ownerName
    this.logger = options.logger ?? silentLogger
    this.home = options.home ?? facetHome()
    const canWrite = this.writers.has(Buffer.from(options.identity.keyId).toString('hex'))
    this.readOnly = options.readOnly === true || !canWrite
    if (this.readOnly) void pq?.release()
    else this.pq = pq ?? acquirePqPool()
    const lease = this.readOnly ? undefined : backend.lease?.(tree.chainId, this.logger)
    this.shared = lease && new SharedWriting(lease, { catchUp: () => this.catchUp() }, this.logger)
    this.trust = new TrustRecorder({ home: this.home, chainId: tree.chainId, head: () => ({ seq: this.headSeq, hash: this.headHash }), enabled: options.trust !== false, logger: this.logger })
    this.namespace = new Namespace(tree, scopedSink(this.sink(), this))
    this.reader = new ChunkReader({ log: () => this.head.log, tree, chainId: tree.chainId, chunkSize: this.chunkSize, logger: this.logger, path: backend.name }, options.cacheBytes ?? 64 * 1024 * 1024)
    this.commits = new CommitQueue({ commit: signed => this.committer.commit(signed), delayMs: options.commitDelayMs ?? 20, logger: this.logger, path: backend.name })
    this.chunkWriter = new ChunkWriter(
      { tree, chunkSize: this.chunkSize, reader: this.reader, pending: this.pending, blockBytes: this.blockBytes, logger: this.logger, path: backend.name },
      { writable: () => this.writable(), touch: n => this.namespace.touch(n), schedule: () => this.commits.schedule(), commit: () => this.commits.request() },
    )
    this.committer = new BlockCommitter({
      head: this.head,
      tree,
      author: options.identity.keyId,
      pending: this.pending,
      chunkWriter: this.chunkWriter,
      commits: this.commits,
      shared: this.shared,
      trust: this.trust,
      blockBytes: this.blockBytes,
      sign: (block, sizeHint, into) => this.signOffThread(block, sizeHint, into),
      logger: this.logger,
      path: backend.name,
    })
    this.follower = new Follower(
      { head: this.head, tree, chunkSize: this.chunkSize, ownerName: this.ownerName, identity: options.identity, path: backend.name, pending: this.pending, chunkWriter: this.chunkWriter, shared: this.shared, trust: this.trust, pool: () => (this.pq ??= acquirePqPool()).pool, closed: () => this.closed },
      {
        lostPlace: () => this.committer.lostPlace,
        regained: () => void (this.committer.lostPlace = false),
        appended: () => this.committer.appended,
        commitIfWork: () => {
          if (this.committer.hasWork) this.commits.schedule()
        },
      },
    )
  }

  /** Where the chain lives, for messages: the log file's path, or the backend's name. */
  get path(): string {
    return this.backend.name
  }

  /** The chain's 16-byte id. */
  get chainId(): Uint8Array {
    return this.tree.chainId
  }

  /** The seq of the last block in the log, as this node has applied it. */
  get headSeq(): number {
    return this.head.headSeq
  }

  /** The hash of block {@link headSeq}. */
  get headHash(): Buffer {
    return this.head.headHash
  }

  /** The seq of the first block the log holds (above 0 once compacted). */
  get baseSeq(): number {
    return this.head.baseSeq
  }

  /** Who may append to the chain, by key id (hex), as the last block leaves it. */
  get writers(): Map<string, ChainWriter> {
    return this.head.writers
  }

  /** Frame offsets of the blocks of this log, by seq − baseSeq. */
  get blockOffsets(): number[] {
    return this.head.blockOffsets
  }

  /** The identity this chain was opened with. */
  get identity(): Identity {
    return this.options.identity
  }

  /** The root directory inode. */
  get root(): Inode {
    return this.tree.inodes.get(ROOT_INO)!
  }

  /**
   * Creates a new chain owned by `options.identity`, in the log file at `path` or in a
   * {@link ChainBackend}: a genesis block naming the owner's public keys, the root
   * directory, and the root key wrapped for the owner.
   */
  static async create(path: string | ChainBackend, options: CreateChainOptions): Promise<Chain> {
    const backend = typeof path === 'string' ? fileBackend(path) : path
    await backend.create(newGenesis(options))
    return Chain.openWith(backend, options, true)
  }

  /**
   * Opens the chain in the log file at `path` or in a {@link ChainBackend}: verifies every
   * block (hash chain and signatures), holds it against the trust store (the chain id and
   * owner pinned for this location, and the last head seen), unwraps the root key for
   * `options.identity`, and only then cuts a torn tail of a file log (logging a warning and
   * returning it in `report`): a refused open leaves the log as it was. The first open of
   * an existing chain at a location pins it and says so (a warning).
   */
  static open(path: string | ChainBackend, options: ChainOptions): Promise<Chain> {
    return Chain.openWith(typeof path === 'string' ? fileBackend(path) : path, options, false)
  }

  private static async openWith(backend: ChainBackend, options: ChainOptions, created: boolean): Promise<Chain> {
    const logger = options.logger ?? silentLogger
    const opened = await openVerifiedLog(backend, { ...options, logger }, created)
    const { fh, verifier, tree, end, report, unlock, offsets } = opened
    try {
      const chain = new Chain(backend, fh, verifier, tree, end, report, { ...options, logger }, unlock, opened.pq)
      chain.blockOffsets.push(...offsets)
      if (options.trust !== false && options.readOnly !== true) await chain.trust.record()
      return chain
    } catch (err) {
      await opened.pq?.release()
      await fh.close()
      await unlock?.()
      throw err
    }
  }

  /** Creates the chain (a log file at `path`, or in a backend) when it does not exist, else opens it. */
  static async openOrCreate(path: string | ChainBackend, options: CreateChainOptions): Promise<Chain> {
    const backend = typeof path === 'string' ? fileBackend(path) : path
    return (await backend.exists()) ? Chain.open(backend, options) : Chain.create(backend, options)
  }

  // ---- reads

  /** Attributes of inode `n` in `tree` (see {@link Namespace.attr}). */
  attr(n: Inode, tree: ChainTree = this.tree): Attr {
    return this.namespace.attr(n, tree)
  }

  /**
   * Starts the chunk worker that opens and seals file content now, not on the first read: a
   * mount calls it, so a first `cat` or `dd` does not wait for the thread to load.
   */
  warmReads(): void {
    if (!this.closed) this.reader.warm()
  }

  /** Reads up to `length` bytes of file `n` at `offset`; holes and the tail of a short chunk read as zeros. */
  read(n: Inode, offset: number, length: number, tree: ChainTree = this.tree): Promise<Uint8Array> {
    const p = this.reader.read(n, offset, length, tree)
    return this.head.log.reindex ? p.catch(err => readAfterCompaction(this, err, () => this.reader.read(n, offset, length, tree))) : p
  }

  /** Reads file `n` at `offset` into `dest` (as much as fits; less only at the end of the file) and returns the bytes read, with no allocation per call. */
  readInto(n: Inode, offset: number, dest: Uint8Array, tree: ChainTree = this.tree): Promise<number> {
    const p = this.reader.readInto(n, offset, dest, tree)
    return this.head.log.reindex ? p.catch(err => readAfterCompaction(this, err, () => this.reader.readInto(n, offset, dest, tree))) : p
  }



  /** Looks up child `name` of directory `dir`. */
  lookup(dir: Inode, name: string, tree: ChainTree = this.tree): Inode | undefined {
    return this.namespace.lookup(dir, name, tree)
  }

  /** Filesystem figures of the store holding the log. */
  statfs(): Promise<StatFs> {
    return this.head.log.statfs()
  }

  // ---- changes

  private writable(): void {
    const failed = this.committer.failed
    if (failed) throw vfsError('EIO', `the chain failed to commit earlier: ${failed.message}`)
    if (this.readOnly) throw vfsError('EROFS', 'the chain is open read-only')
    if (this.closed) throw vfsError('EIO', 'the chain is closed')
    // the signing thread starts with the first change, not on open: a chain that is only read never pays for it
    if (!this.warmed) {
      this.warmed = true
      this.pq?.pool.warm(1)
    }
  }

  /** Queues the events of a namespace change for the next block. */
  private sink(): ChangeSink {
    return {
      writable: () => this.writable(),
      metaChanged: n => {
        // an inode without names changes in memory only, for its open handles
        if (n.deleted) return
        this.pending.dirtyMeta.add(n)
        this.commits.schedule()
      },
      emit: e => {
        this.pending.events.push(e)
        this.commits.schedule()
      },
      released: n => {
        this.pending.dirtyMeta.delete(n)
        // unsealed content stays with the inode for its open handles, but is never sealed
        this.chunkWriter.released(n)
      },
    }
  }

  /**
   * Runs a change of the namespace (create, rename, chmod…). On a chain that several nodes
   * write, it runs holding the write lease, after catching up with the other writers, so
   * it is checked against the newest tree (a conflicting one fails as on a local
   * filesystem: EEXIST, ENOENT, ENOTEMPTY), and returns once its block is committed.
   * Otherwise it runs at once and goes with the next block.
   */
  atomic<T>(change: () => T): T | Promise<T> {
    const shared = this.shared
    if (!shared) return change()
    return (async () => {
      this.writable()
      await shared.enter()
      try {
        const out = change()
        await this.sync()
        return out
      } finally {
        shared.leave()
      }
    })()
  }

  /** True when several nodes write this chain at once (see {@link atomic}). */
  get sharedWriters(): boolean {
    return this.shared !== undefined
  }

  /** Makes a child of `dir` (see {@link Namespace.make}). */
  make(dir: Inode, name: string, kind: NodeKind, mode: number, ctx: Pick<OpContext, 'uid' | 'gid'>, target?: string, rdev = 0): Inode {
    return this.namespace.make(dir, name, kind, mode, ctx, target, rdev)
  }

  /** Writes `data` into file `n` at `offset`, growing it; `EFBIG` past {@link MAX_FILE_SIZE} (see {@link ChunkWriter.write}). */
  write(n: Inode, offset: number, data: Uint8Array): Promise<number> {
    return this.chunkWriter.write(n, offset, data)
  }

  /** Sets the size of file `n`, cutting or zero-extending it; `EFBIG` past {@link MAX_FILE_SIZE}. */
  truncate(n: Inode, size: number): Promise<void> {
    return this.chunkWriter.truncate(n, size)
  }

  private get blockBytes(): number {
    return this.options.blockBytes ?? 8 * 1024 * 1024
  }

  /** Seals the dirty chunks of `n` so they no longer take a full chunk of memory each. */
  flushInode(n: Inode): void {
    this.chunkWriter.flush(n)
  }

  // ---- commits

  /**
   * Commits every change made so far in one signed block and resolves once it is on disk
   * (fdatasync). The signature is made on a worker thread; changes made while a block is
   * being signed go into the next block, which every caller that made them waits for.
   */
  sync(): Promise<void> {
    const failed = this.committer.failed
    if (failed) return Promise.reject(vfsError('EIO', failed.message))
    if (!this.committer.hasWork && !this.commits.queued) return this.commits.current
    return this.commits.request()
  }

  /** Queues `events` (grants, writer authorisations: see sharing.ts) for the next block, and commits it. */
  commitEvents(events: ChainEvent[]): Promise<void> {
    this.writable()
    this.pending.events.push(...events)
    return this.sync()
  }

  /**
   * Queues `events` for the next block, as a namespace change is: on a log file this
   * returns at once (the block follows within the group-commit delay, durable at the next
   * fsync); where several nodes write, once the block is committed (see {@link atomic}).
   */
  queueEvents(events: ChainEvent[]): Promise<void> {
    if (this.shared) return this.commitEvents(events)
    this.writable()
    this.pending.events.push(...events)
    this.commits.schedule()
    return Promise.resolve()
  }

  /** Encodes, signs (on a worker thread) and hashes a block with this chain's identity. */
  signOffThread(block: UnsignedBlock, sizeHint = 4096, into?: Buffer): Promise<SignedBody> {
    if (this.readOnly || !this.pq) return Promise.reject(vfsError('EROFS', 'the chain is open read-only'))
    return signBlockWith(this.pq.pool, block, this.identity, sizeHint, into)
  }

  /** The worker pool that signs this chain's blocks (undefined when read-only). */
  get signer(): PqPool | undefined {
    return this.readOnly ? undefined : this.pq?.pool
  }

  /** Commits what is left, records the head in the trust store, and closes the log. */
  async close(): Promise<void> {
    if (this.closed) return
    try {
      if (!this.readOnly && !this.committer.failed) await this.sync()
    } finally {
      this.closed = true
      this.commits.close()
      this.trust.stop()
      await this.commits.settled
      if (!this.readOnly) await this.trust.flush().catch(err => this.logger.warn({ err }, 'could not update the chain trust store'))
      if (!this.committer.failed && this.options.checkpoints !== false && this.backend.kind === 'file') await checkpointAtClose(this, this.head.log, this.head.headFormat)
      this.follower.closing()
      await this.shared?.close()
      await this.pq?.release()
      this.pq = undefined
      await this.reader.settle()
      this.chunkWriter.close()
      await this.reader.close()
      await this.head.log.close()
      await this.unlock?.()
    }
  }

  /** Builds the tree as it was right after block `seq`, unlocked with the keys of that time (history-read.ts). */
  treeAt(seq: number): Promise<ChainTree> {
    return treeAtSeq(this, seq)
  }

  /** Subscribes to changes made by other processes (followers, other writers): the inodes touched and the paths changed, before and after; returns the unsubscribe. */
  onExternalChange(listener: ExternalChangeListener): () => void {
    return this.follower.onExternalChange(listener)
  }

  /** True when the last {@link catchUp} saw a block still being written (look again soon). */
  get behind(): boolean {
    return this.follower.behind
  }

  /**
   * Reads blocks appended since the last look (by another process or node) and applies
   * them; returns the inodes they touched. Catch-ups run one at a time. On a chain that
   * several nodes write, this node's uncommitted content stays on top (see catch-up.ts),
   * and while it holds the write lease nothing new can be there.
   */
  catchUp(): Promise<Set<number>> {
    return this.follower.catchUp()
  }


  /** The log's current size in bytes. */
  get logBytes(): number {
    return this.head.end
  }

  /** Swaps in a compacted log file, or (`fh` undefined) takes the log compacted in place (used by compaction, which holds the commit queue). */
  async adoptLog(fh: FileHandle | undefined, end: number, head: { seq: number; hash: Buffer }, baseSeq: number, offsets: number[]): Promise<void> {
    const old = this.head.log
    if (fh) this.head.log = fileLog(fh, this.path)
    this.head.end = end
    this.head.headSeq = this.head.tipSeq = head.seq
    this.head.headHash = this.head.tipHash = head.hash
    this.head.headFormat = FORMAT_VERSION
    this.head.baseSeq = baseSeq
    this.blockOffsets.length = 0
    this.blockOffsets.push(...offsets)
    await this.trust.record()
    await this.reader.settle()
    if (fh) await old.close()
  }

  /**
   * Runs `fn` holding the write lease on a chain several nodes write (taking it reads what
   * the others appended first, so `fn` works on the newest state, and nothing lands between
   * its reading and its commits); at once on other chains. It may nest, and commit inside.
   */
  async withLease<T>(fn: () => Promise<T>): Promise<T> {
    const shared = this.shared
    if (!shared) return fn()
    await shared.enter(true)
    try {
      return await fn()
    } finally {
      shared.leave()
    }
  }

  /** Runs `fn` between commits, after committing everything pending (holding the write lease, on a chain several nodes write). */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.shared?.enter()
    try {
      await this.sync()
      return await this.commits.between(fn)
    } finally {
      this.shared?.leave()
    }
  }

  /** The open log (used by compaction of the in-process chain). */
  get fileHandle(): ChainLog {
    return this.head.log
  }

  /** True when the store now holds another log than the one this chain has open: another process compacted it. */
  async logReplaced(): Promise<boolean> {
    return !this.closed && ((await this.head.log.replaced?.()) ?? false)
  }

  /** Opens the chain's store afresh, read-only, with the same identity and options (to follow a log that was replaced). */
  reopenReadOnly(): Promise<Chain> {
    return Chain.open(this.backend, { ...this.options, readOnly: true })
  }

  /** Calls `onChange` when another process may have appended blocks (chokidar on a log file, NOTIFY in PostgreSQL); returns the stop. */
  watch(onChange: () => void): () => Promise<void> {
    return this.head.log.watch(onChange)
  }
}

export { ChainIntegrityError, RollbackError, ForgedDataError }
export { NoAccessError, type ChainOptions, type CreateChainOptions, type OpenReport } from './chain-options.ts'
export { signBlock, signBlockWith, type SignedBody } from './signing.ts'
