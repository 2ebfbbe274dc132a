import { mkdtemp, rm, stat } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'graphql-ws'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createGraphQLApi, createToken, fileTokens, readTokens, serveGraphQL, type GraphQLServer } from '../../src/graphql/index.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { testVfs } from './helpers.ts'

let home: string
let vfs: Vfs
let servers: GraphQLServer[] = []

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'facet-gql-home-'))
})
afterAll(async () => {
  await rm(home, { recursive: true, force: true })
})
afterEach(async () => {
  for (const s of servers) await s.close()
  servers = []
  await vfs?.close()
})

async function serve(options: Parameters<typeof serveGraphQL>[1] = {}): Promise<GraphQLServer> {
  ;({ vfs } = testVfs())
  const s = await serveGraphQL(vfs, { port: 0, ...options })
  servers.push(s)
  return s
}

function post(url: string, query: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query }) })
}

describe('serveGraphQL on a real socket', () => {
  it('binds 127.0.0.1 by default and answers a query', async () => {
    const s = await serve()
    expect(s.url).toBe(`http://127.0.0.1:${s.port}/graphql`)
    const res = await post(s.url, '{ node(path: "/hello/README.txt") { ... on File { text } } }')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ data: { node: { text: 'hello, world\n' } } })
  })

  it('refuses a request whose Host is not a loopback name with 403 (DNS rebinding)', async () => {
    const s = await serve()
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(s.url, { method: 'POST', headers: { 'content-type': 'application/json', host: `evil.example:${s.port}` } }, r => {
        let body = ''
        r.on('data', c => (body += c))
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }))
      })
      req.on('error', reject)
      req.end('{"query":"{ mounts { path } }"}')
    })
    expect(res.status).toBe(403)
    expect(JSON.parse(res.body)).toMatchObject({ errors: [{ extensions: { code: 'FORBIDDEN_HOST' } }] })
    const ok = await post(s.url.replace('127.0.0.1', 'localhost'), '{ mounts { path } }')
    expect(ok.status).toBe(200)
  })

  it('refuses to listen beyond loopback while no token exists', async () => {
    ;({ vfs } = testVfs())
    await expect(serveGraphQL(vfs, { host: '0.0.0.0', port: 0, tokens: fileTokens(home) })).rejects.toThrow(
      'refusing to serve GraphQL on 0.0.0.0, beyond loopback, without bearer tokens: create one with `facet token create`',
    )
    await expect(serveGraphQL(vfs, { host: '0.0.0.0', port: 0, tokens: [] })).rejects.toThrow(/without bearer tokens/)
  })

  it('answers 401 beyond loopback without a valid bearer token, and serves a request with one', async () => {
    const { token } = await createToken({ home, name: 'test' })
    const s = await serve({ host: '0.0.0.0', tokens: fileTokens(home) })
    const url = `http://127.0.0.1:${s.port}/graphql`
    const none = await post(url, '{ mounts { path } }')
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="facet"')
    expect(await none.json()).toEqual({
      errors: [{ message: 'a valid bearer token is required (Authorization: Bearer <token>; see facet token create)', extensions: { code: 'UNAUTHENTICATED' } }],
    })
    expect((await post(url, '{ mounts { path } }', { authorization: 'Bearer facet_wrong' })).status).toBe(401)
    expect((await post(url, '{ mounts { path } }', { authorization: token })).status).toBe(401)
    const get = await fetch(`${url}?query=${encodeURIComponent('{ mounts { path } }')}`)
    expect(get.status).toBe(401)
    const ok = await post(url, '{ mounts { path } }', { authorization: `Bearer ${token}` })
    expect(ok.status).toBe(200)
    expect((await ok.json()).data.mounts).toHaveLength(3)
    const page = await fetch(url, { headers: { accept: 'text/html' } })
    expect(page.status).toBe(401)
    await page.body?.cancel()
    expect((await fetch(url, { headers: { accept: 'text/html', authorization: `Bearer ${token}` } })).status).toBe(200)
  })

  it('takes a token created while it runs', async () => {
    const s = await serve({ host: '0.0.0.0', tokens: fileTokens(home) })
    const url = `http://127.0.0.1:${s.port}/graphql`
    const { token } = await createToken({ home })
    expect((await post(url, '{ mounts { path } }', { authorization: `Bearer ${token}` })).status).toBe(200)
  })

  it('requires a token on loopback too when tokens are given', async () => {
    const s = await serve({ tokens: ['s3cret'] })
    expect((await post(s.url, '{ mounts { path } }')).status).toBe(401)
    expect((await post(s.url, '{ mounts { path } }', { authorization: 'Bearer s3cret' })).status).toBe(200)
  })
})

describe('tokens', () => {
  it('stores only the SHA-256 of a token, in a 0600 file under FACET_HOME', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'facet-gql-tok-'))
    try {
      const { token, record } = await createToken({ home: dir, name: 'ci' })
      expect(token).toMatch(/^facet_[A-Za-z0-9_-]{43}$/)
      expect((await stat(join(dir, 'tokens.json'))).mode & 0o777).toBe(0o600)
      const stored = await readTokens(dir)
      expect(stored).toEqual([record])
      expect(JSON.stringify(stored)).not.toContain(token.slice(6))
      await expect(createToken({ home: dir, name: 'ci' })).rejects.toThrow("a token named 'ci' exists already")
      expect((await createToken({ home: dir })).record.name).toBe('token-2')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

/** Reads an SSE response until `count` `next` events arrive; returns their data. */
async function readEvents(res: Response, count: number): Promise<unknown[]> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  const events: unknown[] = []
  while (events.length < count) {
    const { value, done } = await reader.read()
    if (done) break
    buffer += value
    let end: number
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = block.split('\n').filter(l => l.startsWith('data:')).map(l => l.slice(5).trim()).join('\n')
      if (block.includes('event: next') && data) events.push(JSON.parse(data))
    }
  }
  await reader.cancel()
  return events.slice(0, count)
}

describe('subscriptions', () => {
  const SUB = `subscription { changes(path: "/scratch") { type path oldPath kind mount } }`

  it('streams a change made through the VFS over SSE', async () => {
    const s = await serve()
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: SUB }),
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    const events = readEvents(res, 3)
    await vfs.writeFile('/scratch/a.txt', 'one')
    await vfs.rename('/scratch/a.txt', '/scratch/b.txt')
    expect(await events).toEqual([
      { data: { changes: { type: 'CREATE', path: '/scratch/a.txt', oldPath: null, kind: 'FILE', mount: '/scratch' } } },
      { data: { changes: { type: 'UPDATE', path: '/scratch/a.txt', oldPath: null, kind: 'FILE', mount: '/scratch' } } },
      { data: { changes: { type: 'RENAME', path: '/scratch/b.txt', oldPath: '/scratch/a.txt', kind: 'FILE', mount: '/scratch' } } },
    ])
  })

  it('streams changes in-process through api.fetch, direct entries only when not recursive', async () => {
    ;({ vfs } = testVfs())
    const api = createGraphQLApi(vfs)
    const res = await api.fetch('http://facet/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: `subscription { changes(path: "/scratch", recursive: false) { type path } }` }),
    })
    const events = readEvents(res, 2)
    await vfs.mkdir('/scratch/d')
    await vfs.writeFile('/scratch/d/deep', 'x')
    await vfs.rename('/scratch/d', '/scratch/e')
    expect(await events).toEqual([
      { data: { changes: { type: 'CREATE', path: '/scratch/d' } } },
      { data: { changes: { type: 'RENAME', path: '/scratch/e' } } },
    ])
  })

  it('delivers a change over graphql-ws on the same URL', async () => {
    const s = await serve()
    const client = createClient({ url: s.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 })
    try {
      const got = new Promise<unknown>((resolve, reject) => {
        const stop = client.subscribe(
          { query: `subscription { changes(path: "/scratch/ws") { type path node { ... on File { text } } } }` },
          { next: v => (stop(), resolve(v)), error: reject, complete: () => undefined },
        )
      })
      await vfs.mkdir('/scratch/ws')
      let n = 0
      const writer = setInterval(() => void vfs.writeFile('/scratch/ws/f', `v${++n}`).catch(() => undefined), 30)
      try {
        const v = (await got) as { data: { changes: { type: string; path: string; node: { text: string } } } }
        expect(v.data.changes.path).toBe('/scratch/ws/f')
        expect(['CREATE', 'UPDATE']).toContain(v.data.changes.type)
        expect(v.data.changes.node.text).toMatch(/^v\d+$/)
      } finally {
        clearInterval(writer)
      }
    } finally {
      await client.dispose()
    }
  })

  it('runs queries over graphql-ws with the same error codes', async () => {
    const s = await serve()
    const client = createClient({ url: s.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0 })
    try {
      const result = await new Promise<any>((resolve, reject) => {
        client.subscribe({ query: `mutation { writeFile(path: "/hello/x", text: "x") { path } }` }, { next: resolve, error: reject, complete: () => undefined })
      })
      expect(result.errors[0]).toMatchObject({ message: "EROFS: read-only file system, open '/hello/x'", extensions: { code: 'EROFS' } })
    } finally {
      await client.dispose()
    }
  })

  it('refuses a WebSocket from another origin and one without a token beyond loopback', async () => {
    const s = await serve()
    const opened = (url: string, opts: WebSocket.ClientOptions) =>
      new Promise<number>(resolve => {
        const ws = new WebSocket(url, 'graphql-transport-ws', opts)
        ws.on('open', () => (ws.close(), resolve(101)))
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.on('error', () => resolve(-1))
      })
    expect(await opened(s.wsUrl, { origin: 'http://evil.example' })).toBe(403)
    expect(await opened(s.wsUrl, { origin: `http://127.0.0.1:${s.port}` })).toBe(101)

    const { token } = await createToken({ home, name: 'ws' })
    const t = await serveGraphQL(vfs, { host: '0.0.0.0', port: 0, tokens: fileTokens(home) })
    servers.push(t)
    const wsUrl = `ws://127.0.0.1:${t.port}/graphql`
    expect(await opened(wsUrl, { headers: { authorization: 'Bearer nope' } })).toBe(401)
    const run = (connectionParams?: Record<string, unknown>) => {
      const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, ...(connectionParams ? { connectionParams } : {}) })
      return new Promise<unknown>((resolve, reject) => {
        client.subscribe({ query: '{ mounts { path } }' }, { next: resolve, error: reject, complete: () => undefined })
      }).finally(() => client.dispose())
    }
    await expect(run()).rejects.toMatchObject({ code: 4403 })
    expect(await run({ authorization: `Bearer ${token}` })).toEqual({ data: { mounts: [{ path: '/scratch' }, { path: '/hello' }, { path: '/users' }] } })
  })
})
