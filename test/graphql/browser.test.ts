import { spawn, type ChildProcess } from 'node:child_process'
import { access, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { serveGraphQL, type GraphQLServer } from '../../src/graphql/index.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { testVfs } from './helpers.ts'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser']

async function findChromium(): Promise<string | undefined> {
  for (const path of CHROMIUM) {
    try {
      await access(path)
      return path
    } catch {}
  }
  return undefined
}

const chromium = await findChromium()
const skip = chromium ? false : 'chromium is not installed (apt-get install -y chromium); the GraphiQL browser check needs it'
if (skip) console.warn(`skipping the GraphiQL browser test: ${skip}`)

/** A minimal Chrome DevTools Protocol session over one page's WebSocket. */
class Cdp {
  private id = 0
  private readonly pending = new Map<number, { resolve(v: any): void; reject(e: Error): void }>()
  private readonly listeners: Array<(method: string, params: any) => void> = []
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', data => {
      const msg = JSON.parse(String(data))
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id)
        this.pending.delete(msg.id)
        if (msg.error) p?.reject(new Error(msg.error.message))
        else p?.resolve(msg.result)
      } else {
        for (const l of this.listeners) l(msg.method, msg.params)
      }
    })
  }

  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url)
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)))
    return new Cdp(ws)
  }

  send(method: string, params: object = {}): Promise<any> {
    const id = ++this.id
    this.ws.send(JSON.stringify({ id, method, params }))
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }))
  }

  on(listener: (method: string, params: any) => void): void {
    this.listeners.push(listener)
  }

  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })
    return r.result.value as T
  }

  close(): void {
    this.ws.close()
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 100))
  }
}

describe.skipIf(skip)('GraphiQL in headless chromium', () => {
  let vfs: Vfs
  let server: GraphQLServer
  let browser: ChildProcess | undefined
  let profile: string

  beforeAll(async () => {
    ;({ vfs } = testVfs())
    server = await serveGraphQL(vfs, { port: 0 })
    profile = await mkdtemp(join(tmpdir(), 'facet-chromium-'))
  })
  afterAll(async () => {
    if (browser?.pid !== undefined && browser.exitCode === null && browser.signalCode === null) {
      const exited = new Promise(resolve => browser!.once('exit', resolve))
      browser.kill('SIGTERM')
      await Promise.race([exited, new Promise(r => setTimeout(r, 3000))])
      if (browser.exitCode === null && browser.signalCode === null) {
        browser.kill('SIGKILL')
        await exited
      }
    }
    await server?.close()
    await vfs?.close()
    // chromium's helper processes (crash handler, renderers) may still be writing the profile for a moment
    await rm(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 })
  })

  it('loads GraphiQL from the server alone and runs a query', async () => {
    browser = spawn(
      chromium!,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-dev-shm-usage',
        `--user-data-dir=${profile}`,
        '--remote-debugging-port=0',
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let stderr = ''
    const devtools = await new Promise<string>((resolve, reject) => {
      browser!.stderr!.setEncoding('utf8').on('data', (d: string) => {
        stderr += d
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr)
        if (m) resolve(m[1]!)
      })
      browser!.once('exit', code => reject(new Error(`chromium exited with ${code}: ${stderr}`)))
      setTimeout(() => reject(new Error(`chromium did not start: ${stderr}`)), 20_000)
    })
    const http = devtools.replace(/^ws:\/\/([^/]+)\/.*$/, 'http://$1')
    const targets = (await (await fetch(`${http}/json/list`)).json()) as Array<{ type: string; webSocketDebuggerUrl: string }>
    const page = await Cdp.connect(targets.find(t => t.type === 'page')!.webSocketDebuggerUrl)
    try {
      const requested: string[] = []
      page.on((method, params) => {
        if (method === 'Network.requestWillBeSent') requested.push(params.request.url)
      })
      await page.send('Network.enable')
      await page.send('Page.enable')
      await page.send('Page.navigate', { url: server.url })
      await until('the GraphiQL execute button', async () => ((await page.evaluate<boolean>(`!!document.querySelector('.graphiql-execute-button')`)) ? true : undefined))
      expect(await page.evaluate<string>('document.title')).toBe('FacetFS GraphQL')
      await page.evaluate(`document.querySelector('.graphiql-execute-button').click()`)
      const response = await until('a query result in the response pane', async () => {
        const raw = await page.evaluate<string>(`document.querySelector('.graphiql-response')?.innerText ?? ''`)
        const text = raw.replace(/\s+/g, ' ')
        return text.includes('"mounts"') && text.includes('scratch') ? text : undefined
      })
      expect(response).toContain('"path": "/hello"')
      expect(response).toContain('"name": "users"')
      const origin = new URL(server.url).origin
      const external = requested.filter(u => !u.startsWith(origin) && !/^(data|blob|about|chrome|devtools):/.test(u))
      expect(external).toEqual([])
      expect(requested.filter(u => u.startsWith(origin)).length).toBeGreaterThanOrEqual(2)
    } finally {
      page.close()
    }
  }, 60_000)
})
