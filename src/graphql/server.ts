import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { GraphQLError, type ExecutionArgs } from 'graphql'
import { useServer } from 'graphql-ws/use/ws'
import { WebSocketServer, type WebSocket } from 'ws'
import type { Vfs } from '../vfs/vfs.ts'
import { admitRequest, credentialToken, type AccessPolicy, type Auth } from './access.ts'
import { createGraphQLApi, type ConnectionContext, type GraphQLApi, type GraphQLApiOptions } from './api.ts'
import { createRevocationWatch } from './revocation.ts'
import { callerOf, fileTokens, staticTokens, type StaticToken, type TokenVerifier } from './tokens.ts'

/** Options for {@link serveGraphQL}. */
export interface ServeGraphQLOptions extends Omit<GraphQLApiOptions, 'access'> {
  /** The address to listen on. Anything but a loopback address needs tokens. @default '127.0.0.1' */
  host?: string
  /** The TCP port; 0 picks a free one. @default 4000 */
  port?: number
  /**
   * Bearer tokens the server accepts: a verifier (e.g. `fileTokens()`), or tokens in
   * clear. When set, every request needs one, on loopback too (GraphiQL's page and any
   * GET included), and runs as the uid, gid and identity the token maps to.
   * @default none on loopback; beyond it, the tokens of `facet token create` (`fileTokens()`)
   */
  tokens?: TokenVerifier | readonly (string | StaticToken)[]
  /** How often open WebSockets and subscriptions check that their token is still valid; a revoked one is closed. @default 250 (ms) */
  revocationCheckMs?: number
}

/** A listening GraphQL server. */
export interface GraphQLServer {
  /** The endpoint, e.g. `http://127.0.0.1:4000/graphql`; GraphiQL is at the same URL in a browser. */
  readonly url: string
  /** The WebSocket endpoint for graphql-ws, e.g. `ws://127.0.0.1:4000/graphql`. */
  readonly wsUrl: string
  readonly port: number
  /** The yoga instance behind it. */
  readonly api: GraphQLApi
  /** Stops listening and closes every connection, subscriptions included. */
  close(): Promise<void>
}

/** True for an address that only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1'
}

/**
 * Serves the GraphQL API of `vfs` over HTTP with node:http: queries and mutations by
 * POST (or GET for queries), subscriptions over SSE and over WebSocket (graphql-ws,
 * same URL), GraphiQL for a browser.
 *
 * It binds 127.0.0.1 by default and then answers only requests whose `Host` is a
 * loopback name (a DNS-rebinding guard). Any other address needs bearer tokens: it
 * refuses to start without any, and answers 401 to a request without a valid
 * `Authorization: Bearer` header, GraphiQL's page included (a browser is asked for the
 * token by HTTP Basic); WebSocket clients may send it as the `authorization`
 * connection parameter instead. Each request runs as the caller its token maps to. A
 * token revoked while a WebSocket or an SSE subscription is open ends it within
 * `revocationCheckMs`, and the socket takes no operation after that.
 */
export async function serveGraphQL(vfs: Vfs, options: ServeGraphQLOptions = {}): Promise<GraphQLServer> {
  const host = options.host ?? '127.0.0.1'
  const loopback = isLoopback(host)
  let tokens: TokenVerifier | undefined =
    options.tokens === undefined ? undefined : Array.isArray(options.tokens) ? staticTokens(options.tokens) : (options.tokens as TokenVerifier)
  if (!loopback) {
    tokens ??= fileTokens()
    if ((await tokens.count()) === 0) {
      throw new Error(`refusing to serve GraphQL on ${host}, beyond loopback, without bearer tokens: create one with \`facet token create\``)
    }
  }

  const server = createServer()
  const authorizedRequests = new WeakMap<IncomingMessage, Auth>()
  const connections = new WeakMap<object, Auth>()
  const sockets = new WebSocketServer({ noServer: true })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 4000, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const urlHost = host.includes(':') ? `[${host}]` : host
  const revocations = tokens ? createRevocationWatch(tokens, { intervalMs: options.revocationCheckMs, logger: vfs.logger }) : undefined
  const access: AccessPolicy = { tokens, revocations }
  if (!tokens) {
    access.allowedHosts = new Set(['127.0.0.1', 'localhost', '[::1]', urlHost.toLowerCase()].map(h => `${h}:${port}`))
  }
  const { access: _ignored, tokens: _tokens, revocationCheckMs: _ms, host: _host, port: _port, ...apiOptions } = options as ServeGraphQLOptions &
    GraphQLApiOptions
  const api = createGraphQLApi(vfs, { ...apiOptions, access })
  const endpoint = options.endpoint ?? '/graphql'
  server.on('request', api)

  const wsServer = useServer<Record<string, unknown>>(
    {
      onConnect: async ctx => {
        if (!tokens || !revocations) return true
        let auth = authorizedRequests.get(ctx.extra.request)
        if (!auth) {
          const param = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization
          const credential = typeof param === 'string' ? (credentialToken(param) ?? { token: param, scheme: 'bearer' as const }) : undefined
          const who = credential && (await tokens.identify(credential.token))
          if (!credential || !who) return false
          auth = { token: credential.token, caller: callerOf(who), scheme: credential.scheme }
        }
        const socket: WebSocket = ctx.extra.socket
        const unwatch = revocations.watch(auth.token, () => socket.close(4403, 'Forbidden: the token was revoked'))
        socket.once('close', unwatch)
        connections.set(ctx, auth)
        return true
      },
      onSubscribe: async (ctx, _id, payload) => {
        const auth = connections.get(ctx)
        if (tokens && revocations && !(auth && (await tokens.identify(auth.token)))) {
          // the watch closes the socket; this operation is refused already, as a result (not run)
          void revocations.check()
          const refused = { errors: [new GraphQLError('the token of this connection was revoked', { extensions: { code: 'UNAUTHENTICATED' } })] }
          const { schema, parse } = api.getEnveloped()
          return { schema, document: parse('{ __typename }'), rootValue: { execute: () => refused } }
        }
        const initial: ConnectionContext = { facetAuth: auth }
        const { schema, execute, subscribe, contextFactory, parse, validate } = api.getEnveloped({
          ...ctx,
          ...initial,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
        })
        const document = parse(payload.query)
        const errors = validate(schema, document)
        if (errors.length > 0) return errors
        const args: ExecutionArgs = {
          schema,
          operationName: payload.operationName ?? null,
          document,
          variableValues: payload.variables ?? null,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        }
        return args
      },
      execute: args => (args.rootValue as { execute: (a: ExecutionArgs) => never }).execute(args),
      subscribe: args => (args.rootValue as { subscribe: (a: ExecutionArgs) => never }).subscribe(args),
    },
    sockets,
  )

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void upgrade(req, socket, head)
  })
  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    }
    const path = (req.url ?? '').split('?')[0]
    if (path !== endpoint) return refuse(404, 'Not Found')
    const origin = req.headers.origin
    if (origin !== undefined) {
      let originHost = ''
      try {
        originHost = new URL(origin).host.toLowerCase()
      } catch {}
      if (originHost !== (req.headers.host ?? '').toLowerCase()) return refuse(403, 'Forbidden')
    }
    const header = (name: string) => {
      const v = req.headers[name]
      return Array.isArray(v) ? v[0] : v
    }
    const hasAuthHeader = header('authorization') !== undefined
    const { refusal, auth } = await admitRequest(hasAuthHeader ? access : { ...access, tokens: undefined }, { method: 'GET', header })
    if (refusal) return refuse(refusal.status, refusal.status === 401 ? 'Unauthorized' : 'Forbidden')
    sockets.handleUpgrade(req, socket, head, ws => {
      if (auth) authorizedRequests.set(req, auth)
      sockets.emit('connection', ws, req)
    })
  }

  let closing: Promise<void> | undefined
  return {
    url: `http://${urlHost}:${port}${endpoint}`,
    wsUrl: `ws://${urlHost}:${port}${endpoint}`,
    port,
    api,
    close: () =>
      (closing ??= (async () => {
        revocations?.close()
        await wsServer.dispose()
        for (const client of sockets.clients) client.terminate()
        await new Promise<void>(resolve => sockets.close(() => resolve()))
        await new Promise<void>(resolve => {
          server.close(() => resolve())
          server.closeAllConnections()
        })
      })()),
  }
}
