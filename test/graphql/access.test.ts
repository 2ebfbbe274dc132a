import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'graphql-ws'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createToken, fileTokens, hashToken, readTokens, serveGraphQL, type GraphQLServer } from '../../src/graphql/index.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { testVfs } from './helpers.ts'

let home: string
let vfs: Vfs
let servers: GraphQLServer[] = []

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'facet-gql-access-'))
  ;({ vfs } = testVfs())
})
afterEach(async () => {
  for (const s of servers) await s.close()
  servers = []
  await vfs.close()
  await rm(home, { recursive: true, force: true })
})

/** Serves `vfs` on 0.0.0.0 with the tokens of `home`; returns the loopback URL to reach it. */
async function serveBeyondLoopback(): Promise<string> {
  const s = await serveGraphQL(vfs, { host: '0.0.0.0', port: 0, tokens: fileTokens(home) })
  servers.push(s)
  return `http://127.0.0.1:${s.port}/graphql`
}

const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')
const html = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers: { accept: 'text/html', ...headers } })
const post = (url: string, query: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query }) })

describe('GraphiQL beyond loopback', () => {
  it('refuses the page and any GET without a valid token with 401, offering a browser HTTP Basic', async () => {
    const { token } = await createToken({ home, name: 'browser' })
    const url = await serveBeyondLoopback()

    const page = await html(url)
    expect(page.status).toBe(401)
    expect(page.headers.get('www-authenticate')).toBe('Bearer realm="facet", Basic realm="facet", charset="UTF-8"')
    const body = await page.text()
    expect(body.length).toBeLessThan(300)
    expect(JSON.parse(body)).toMatchObject({ errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] })
    expect((await html(url, { authorization: basic('facet', 'facet_wrong') })).status).toBe(401)
    expect((await fetch(`${url}?query=${encodeURIComponent('{ mounts { path } }')}`)).status).toBe(401)
    const api = await post(url, '{ mounts { path } }')
    expect(api.headers.get('www-authenticate')).toBe('Bearer realm="facet"')

    const ok = await html(url, { authorization: basic('facet', token) })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('content-type')).toBe('text/html')
    const text = await ok.text()
    expect(text).toContain('FacetFS GraphQL')
    // the browser sends its Basic credentials again by itself: no placeholder header to replace them
    expect(text).not.toContain('token from facet token create')
    expect((await post(url, '{ mounts { path } }', { authorization: basic('', token) })).status).toBe(200)
    expect((await fetch(`${url}?query=${encodeURIComponent('{ mounts { path } }')}`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
  })

  it('keeps the health check public and says nothing else there', async () => {
    await createToken({ home })
    const url = await serveBeyondLoopback()
    const res = await fetch(url.replace('/graphql', '/health'))
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('')
  })
})

describe('a token maps to a caller', () => {
  beforeEach(async () => {
    await vfs.chmod('/scratch', 0o777)
    await vfs.writeFile('/scratch/secret', 'root only')
    await vfs.chmod('/scratch/secret', 0o600)
    await vfs.writeFile('/scratch/public', 'for all')
  })

  it('stores the uid, gid and identity with the token, by default the creating user\'s', async () => {
    const { record } = await createToken({ home, name: 'mine' })
    expect(record).toMatchObject({ name: 'mine', uid: process.getuid!(), gid: process.getgid!() })
    const { token, record: nobody } = await createToken({ home, name: 'nobody', uid: 65534, gid: 65534, identity: 'guest' })
    expect(nobody).toEqual({ name: 'nobody', sha256: hashToken(token), createdAt: expect.any(String), uid: 65534, gid: 65534, identity: 'guest' })
    expect(await readTokens(home)).toEqual([record, nobody])
    expect(await fileTokens(home).identify(token)).toEqual({ name: 'nobody', uid: 65534, gid: 65534, identity: 'guest' })
    await expect(createToken({ home, uid: -1 })).rejects.toThrow('bad uid -1: use a whole number from 0 to 4294967295')
    await expect(createToken({ home, identity: 'no spaces' })).rejects.toThrow("bad identity name 'no spaces'")
  })

  it('checks a token for uid 65534 by the router: EACCES on a 0600 root file, its new files its own', async () => {
    const { token } = await createToken({ home, name: 'nobody', uid: 65534, gid: 65534, identity: 'guest' })
    const url = await serveBeyondLoopback()
    const auth = { authorization: `Bearer ${token}` }
    const secret = (await (await post(url, '{ node(path: "/scratch/secret") { ... on File { text } } }', auth)).json()) as any
    expect(secret.errors[0]).toMatchObject({ message: "EACCES: permission denied, open '/scratch/secret'", extensions: { code: 'EACCES' } })
    expect(await (await post(url, '{ node(path: "/scratch/public") { ... on File { text } } }', auth)).json()).toEqual({ data: { node: { text: 'for all' } } })
    const made = (await (await post(url, 'mutation { writeFile(path: "/scratch/guest.txt", text: "hi") { uid gid } }', auth)).json()) as any
    expect(made).toEqual({ data: { writeFile: { uid: 65534, gid: 65534 } } })
    const chmod = (await (await post(url, 'mutation { chmod(path: "/scratch/secret", mode: 420) { mode } }', auth)).json()) as any
    expect(chmod.errors[0].extensions.code).toBe('EPERM')
  })

  it('checks a token given over graphql-ws as the same caller', async () => {
    const { token } = await createToken({ home, name: 'nobody', uid: 65534, gid: 65534 })
    const url = await serveBeyondLoopback()
    const client = createClient({ url: url.replace('http:', 'ws:'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${token}` } })
    try {
      const result = await new Promise<any>((resolve, reject) =>
        client.subscribe({ query: '{ node(path: "/scratch/secret") { ... on File { text } } }' }, { next: resolve, error: reject, complete: () => undefined }),
      )
      expect(result.errors[0].extensions.code).toBe('EACCES')
    } finally {
      await client.dispose()
    }
  })

  it('runs a token stored without a uid, and loopback without a token, as the server\'s own user', async () => {
    const token = 'facet_legacy-token-issued-before-uids-were-kept-0000'
    await writeFile(join(home, 'tokens.json'), JSON.stringify({ tokens: [{ name: 'old', sha256: hashToken(token), createdAt: new Date().toISOString() }] }))
    const url = await serveBeyondLoopback()
    const legacy = (await (await post(url, '{ node(path: "/scratch/secret") { ... on File { text } } }', { authorization: `Bearer ${token}` })).json()) as any
    expect(legacy).toEqual({ data: { node: { text: 'root only' } } })

    const local = await serveGraphQL(vfs, { port: 0 })
    servers.push(local)
    const made = (await (await post(local.url, 'mutation { writeFile(path: "/scratch/local.txt", text: "x") { uid gid } }')).json()) as any
    expect(made).toEqual({ data: { writeFile: { uid: process.getuid!(), gid: process.getgid!() } } })
  })
})
