import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient, type Client } from 'graphql-ws'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createToken, fileTokens, revokeToken, serveGraphQL, type GraphQLServer } from '../../src/graphql/index.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { testVfs } from './helpers.ts'

let home: string
let vfs: Vfs
let server: GraphQLServer
let token: string
let url: string

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'facet-gql-revoke-'))
  ;({ token } = await createToken({ home, name: 'laptop' }))
  ;({ vfs } = testVfs())
  server = await serveGraphQL(vfs, { host: '0.0.0.0', port: 0, tokens: fileTokens(home) })
  url = `http://127.0.0.1:${server.port}/graphql`
})
afterEach(async () => {
  await server.close()
  await vfs.close()
  await rm(home, { recursive: true, force: true })
})

const SUB = `subscription { changes(path: "/scratch") { type path } }`

/** Resolves once `check` holds, polling every 10 ms; rejects after `ms`. */
async function until(what: string, check: () => boolean, ms = 2000): Promise<void> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 10))
  }
}

/** Runs one operation on `client` and resolves with its first result, or rejects with its error. */
function once(client: Client, query: string): Promise<any> {
  return new Promise((resolve, reject) => {
    client.subscribe({ query }, { next: resolve, error: reject, complete: () => undefined })
  })
}

describe('revoking a token', () => {
  /** A graphql-ws client on the server with the token, connected, with a `changes` subscription that has delivered one event. */
  async function subscribed() {
    const state = { closedWith: undefined as number | undefined, ended: undefined as string | undefined, events: [] as unknown[] }
    const client = createClient({
      url: `ws://127.0.0.1:${server.port}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      onNonLazyError: () => undefined,
      connectionParams: { authorization: `Bearer ${token}` },
      on: { closed: e => (state.closedWith ??= (e as { code: number }).code) },
    })
    client.subscribe({ query: SUB }, { next: v => state.events.push(v), error: () => (state.ended ??= 'error'), complete: () => (state.ended ??= 'complete') })
    await until('the first event', () => {
      if (state.events.length === 0) void vfs.writeFile('/scratch/before', 'x')
      return state.events.length > 0
    })
    return { client, state }
  }

  it('closes its open graphql-ws subscription with 4403 within a second, delivering nothing after', async () => {
    const { client, state } = await subscribed()
    try {
      expect(await revokeToken('laptop', home)).toBe(true)
      const revokedAt = Date.now()
      await until('the socket to close', () => state.closedWith !== undefined, 1000)
      expect(Date.now() - revokedAt).toBeLessThan(1000)
      expect(state.closedWith).toBe(4403)
      expect(state.ended).toBeDefined()
      const seen = state.events.length
      await vfs.writeFile('/scratch/later', 'x')
      await new Promise(r => setTimeout(r, 100))
      expect(state.events.length).toBe(seen)
    } finally {
      await client.dispose()
    }
  })

  it('refuses writeFile sent on that socket right after the revocation with UNAUTHENTICATED, and writes nothing', async () => {
    const { client } = await subscribed()
    try {
      await revokeToken('laptop', home)
      const result = await once(client, `mutation { writeFile(path: "/scratch/after", text: "x") { path } }`)
      expect(result).toEqual({ errors: [{ message: 'the token of this connection was revoked', extensions: { code: 'UNAUTHENTICATED' } }] })
      await expect(vfs.stat('/scratch/after')).rejects.toMatchObject({ code: 'ENOENT' })
    } finally {
      await client.dispose()
    }
  })

  it('ends its open SSE subscription within a second, delivering nothing after the revocation', async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: SUB }),
    })
    expect(res.status).toBe(200)
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    let closed = false
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        text += value
      }
      closed = true
    })()
    await until('the first event', () => {
      if (!text.includes('event: next')) void vfs.writeFile('/scratch/before', 'x')
      return text.includes('/scratch/before')
    })

    expect(await revokeToken('laptop', home)).toBe(true)
    const revokedAt = Date.now()
    await until('the stream to close', () => closed, 1000)
    expect(Date.now() - revokedAt).toBeLessThan(1000)
    await reading
    await vfs.writeFile('/scratch/after', 'x')
    expect(text).not.toContain('/scratch/after')
    expect(text).toContain('UNAUTHENTICATED')
    expect(text).toContain('event: complete')
  })

  it('refuses the next request on a kept-alive HTTP connection with 401', async () => {
    const post = () => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{"query":"{ mounts { path } }"}' })
    expect((await post()).status).toBe(200)
    await revokeToken('laptop', home)
    expect((await post()).status).toBe(401)
  })
})
