import { randomBytes } from 'node:crypto'
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, PubAck } from '@nats-io/jetstream'
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node'
import { vfsError } from '../../src/vfs/errors.ts'
import { brokerError, gone, messagePath, newStats, tooBig, type BackendHost, type MessageInfo, type QueueBackend, type QueueLimits, type State } from './backend.ts'

/** The state a record on `<stream>.s.<name>` gives its message; `acked` is the tombstone of a removed one. */
type RecordState = State | 'acked'

interface Entry {
  /** Stream sequence of the message itself. */
  seq: number
  size: number
  state: State
  claims: number
  /** When it was enqueued (the stream's timestamp of the message). */
  timeMs: number
  /** When a claim times out (claimed only). */
  deadlineMs?: number
}

interface Client {
  nc: NatsConnection
  js: JetStreamClient
  jsm: JetStreamManager
  headers: () => MsgHdrs
  maxPayload: number
}

const EMPTY = new Uint8Array(0)
const WRONG_LAST_SEQUENCE = 10071
const STREAM_NOT_FOUND = 10059
const NO_MESSAGE_FOUND = 10057

function apiCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; api_error?: { err_code?: number } }
  return typeof e?.code === 'number' ? e.code : e?.api_error?.err_code
}

/** A message name as one subject token: letters, digits, `-` and `_` stay, every other byte is `%XX`. */
export function subjectToken(name: string): string {
  return Array.from(Buffer.from(name), b => (/[A-Za-z0-9_-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0'))).join('')
}

function fromToken(token: string): string {
  try {
    return decodeURIComponent(token)
  } catch {
    return token
  }
}

/** A queue name as a stream-name suffix: letters, digits and `-` stay, every other byte is `_XX`. */
function streamSuffix(queue: string): string {
  return Array.from(Buffer.from(queue), b => (/[A-Za-z0-9-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '_' + b.toString(16).toUpperCase().padStart(2, '0'))).join('')
}

function fromStreamSuffix(suffix: string): string | undefined {
  const bytes: number[] = []
  for (let i = 0; i < suffix.length; i++) {
    if (suffix[i] !== '_') {
      bytes.push(suffix.charCodeAt(i))
      continue
    }
    const hex = suffix.slice(i + 1, i + 3)
    if (!/^[0-9A-F]{2}$/.test(hex)) return undefined
    bytes.push(parseInt(hex, 16))
    i += 2
  }
  return Buffer.from(bytes).toString('utf8')
}

/** What one FacetFS process knows of one queue: fed from the stream by an ordered consumer (headers only), updated at once by its own writes. */
class QueueIndex {
  readonly entries = new Map<string, Entry>()
  /** The last sequence of each name's state subject: the compare-and-set a state change expects. */
  readonly stateSeq = new Map<string, number>()
  /** Names whose message was acknowledged but may still be in the stream, with that message's sequence. */
  readonly tombstones = new Map<string, number>()
  processed = 0
  messages: ConsumerMessages | undefined
  timer: NodeJS.Timeout | undefined
  private waiters: Array<{ seq: number; done: () => void }> = []

  constructor(
    readonly queue: string,
    readonly stream: string,
  ) {}

  advance(seq: number): void {
    if (seq > this.processed) this.processed = seq
    if (this.waiters.length === 0) return
    this.waiters = this.waiters.filter(w => {
      if (this.processed < w.seq) return true
      w.done()
      return false
    })
  }

  /** Resolves once records up to `seq` are applied, or after `maxMs` (a deleted last record never arrives). */
  until(seq: number, maxMs: number): Promise<void> {
    if (this.processed >= seq) return Promise.resolve()
    return new Promise(done => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter(w => w.done !== finish)
        done()
      }, maxMs)
      const finish = () => {
        clearTimeout(t)
        done()
      }
      this.waiters.push({ seq, done: finish })
    })
  }

  sorted(state: State): Array<[string, Entry]> {
    return [...this.entries].filter(([, e]) => e.state === state).sort((a, b) => a[1].seq - b[1].seq)
  }
}

/**
 * Queues in NATS JetStream. A queue is the stream `<prefix><queue>` with subjects
 * `<stream>.>`: a message is stored on `<stream>.m.<name>` (any other subject but
 * `<stream>.s.*` is a message too, named by its sequence), and each change of its state
 * is a headers-only record on `<stream>.s.<name>`, published with
 * `Nats-Expected-Last-Subject-Sequence`, so of two racing claimers (in any process)
 * exactly one record is stored. Every FacetFS process follows the stream with an
 * ordered consumer (headers only), which pushes messages published by other programs
 * and other processes' claims to the change bus.
 */
export class NatsBackend implements QueueBackend {
  readonly kind = 'nats' as const
  private host: BackendHost | undefined
  private client: Promise<Client> | undefined
  private connected = false
  private lastError = 'not connected yet'
  private closed = false
  private readonly indexes = new Map<string, Promise<QueueIndex>>()
  private readonly instance = randomBytes(6).toString('hex')
  private opSeq = 0
  private readonly counts = newStats()
  private readonly servers: string

  constructor(
    readonly url: string,
    readonly prefix: string,
    private readonly limits: QueueLimits,
    private readonly timeoutMs: number,
  ) {
    const u = new URL(url)
    this.servers = `${u.hostname}:${u.port || 4222}`
  }

  attach(host: BackendHost): void {
    this.host = host
    // follow every queue from the start, so other programs' messages are pushed as they come
    this.queues().then(
      qs => qs.forEach(q => void this.index(q).catch(() => {})),
      err => host.logger.warn({ err: String(err) }, 'nats: cannot list the queues yet'),
    )
  }

  async close(): Promise<void> {
    this.closed = true
    for (const p of this.indexes.values()) {
      const idx = await p.catch(() => undefined)
      if (idx?.timer) clearTimeout(idx.timer)
      await idx?.messages?.close().catch(() => {})
    }
    this.indexes.clear()
    const c = await this.client?.catch(() => undefined)
    await c?.nc.close().catch(() => {})
  }

  stats(): Record<string, number | string> {
    return { ...this.counts, broker: this.url, connected: this.connected ? 1 : 0, queuesFollowed: this.indexes.size }
  }

  private stream(queue: string): string {
    return this.prefix + streamSuffix(queue)
  }

  private connect(): Promise<Client> {
    if (this.closed) return Promise.reject(vfsError('EIO', 'the queue view is closed'))
    this.client ??= (async () => {
      const { connect, headers } = await import('@nats-io/transport-node')
      const { jetstream, jetstreamManager } = await import('@nats-io/jetstream')
      const nc = await connect({ servers: this.servers, name: 'facetfs', reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 200, timeout: this.timeoutMs })
      this.connected = true
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === 'disconnect') {
            this.connected = false
            this.lastError = `lost the connection to ${this.servers}; reconnecting`
            this.host?.logger.warn({ broker: this.url }, 'nats: disconnected')
          } else if (s.type === 'reconnect') {
            this.connected = true
            this.host?.logger.info({ broker: this.url }, 'nats: reconnected')
          } else if (s.type === 'error') this.lastError = s.error.message
        }
      })()
      const jsm = await jetstreamManager(nc, { timeout: this.timeoutMs })
      return { nc, js: jetstream(nc, { timeout: this.timeoutMs }), jsm, headers, maxPayload: nc.info?.max_payload ?? 1024 * 1024 }
    })()
    this.client.catch(err => {
      this.lastError = (err as Error).message
      this.client = undefined
    })
    return this.client
  }

  /** Runs `fn` on a connected client, mapping failures to errnos: `EAGAIN` while the broker is unreachable, `EIO` otherwise. */
  private async call<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    let c: Client
    try {
      c = await this.connect()
    } catch (err) {
      throw brokerError(`nats ${this.servers}`, err)
    }
    if (!this.connected) throw vfsError('EAGAIN', `nats ${this.servers}: ${this.lastError}`)
    try {
      return await fn(c)
    } catch (err) {
      throw brokerError(`nats ${this.servers}`, err)
    }
  }

  /**
   * Publishes with a message id kept across retries: a publish whose ack was lost to a
   * broker restart is retried until the broker answers, and JetStream's duplicate window
   * makes the retry the same message, not a second one.
   */
  private async publish(subject: string, data: Uint8Array, hdrs: Record<string, string>, expectLastSubjectSeq: number): Promise<PubAck> {
    const msgID = `${this.instance}-${++this.opSeq}`
    const end = Date.now() + this.timeoutMs
    for (;;) {
      try {
        return await this.call(async c => {
          const h = c.headers()
          for (const [k, v] of Object.entries(hdrs)) h.set(k, v)
          h.set('Facet-Origin', this.instance)
          return c.js.publish(subject, data, { msgID, headers: h, expect: { lastSubjectSequence: expectLastSubjectSeq }, timeout: Math.max(500, Math.min(2000, end - Date.now())) })
        })
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code !== 'EAGAIN' || Date.now() >= end) throw err
        await new Promise(r => setTimeout(r, 100))
      }
    }
  }

  private index(queue: string): Promise<QueueIndex> {
    let p = this.indexes.get(queue)
    if (!p) {
      p = this.openIndex(queue)
      this.indexes.set(queue, p)
      p.catch(() => this.indexes.delete(queue))
    }
    return p
  }

  private async openIndex(queue: string): Promise<QueueIndex> {
    const stream = this.stream(queue)
    const idx = new QueueIndex(queue, stream)
    const last = await this.call(async c => {
      const info = await c.jsm.streams.info(stream)
      const consumer = await c.js.consumers.get(stream, { headers_only: true, filter_subjects: `${stream}.>` })
      idx.messages = await consumer.consume()
      return info.state.messages === 0 ? 0 : info.state.last_seq
    }).catch(err => {
      if (apiCode((err as { cause?: unknown }).cause ?? err) === STREAM_NOT_FOUND || /stream not found/.test(String((err as Error).message))) throw vfsError('ENOENT', `no queue '${queue}'`)
      throw err
    })
    void (async () => {
      for await (const m of idx.messages!) {
        try {
          this.apply(idx, m)
        } catch (err) {
          this.host?.logger.error({ err, queue }, 'nats: a record could not be applied')
        }
      }
    })()
    await idx.until(last, this.timeoutMs)
    return idx
  }

  /** Applies one record the ordered consumer delivered; reports it when another program or process made it. */
  private apply(idx: QueueIndex, m: JsMsg): void {
    const h = m.headers
    const external = h?.get('Facet-Origin') !== this.instance
    const rest = m.subject.slice(idx.stream.length + 1)
    const timeMs = Math.floor(Number(m.info.timestampNanos) / 1e6)
    if (rest.startsWith('s.')) {
      const name = fromToken(rest.slice(2))
      this.applyState(idx, name, m.seq, (h?.get('Facet-State') || 'ready') as RecordState, Number(h?.get('Facet-Msg')), Number(h?.get('Facet-Claims') || 0), Number(h?.get('Facet-Deadline')) || undefined, external)
    } else {
      let name = rest.startsWith('m.') ? fromToken(rest.slice(2)) : String(m.seq)
      const have = idx.entries.get(name)
      if (have?.seq === m.seq || (idx.tombstones.get(name) ?? 0) >= m.seq) return idx.advance(m.seq)
      if (have) name = `${name}~${m.seq}`
      idx.entries.set(name, { seq: m.seq, size: Number(h?.get('Nats-Msg-Size') ?? 0), state: 'ready', claims: 0, timeMs })
      if (external && this.host) this.host.emit({ type: 'create', path: messagePath(idx.queue, 'ready', name), kind: 'file' })
    }
    idx.advance(m.seq)
  }

  private applyState(idx: QueueIndex, name: string, seq: number, state: RecordState, msgSeq: number, claims: number, deadlineMs: number | undefined, external: boolean): void {
    if (seq <= (idx.stateSeq.get(name) ?? 0)) return
    idx.stateSeq.set(name, seq)
    const e = idx.entries.get(name)
    if (state === 'acked') idx.tombstones.set(name, msgSeq)
    if (!e || e.seq !== msgSeq) return
    const from = e.state
    if (state === 'acked') {
      idx.entries.delete(name)
      if (external) this.host?.emit({ type: 'delete', path: messagePath(idx.queue, from, name), kind: 'file' })
      return
    }
    e.state = state
    e.claims = claims
    e.deadlineMs = state === 'claimed' ? deadlineMs : undefined
    if (e.deadlineMs !== undefined) this.schedule(idx)
    if (external && from !== state) this.host?.emit({ type: 'rename', path: messagePath(idx.queue, state, name), oldPath: messagePath(idx.queue, from, name), kind: 'file' })
  }

  /** Sets a timer for the earliest claim deadline of the queue; every process does, and the compare-and-set lets one of them return the claim. */
  private schedule(idx: QueueIndex): void {
    if (this.limits.claimTimeoutMs <= 0 || this.closed) return
    let first = Infinity
    for (const e of idx.entries.values()) if (e.state === 'claimed' && e.deadlineMs !== undefined) first = Math.min(first, e.deadlineMs)
    if (idx.timer) clearTimeout(idx.timer)
    idx.timer = undefined
    if (first === Infinity) return
    idx.timer = setTimeout(() => {
      idx.timer = undefined
      this.expire(idx).catch(err => this.host?.logger.warn({ err: String(err), queue: idx.queue }, 'nats: returning timed-out claims failed'))
    }, Math.max(0, first - Date.now()) + 5)
    idx.timer.unref()
  }

  /** Returns claims past their deadline to the queue (or to `dead/` on the last claim), reporting each one this process returned. */
  private async expire(idx: QueueIndex): Promise<void> {
    const now = Date.now()
    for (const [name, e] of idx.sorted('claimed')) {
      if (e.deadlineMs === undefined || e.deadlineMs > now) continue
      const dest: State = e.claims >= this.limits.maxClaims ? 'dead' : 'ready'
      try {
        await this.setState(idx, name, e, dest, e.claims)
        this.counts.timedOut++
        if (dest === 'dead') this.counts.dead++
        this.host?.emit({ type: 'rename', path: messagePath(idx.queue, dest, name), oldPath: messagePath(idx.queue, 'claimed', name), kind: 'file' })
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw err
      }
    }
    this.schedule(idx)
  }

  /** Publishes the next state of `name` expecting the state subject's last sequence; `ENOENT` when another process changed it first. */
  private async setState(idx: QueueIndex, name: string, e: Entry, state: RecordState, claims: number): Promise<void> {
    const now = Date.now()
    const hdrs: Record<string, string> = { 'Facet-State': state, 'Facet-Msg': String(e.seq), 'Facet-Claims': String(claims) }
    const deadline = state === 'claimed' && this.limits.claimTimeoutMs > 0 ? now + this.limits.claimTimeoutMs : undefined
    if (deadline !== undefined) hdrs['Facet-Deadline'] = String(deadline)
    let ack: PubAck
    try {
      ack = await this.publish(`${idx.stream}.s.${subjectToken(name)}`, EMPTY, hdrs, idx.stateSeq.get(name) ?? 0)
    } catch (err) {
      if (/wrong last sequence/.test(String((err as Error).message))) throw gone(idx.queue, name, e.state)
      throw err
    }
    this.applyState(idx, name, ack.seq, state, e.seq, claims, deadline, false)
    idx.advance(ack.seq)
  }

  /** Brings the index up to the stream's last sequence: what any process stored before this call is seen. */
  private async synced(queue: string): Promise<QueueIndex> {
    const idx = await this.index(queue)
    const last = await this.call(async c => (await c.jsm.streams.info(idx.stream)).state.last_seq)
    await idx.until(last, 300)
    return idx
  }

  async queues(): Promise<string[]> {
    return this.call(async c => {
      const out: string[] = []
      for await (const name of c.jsm.streams.names()) {
        if (!name.startsWith(this.prefix)) continue
        const q = fromStreamSuffix(name.slice(this.prefix.length))
        if (q && !q.startsWith('.')) out.push(q)
      }
      return out.sort()
    })
  }

  async hasQueue(queue: string): Promise<boolean> {
    if (this.indexes.has(queue)) return true
    try {
      await this.index(queue)
      return true
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return false
      throw err
    }
  }

  async createQueue(queue: string): Promise<void> {
    const stream = this.stream(queue)
    await this.call(async c => {
      const exists = await c.jsm.streams.info(stream).then(
        () => true,
        err => {
          if (apiCode(err) === STREAM_NOT_FOUND || /stream not found/.test(String(err))) return false
          throw err
        },
      )
      if (exists) throw vfsError('EEXIST', `queue '${queue}' exists (stream ${stream})`)
      await c.jsm.streams.add({ name: stream, subjects: [`${stream}.>`], allow_direct: true, max_msg_size: Math.min(this.limits.maxBytes, c.maxPayload) })
    })
  }

  async removeQueue(queue: string): Promise<void> {
    const idx = await this.synced(queue)
    for (const e of idx.entries.values()) throw vfsError('ENOTEMPTY', `queue '${queue}' still holds ${e.state} messages`)
    await this.call(c => c.jsm.streams.delete(idx.stream))
    if (idx.timer) clearTimeout(idx.timer)
    await idx.messages?.close().catch(() => {})
    this.indexes.delete(queue)
  }

  async list(queue: string, state: State): Promise<MessageInfo[]> {
    const idx = await this.synced(queue)
    if (this.limits.claimTimeoutMs > 0) await this.expire(idx)
    return idx.sorted(state).map(([name, e]) => ({ name, size: e.size, timeMs: e.timeMs, claims: e.claims }))
  }

  async find(queue: string, state: State, name: string): Promise<MessageInfo | undefined> {
    const e = (await this.index(queue)).entries.get(name)
    return e && e.state === state ? { name, size: e.size, timeMs: e.timeMs, claims: e.claims } : undefined
  }

  private async entry(queue: string, state: State, name: string): Promise<{ idx: QueueIndex; e: Entry }> {
    const idx = await this.index(queue)
    const e = idx.entries.get(name)
    if (!e || e.state !== state) throw gone(queue, name, state)
    return { idx, e }
  }

  /** A direct get by sequence: reads the stored message, consuming nothing. */
  async read(queue: string, state: State, name: string): Promise<Uint8Array> {
    const { idx, e } = await this.entry(queue, state, name)
    const msg = await this.call(c => c.jsm.direct.getMessage(idx.stream, { seq: e.seq })).catch(err => {
      if (apiCode(err) === NO_MESSAGE_FOUND) return null
      throw err
    })
    if (!msg) throw gone(queue, name, state)
    return msg.data
  }

  async enqueue(queue: string, name: string, data: Uint8Array): Promise<void> {
    const c = await this.call(async client => client)
    const limit = Math.min(this.limits.maxBytes, c.maxPayload - 4096)
    if (data.length > limit) throw tooBig(limit, data.length > this.limits.maxBytes ? 'a message' : `a message on this NATS server (max_payload ${c.maxPayload})`)
    const idx = await this.index(queue)
    if (idx.entries.has(name)) throw vfsError('EEXIST', `message '${name}' is already in queue '${queue}'`)
    const subject = `${idx.stream}.m.${subjectToken(name)}`
    let ack: PubAck
    for (let attempt = 0; ; attempt++) {
      try {
        ack = await this.publish(subject, data, { 'Facet-Name': name }, 0)
        break
      } catch (err) {
        const m = /wrong last sequence: (\d+)/.exec(String((err as Error).message))
        if (!m) throw err
        // the subject still holds a message: in use, or acknowledged and not yet deleted (delete it and try again)
        const stale = Number(m[1])
        await idx.until(stale, 300)
        if (attempt > 0 || idx.entries.has(name) || idx.tombstones.get(name) !== stale) throw vfsError('EEXIST', `message '${name}' is already in queue '${queue}'`)
        await this.call(cl => cl.jsm.streams.deleteMessage(idx.stream, stale)).catch(() => {})
      }
    }
    if (!idx.entries.has(name) || idx.entries.get(name)!.seq !== ack.seq) idx.entries.set(name, { seq: ack.seq, size: data.length, state: 'ready', claims: 0, timeMs: Date.now() })
    idx.advance(ack.seq)
    this.counts.enqueued++
  }

  async claim(queue: string, name: string): Promise<void> {
    const { idx, e } = await this.entry(queue, 'ready', name)
    await this.setState(idx, name, e, 'claimed', e.claims + 1)
    this.counts.claimed++
  }

  async release(queue: string, name: string): Promise<State> {
    const { idx, e } = await this.entry(queue, 'claimed', name)
    const dest: State = e.claims >= this.limits.maxClaims ? 'dead' : 'ready'
    await this.setState(idx, name, e, dest, e.claims)
    this.counts.released++
    if (dest === 'dead') this.counts.dead++
    return dest
  }

  async retry(queue: string, name: string): Promise<void> {
    const { idx, e } = await this.entry(queue, 'dead', name)
    await this.setState(idx, name, e, 'ready', 0)
  }

  /** Stores the tombstone (the compare-and-set that decides a race), then deletes the message and the older state records. */
  async ack(queue: string, state: State, name: string): Promise<void> {
    const { idx, e } = await this.entry(queue, state, name)
    await this.setState(idx, name, e, 'acked', e.claims)
    this.counts.acked++
    await this.call(async c => {
      await c.jsm.streams.deleteMessage(idx.stream, e.seq).catch(err => {
        if (apiCode(err) !== NO_MESSAGE_FOUND) throw err
      })
      await c.jsm.streams.purge(idx.stream, { filter: `${idx.stream}.s.${subjectToken(name)}`, keep: 1 })
    }).catch(err => this.host?.logger.warn({ err: String(err), queue, name }, 'nats: an acknowledged message stays in the stream until the next enqueue of its name'))
  }
}
