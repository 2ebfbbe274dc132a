import { createHash, randomBytes } from 'node:crypto'
import type { RedisClientType } from 'redis'
import { vfsError, type ErrnoCode } from '../../src/vfs/errors.ts'
import { brokerError, messagePath, newStats, tooBig, type BackendHost, type MessageInfo, type QueueBackend, type QueueLimits, type State } from './backend.ts'

const GROUP = 'facet'

/**
 * Lua run by Redis as one step each (scripts are atomic), so every check-and-move below
 * is decided by the server: of two FacetFS processes claiming one message, the second
 * script sees the first one's claim. KEYS: the stream, its name index, its dead-letter
 * stream; ARGV[1..4]: message name, queue name, origin, event channel.
 */
const PRELUDE = `
local K, N, D = KEYS[1], KEYS[2], KEYS[3]
local name, queue, origin, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local function field(f, key) for i = 1, #f, 2 do if f[i] == key then return f[i + 1] end end return nil end
local function body(f)
  local d = field(f, 'data')
  if d then return d end
  local lines = {}
  for i = 1, #f, 2 do lines[#lines + 1] = f[i] .. ' ' .. f[i + 1] .. '\\n' end
  return table.concat(lines)
end
local function idms(id) return tonumber(string.match(id, '^(%d+)')) end
-- a message's time in every state: when it was first enqueued (kept across dead-lettering and retries)
local function enqueued(e) return tonumber(field(e[2], 'enqueued') or idms(e[1])) end
local function fail(code, why) return redis.error_reply(code .. ' ' .. why) end
local function event(from, to) redis.call('PUBLISH', channel, origin .. '\\t' .. queue .. '\\t' .. name .. '\\t' .. from .. '\\t' .. to) end
-- the id of a live message by name: the index, else a name that is an entry id (a plain XADD without a name field)
local function idOf(n)
  local v = redis.call('HGET', N, n)
  if v then if string.sub(v, 1, 1) == 'd' then return nil end return v end
  if string.match(n, '^%d+%-%d+$') and #redis.call('XRANGE', K, n, n) > 0 then return n end
  return nil
end
local function pending(id)
  local p = redis.call('XPENDING', K, '${GROUP}', id, id, 1)
  return p[1]
end
-- moves a claimed entry back: to the ready owner, or to the dead-letter stream on its last claim
local function giveBack(id, p, maxClaims)
  local n = tonumber(p[4])
  if n >= maxClaims then
    local e = redis.call('XRANGE', K, id, id)[1]
    local f = {}
    for i = 1, #e[2], 2 do if e[2][i] ~= 'claims' and e[2][i] ~= 'enqueued' then f[#f + 1] = e[2][i]; f[#f + 1] = e[2][i + 1] end end
    f[#f + 1] = 'claims'; f[#f + 1] = tostring(n)
    f[#f + 1] = 'enqueued'; f[#f + 1] = tostring(enqueued(e))
    local did = redis.call('XADD', D, '*', unpack(f))
    redis.call('XACK', K, '${GROUP}', id)
    redis.call('XDEL', K, id)
    redis.call('HSET', N, field(e[2], 'name') or id, 'd' .. did)
    return 'dead'
  end
  redis.call('XCLAIM', K, '${GROUP}', 'ready', 0, id, 'RETRYCOUNT', n, 'JUSTID')
  return 'ready'
end
`

const SCRIPTS = {
  /** ARGV[5]: data, ARGV[6]: nonce (kept across retries, so a retried enqueue is the same message). */
  enqueue: `
if redis.call('EXISTS', K) == 0 then return fail('ENOENT', 'no such queue') end
local v = redis.call('HGET', N, name)
if v then
  if string.sub(v, 1, 1) ~= 'd' then
    local e = redis.call('XRANGE', K, v, v)[1]
    if e and field(e[2], 'nonce') == ARGV[6] then return v end
    if e then return fail('EEXIST', 'a message of that name is in the queue') end
  else return fail('EEXIST', 'a message of that name is in dead/') end
end
local id = redis.call('XADD', K, '*', 'name', name, 'data', ARGV[5], 'nonce', ARGV[6], 'origin', origin)
redis.call('HSET', N, name, id)
event('', 'ready')
return id`,
  claim: `
local id = idOf(name)
if not id then return fail('ENOENT', 'not in the queue') end
local p = pending(id)
local n = 0
if p then
  if p[2] ~= 'ready' then return fail('ENOENT', 'claimed by ' .. p[2]) end
  n = tonumber(p[4])
end
redis.call('XCLAIM', K, '${GROUP}', 'claimed', 0, id, 'FORCE', 'RETRYCOUNT', n + 1, 'JUSTID')
event('ready', 'claimed')
return n + 1`,
  /** ARGV[5]: maxClaims. */
  release: `
local id = idOf(name)
local p = id and pending(id)
if not p or p[2] == 'ready' then return fail('ENOENT', 'not claimed') end
local dest = giveBack(id, p, tonumber(ARGV[5]))
event('claimed', dest)
return dest`,
  retry: `
local v = redis.call('HGET', N, name)
if not v or string.sub(v, 1, 1) ~= 'd' then return fail('ENOENT', 'not in dead/') end
local e = redis.call('XRANGE', D, string.sub(v, 2), string.sub(v, 2))[1]
if not e then return fail('ENOENT', 'not in dead/') end
local f = {}
for i = 1, #e[2], 2 do if e[2][i] ~= 'claims' then f[#f + 1] = e[2][i]; f[#f + 1] = e[2][i + 1] end end
local id = redis.call('XADD', K, '*', unpack(f))
redis.call('XDEL', D, e[1])
redis.call('HSET', N, name, id)
event('dead', 'ready')
return id`,
  /** ARGV[5]: the state the message is acknowledged in. */
  ack: `
local state = ARGV[5]
if state == 'dead' then
  local v = redis.call('HGET', N, name)
  if not v or string.sub(v, 1, 1) ~= 'd' or redis.call('XDEL', D, string.sub(v, 2)) == 0 then return fail('ENOENT', 'not in dead/') end
else
  local id = idOf(name)
  local p = id and pending(id)
  if not id or (state == 'claimed' and (not p or p[2] == 'ready')) or (state == 'ready' and p and p[2] ~= 'ready') then return fail('ENOENT', 'not ' .. state) end
  if p then redis.call('XACK', K, '${GROUP}', id) end
  if redis.call('XDEL', K, id) == 0 then return fail('ENOENT', 'gone') end
end
redis.call('HDEL', N, name)
event(state, '')
return 'ok'`,
  /**
   * ARGV[5]: state, ARGV[6]: claim timeout (0: none), ARGV[7]: maxClaims, ARGV[8]: one name or ''.
   * Returns claims past the timeout to the queue first, then rows {name, size, time, claims},
   * then the names it returned (after a '' row).
   */
  list: `
local state, timeout, maxClaims, only = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local returned = {}
local owners = {}
for _, p in ipairs(redis.call('XPENDING', K, '${GROUP}', '-', '+', 1000000)) do
  if p[2] ~= 'ready' and timeout > 0 and tonumber(p[3]) >= timeout then
    local e = redis.call('XRANGE', K, p[1], p[1])[1]
    local n = e and (field(e[2], 'name') or e[1])
    if e then
      local dest = giveBack(p[1], p, maxClaims)
      returned[#returned + 1] = n .. '\\t' .. dest
      redis.call('PUBLISH', channel, origin .. '\\t' .. queue .. '\\t' .. n .. '\\tclaimed\\t' .. dest)
      if dest == 'ready' then owners[p[1]] = { 'ready', 0, tonumber(p[4]) } end
    end
  else owners[p[1]] = { p[2], tonumber(p[3]), tonumber(p[4]) } end
end
local rows = {}
local function row(n, b, time, claims) rows[#rows + 1] = { n, #b, time, claims } end
if state == 'dead' then
  local range = redis.call('XRANGE', D, '-', '+')
  for _, e in ipairs(range) do
    local n = field(e[2], 'name') or e[1]
    if only == '' or only == n then row(n, body(e[2]), enqueued(e), tonumber(field(e[2], 'claims') or '0')) end
  end
else
  local range
  if only ~= '' then
    local id = idOf(only)
    range = id and redis.call('XRANGE', K, id, id) or {}
  else range = redis.call('XRANGE', K, '-', '+') end
  for _, e in ipairs(range) do
    local n = field(e[2], 'name') or e[1]
    local o = owners[e[1]]
    local claimed = o and o[1] ~= 'ready'
    if (state == 'claimed') == (claimed == true) then
      if field(e[2], 'name') and not redis.call('HGET', N, n) then redis.call('HSET', N, n, e[1]) end
      row(n, body(e[2]), enqueued(e), o and o[3] or 0)
    end
  end
end
rows[#rows + 1] = { '' }
for _, r in ipairs(returned) do rows[#rows + 1] = r end
return rows`,
  /** ARGV[5]: state. The body of one message; peeking never touches the group. */
  read: `
local state = ARGV[5]
local e
if state == 'dead' then
  local v = redis.call('HGET', N, name)
  if v and string.sub(v, 1, 1) == 'd' then e = redis.call('XRANGE', D, string.sub(v, 2), string.sub(v, 2))[1] end
else
  local id = idOf(name)
  local p = id and pending(id)
  if id and ((state == 'claimed') == (p ~= nil and p[2] ~= 'ready')) then e = redis.call('XRANGE', K, id, id)[1] end
end
if not e then return fail('ENOENT', 'not ' .. state) end
return body(e[2])`,
} as const

type ScriptName = keyof typeof SCRIPTS
const SOURCES = Object.fromEntries(Object.entries(SCRIPTS).map(([k, v]) => [k, PRELUDE + v])) as Record<ScriptName, string>
const SHAS = Object.fromEntries(Object.entries(SOURCES).map(([k, v]) => [k, createHash('sha1').update(v).digest('hex')])) as Record<ScriptName, string>
const CODES = new Set<string>(['ENOENT', 'EEXIST', 'EPERM', 'EINVAL'])

type Client = RedisClientType

/**
 * Queues in Redis Streams. A queue is the stream `<prefix><queue>` with the consumer
 * group `facet`; `<key>/names` maps message names to entry ids, and `<key>/dead` is the
 * dead-letter stream. A claimed message is a pending entry of the group owned by any
 * consumer but `ready` (FacetFS claims as `claimed`; a worker reading the group under
 * its own name shows up there too); a released one is pending under `ready`, its
 * delivery count the claims so far. Every change is one Lua script, run atomically.
 * Other FacetFS processes' changes arrive on the pub/sub channel `<prefix>/events`;
 * entries other programs add are pushed by a blocking `XREAD`.
 */
export class RedisBackend implements QueueBackend {
  readonly kind = 'redis' as const
  private host: BackendHost | undefined
  private client: Promise<Client> | undefined
  private readonly helpers: Client[] = []
  private lastError = 'not connected yet'
  private closed = false
  private readonly followed = new Map<string, string>()
  private readonly instance = randomBytes(6).toString('hex')
  private readonly channel: string
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly counts = newStats()
  private wake: (() => void) | undefined

  constructor(
    readonly url: string,
    readonly prefix: string,
    private readonly limits: QueueLimits,
    private readonly timeoutMs: number,
  ) {
    this.channel = `${prefix}/events`
  }

  attach(host: BackendHost): void {
    this.host = host
    void this.connect()
      .then(() => this.queues())
      .then(qs => qs.forEach(q => void this.hasQueue(q).catch(() => {})))
      .catch(err => host.logger.warn({ err: String(err) }, 'redis: cannot list the queues yet'))
  }

  async close(): Promise<void> {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    this.wake?.()
    const c = await this.client?.catch(() => undefined)
    for (const h of [...this.helpers, ...(c ? [c] : [])]) h.destroy()
  }

  stats(): Record<string, number | string> {
    return { ...this.counts, broker: this.url, queuesFollowed: this.followed.size }
  }

  private key(queue: string): string[] {
    const k = this.prefix + queue
    return [k, `${k}/names`, `${k}/dead`]
  }

  private async newClient(): Promise<Client> {
    const { createClient } = await import('redis')
    const c = createClient({
      url: this.url,
      disableOfflineQueue: true,
      socket: { connectTimeout: this.timeoutMs, reconnectStrategy: retries => Math.min(50 * 2 ** retries, 500) },
    }) as unknown as Client
    c.on('error', (err: Error) => {
      if (err.message !== this.lastError) this.host?.logger.warn({ broker: this.url, err: err.message }, 'redis: connection error')
      this.lastError = err.message || String(err)
    })
    let timer: NodeJS.Timeout | undefined
    const gaveUp = new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new Error(`no connection within ${this.timeoutMs} ms: ${this.lastError}`)), this.timeoutMs)
    })
    try {
      await Promise.race([c.connect(), gaveUp])
    } catch (err) {
      c.destroy()
      throw err
    } finally {
      clearTimeout(timer)
    }
    return c
  }

  private connect(): Promise<Client> {
    if (this.closed) return Promise.reject(vfsError('EIO', 'the queue view is closed'))
    this.client ??= this.newClient().then(c => {
      void this.follow()
      return c
    })
    this.client.catch(err => {
      this.lastError = (err as Error).message
      this.client = undefined
    })
    return this.client
  }

  /** Runs a command; `EAGAIN` while Redis is unreachable, `EIO` for other failures, the script's own errno for a refused move. */
  private async send<T>(args: Array<string | Buffer>, binary = false): Promise<T> {
    let c: Client
    try {
      c = await this.connect()
    } catch (err) {
      throw brokerError(`redis ${this.url}`, err)
    }
    if (!c.isReady) throw vfsError('EAGAIN', `redis ${this.url}: not connected (${this.lastError}); reconnecting`)
    try {
      return (await c.sendCommand(args, { timeout: this.timeoutMs, ...(binary ? { typeMapping: { [36]: Buffer } } : {}) } as never)) as T
    } catch (err) {
      const msg = String((err as Error).message ?? err)
      const code = msg.split(' ')[0]!
      if (CODES.has(code)) throw vfsError(code as ErrnoCode, msg.slice(code.length + 1))
      throw brokerError(`redis ${this.url}`, err)
    }
  }

  private async script<T>(name: ScriptName, queue: string, msg: string, extra: Array<string | Buffer> = [], binary = false): Promise<T> {
    const args = [String(3), ...this.key(queue), msg, queue, this.instance, this.channel, ...extra]
    try {
      return await this.send<T>(['EVALSHA', SHAS[name], ...args], binary)
    } catch (err) {
      if (!/NOSCRIPT/.test(String((err as Error).message))) throw err
      return this.send<T>(['EVAL', SOURCES[name], ...args], binary)
    }
  }

  /**
   * Pushes what others do: other FacetFS processes' moves from the event channel, and
   * entries added by other programs from a blocking `XREAD` on every followed stream.
   */
  private async follow(): Promise<void> {
    try {
      const sub = await this.newClient()
      this.helpers.push(sub)
      await sub.subscribe(this.channel, message => {
        const [origin, queue, name, from, to] = message.split('\t') as [string, string, string, string, string]
        if (origin === this.instance || !this.host || !this.followed.has(queue)) return
        if (!from) this.host.emit({ type: 'create', path: messagePath(queue, to as State, name), kind: 'file' })
        else if (!to) this.host.emit({ type: 'delete', path: messagePath(queue, from as State, name), kind: 'file' })
        else this.host.emit({ type: 'rename', path: messagePath(queue, to as State, name), oldPath: messagePath(queue, from as State, name), kind: 'file' })
      })
      const reader = await this.newClient()
      this.helpers.push(reader)
      while (!this.closed) {
        const queues = [...this.followed.keys()]
        if (queues.length === 0) {
          await new Promise<void>(r => {
            this.wake = r
            setTimeout(r, 1000).unref()
          })
          continue
        }
        let reply: Array<[string, Array<[string, string[]]>]> | Record<string, Array<[string, string[]]>> | null
        try {
          reply = (await reader.sendCommand(['XREAD', 'BLOCK', '1000', 'STREAMS', ...queues.map(q => this.prefix + q), ...queues.map(q => this.followed.get(q)!)])) as typeof reply
        } catch {
          if (!this.closed) await new Promise(r => setTimeout(r, 200))
          continue
        }
        for (const [key, entries] of Array.isArray(reply) ? reply : Object.entries(reply ?? {})) {
          const queue = key.slice(this.prefix.length)
          for (const [id, fields] of entries) {
            this.followed.set(queue, id)
            const f = new Map<string, string>()
            for (let i = 0; i < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!)
            if (f.has('origin')) continue
            const name = f.get('name') ?? id
            if (f.has('name')) await this.send(['HSETNX', `${key}/names`, name, id]).catch(() => {})
            this.host?.emit({ type: 'create', path: messagePath(queue, 'ready', name), kind: 'file' })
          }
        }
      }
    } catch (err) {
      if (!this.closed) this.host?.logger.warn({ err: String(err) }, 'redis: following changes stopped')
    }
  }

  async queues(): Promise<string[]> {
    const out: string[] = []
    const pattern = this.prefix.replace(/[*?[\]\\]/g, c => '\\' + c) + '*'
    let cursor = '0'
    do {
      const [next, keys] = await this.send<[string, string[]]>(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000', 'TYPE', 'stream'])
      cursor = next
      for (const k of keys) {
        const q = k.slice(this.prefix.length)
        if (!q.includes('/') && !q.startsWith('.')) out.push(q)
      }
    } while (cursor !== '0')
    return [...new Set(out)].sort()
  }

  async hasQueue(queue: string): Promise<boolean> {
    if (this.followed.has(queue)) return true
    const [k] = this.key(queue)
    if ((await this.send<string>(['TYPE', k!])) !== 'stream') return false
    await this.send(['XGROUP', 'CREATE', k!, GROUP, '0']).catch(err => {
      if (!/BUSYGROUP/.test(String((err as Error).message))) throw err
    })
    const last = await this.send<Array<[string, unknown]>>(['XREVRANGE', k!, '+', '-', 'COUNT', '1'])
    if (!this.followed.has(queue)) this.followed.set(queue, last[0]?.[0] ?? '0-0')
    this.wake?.()
    return true
  }

  async createQueue(queue: string): Promise<void> {
    const [k] = this.key(queue)
    if ((await this.send<number>(['EXISTS', k!])) > 0) throw vfsError('EEXIST', `queue '${queue}' exists (key ${k})`)
    await this.send(['XGROUP', 'CREATE', k!, GROUP, '0', 'MKSTREAM'])
    await this.hasQueue(queue)
  }

  async removeQueue(queue: string): Promise<void> {
    for (const s of ['ready', 'claimed', 'dead'] as const) if ((await this.list(queue, s)).length > 0) throw vfsError('ENOTEMPTY', `queue '${queue}' still holds ${s} messages`)
    await this.send(['DEL', ...this.key(queue)])
    this.followed.delete(queue)
  }

  private async rows(queue: string, state: State, only = ''): Promise<MessageInfo[]> {
    const reply = await this.script<Array<[string, number, number, number] | [string] | string>>('list', queue, '', [state, String(this.limits.claimTimeoutMs), String(this.limits.maxClaims), only])
    const out: MessageInfo[] = []
    let i = 0
    for (; i < reply.length; i++) {
      const r = reply[i]!
      if (Array.isArray(r) && r[0] === '' && r.length === 1) break
      const [name, size, timeMs, claims] = r as [string, number, number, number]
      out.push({ name, size: Number(size), timeMs: Number(timeMs), claims: Number(claims) })
    }
    for (const r of reply.slice(i + 1)) {
      const [name, dest] = String(r).split('\t') as [string, State]
      this.counts.timedOut++
      if (dest === 'dead') this.counts.dead++
      this.host?.emit({ type: 'rename', path: messagePath(queue, dest, name), oldPath: messagePath(queue, 'claimed', name), kind: 'file' })
    }
    return out
  }

  async list(queue: string, state: State): Promise<MessageInfo[]> {
    return this.rows(queue, state)
  }

  async find(queue: string, state: State, name: string): Promise<MessageInfo | undefined> {
    return (await this.rows(queue, state, name))[0]
  }

  async read(queue: string, state: State, name: string): Promise<Uint8Array> {
    return this.script<Buffer>('read', queue, name, [state], true)
  }

  async enqueue(queue: string, name: string, data: Uint8Array): Promise<void> {
    if (data.length > this.limits.maxBytes) throw tooBig(this.limits.maxBytes)
    const nonce = randomBytes(8).toString('hex')
    const end = Date.now() + this.timeoutMs
    // a retry after a lost reply carries the same nonce: the script answers with the entry already stored
    for (;;) {
      try {
        await this.script('enqueue', queue, name, [Buffer.from(data.buffer, data.byteOffset, data.length), nonce])
        break
      } catch (err) {
        if ((err as { code?: string }).code !== 'EAGAIN' || Date.now() >= end) throw err
        await new Promise(r => setTimeout(r, 100))
      }
    }
    this.counts.enqueued++
  }

  async claim(queue: string, name: string): Promise<void> {
    await this.script('claim', queue, name)
    this.counts.claimed++
    if (this.limits.claimTimeoutMs > 0) {
      const t = setTimeout(() => {
        this.timers.delete(t)
        this.rows(queue, 'claimed').catch(err => this.host?.logger.warn({ err: String(err), queue }, 'redis: returning timed-out claims failed'))
      }, this.limits.claimTimeoutMs + 5)
      t.unref()
      this.timers.add(t)
    }
  }

  async release(queue: string, name: string): Promise<State> {
    const dest = await this.script<State>('release', queue, name, [String(this.limits.maxClaims)])
    this.counts.released++
    if (dest === 'dead') this.counts.dead++
    return dest
  }

  async retry(queue: string, name: string): Promise<void> {
    await this.script('retry', queue, name)
  }

  async ack(queue: string, state: State, name: string): Promise<void> {
    await this.script('ack', queue, name, [state])
    this.counts.acked++
  }
}
