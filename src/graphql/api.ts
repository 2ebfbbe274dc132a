import type { GraphQLSchema } from 'graphql'
import { createSchema, createYoga, type GraphiQLOptions, type Plugin, type YogaServerInstance } from 'graphql-yoga'
import type { Logger } from '../vfs/log.ts'
import type { CallerContext, MountInfo, Vfs } from '../vfs/vfs.ts'
import type { GraphQLContribution } from './contribution.ts'
import { createMaskError, isGraphQLErrorLike, isVfsErrorLike } from './errors.ts'
import { useJit } from './jit.ts'
import { depthLimitRule, resolveLimits, useCostLimit, type GraphQLLimits } from './limits.ts'
import { treeResolvers, treeTypeDefs } from './schema.ts'
import type { TokenVerifier } from './tokens.ts'
import type { GraphQLContext } from './tree.ts'

/** Who may use the API: bearer tokens, and the `Host` header values accepted. */
export interface AccessPolicy {
  /** When set, every request but the GraphiQL page needs `Authorization: Bearer <token>` (else 401). */
  tokens?: TokenVerifier | undefined
  /** When set, requests whose `Host` header is not in it are refused with 403 (DNS-rebinding guard on loopback). */
  allowedHosts?: ReadonlySet<string> | undefined
}

/** Options for {@link createGraphQLApi}. */
export interface GraphQLApiOptions {
  /** Depth, page-size and byte limits. */
  limits?: GraphQLLimits
  /** The URL path of the API and of GraphiQL. @default '/graphql' */
  endpoint?: string
  /** Serve GraphiQL (from the package, no CDN) to a browser GETting the endpoint. @default true */
  graphiql?: boolean
  /** Tokens and hosts; `serveGraphQL` sets it. @default open to any caller */
  access?: AccessPolicy
  /** Schema contributions beside those of the mounts (`mount.graphql`). @default none */
  contributions?: readonly GraphQLContribution[]
  /** Cross-origin access for browsers, as yoga's `cors` option. @default false (same origin only) */
  cors?: Parameters<typeof createYoga>[0] extends infer O ? (O extends { cors?: infer C } ? C : never) : never
  /** Run queries and mutations as code compiled by graphql-jit. @default true */
  jit?: boolean
  /** Who the tree sees as the caller of every operation. @default the process's uid and gid */
  caller?: CallerContext
}

/** The yoga instance {@link createGraphQLApi} returns: call `api.fetch(url, init)` in-process or mount it on a Node server. */
export type GraphQLApi = YogaServerInstance<Record<string, unknown>, GraphQLContext>

const JSON_TYPES = new Set(['application/json', 'application/graphql-response+json', 'application/graphql'])

const DEFAULT_QUERY = `# FacetFS: the tree over GraphQL. Press the run button.
query Root {
  mounts { path name }
  node(path: "/") {
    ... on Directory {
      entries(first: 20) {
        nodes { name kind size mtime }
      }
    }
  }
}
`

/**
 * Makes the GraphQL API over `vfs`: a graphql-yoga instance serving the generic tree
 * (`node`, `find`, `mounts`, mutations, `changes`) plus each mount's typed
 * contribution. Every read and write goes through the VFS, so views validate a
 * mutation exactly as they do a FUSE write. The schema follows the mount table: a
 * mount added or replaced later brings its contribution with it.
 */
export function createGraphQLApi(vfs: Vfs, options: GraphQLApiOptions = {}): GraphQLApi {
  const limits = resolveLimits(options.limits)
  const logger = vfs.logger
  const schemas = schemaFollower(vfs, options.contributions ?? [], logger)
  const caller = options.caller
  let graphiqlHtml: Promise<string> | undefined
  const graphiql: GraphiQLOptions = { title: 'FacetFS GraphQL', defaultQuery: DEFAULT_QUERY }
  if (options.access?.tokens) graphiql.headers = JSON.stringify({ Authorization: 'Bearer <token from facet token create>' })

  return createYoga<Record<string, unknown>, GraphQLContext>({
    graphqlEndpoint: options.endpoint ?? '/graphql',
    landingPage: false,
    multipart: false,
    cors: options.cors ?? false,
    logging: yogaLogger(logger),
    graphiql: options.graphiql === false ? false : graphiql,
    renderGraphiQL: opts =>
      (graphiqlHtml ??= import('@graphql-yoga/render-graphiql').then(m => m.renderGraphiQL(opts))),
    maskedErrors: { maskError: createMaskError() },
    context: (): GraphQLContext => {
      let mounts: MountInfo[] | undefined
      return { vfs, caller, limits, mounts: () => (mounts ??= vfs.mounts()), bytesRead: 0 }
    },
    plugins: [
      guard(options.access ?? {}),
      useFollowedSchema(schemas),
      useDepthLimit(limits.maxDepth),
      useCostLimit(limits),
      ...(options.jit === false ? [] : [useJit()]),
    ],
  })
}

/** Routes yoga's log lines to the VFS logger; a VfsError sent to a client is routine, so it logs at debug. */
function yogaLogger(logger: Logger) {
  const log = (level: 'debug' | 'info' | 'warn' | 'error') => (...args: unknown[]) => {
    const err = args.find(a => a instanceof Error)
    if (!err) return logger[level]({ args }, 'graphql')
    const original = isGraphQLErrorLike(err) ? err.originalError : undefined
    if (isVfsErrorLike(original)) logger.debug({ err: original }, 'graphql: a VfsError sent to the client')
    else logger[level]({ err: original ?? err }, 'graphql: unexpected error, masked for the client')
  }
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
}

/** Sets the current schema on every request, HTTP or WebSocket. */
function useFollowedSchema(current: () => GraphQLSchema): Plugin {
  return {
    onEnveloped({ setSchema }) {
      setSchema(current())
    },
  }
}

function useDepthLimit(max: number): Plugin {
  const rule = depthLimitRule(max)
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(rule)
    },
  }
}

/**
 * The schema of the tree merged with the contributions of the current mounts, rebuilt
 * only when the set of contributions changes. A contribution that does not merge is
 * logged and left out.
 */
function schemaFollower(vfs: Vfs, extra: readonly GraphQLContribution[], logger: Logger): () => GraphQLSchema {
  let key: GraphQLContribution[] = []
  let schema: GraphQLSchema | undefined
  const build = (list: readonly GraphQLContribution[]) =>
    createSchema<GraphQLContext>({
      typeDefs: [treeTypeDefs, ...list.map(c => c.typeDefs)],
      resolvers: [treeResolvers, ...list.map(c => c.resolvers)] as never,
    })
  return () => {
    const wanted = [...extra]
    for (const { mount } of vfs.mountObjects()) if (mount.graphql) wanted.push(mount.graphql)
    if (schema && wanted.length === key.length && wanted.every((c, i) => c === key[i])) return schema
    const accepted: GraphQLContribution[] = []
    for (const c of wanted) {
      try {
        build([...accepted, c])
        accepted.push(c)
      } catch (err) {
        const owner = vfs.mountObjects().find(m => m.mount.graphql === c)?.path ?? 'options.contributions'
        logger.error({ err, mount: owner }, 'a GraphQL contribution does not merge into the schema; left out')
      }
    }
    schema = build(accepted)
    key = wanted
    return schema
  }
}

/** A refusal before any GraphQL runs. */
export interface Refusal {
  status: 401 | 403 | 415
  code: string
  message: string
}

/** Reads the bearer token from an `Authorization` header value. */
export function bearerToken(header: string | null | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
  return m?.[1]
}

/**
 * Checks a request against `policy` (tokens, accepted hosts) and refuses POST bodies
 * a browser could send cross-site without a preflight (forms, plain text). Gives
 * `undefined` when the request may proceed; a promise only when a token must be checked.
 */
export function checkRequest(
  policy: AccessPolicy,
  req: { method: string; header(name: string): string | null | undefined },
): Refusal | undefined | Promise<Refusal | undefined> {
  if (policy.allowedHosts && !policy.allowedHosts.has((req.header('host') ?? '').toLowerCase())) {
    return { status: 403, code: 'FORBIDDEN_HOST', message: 'this server answers only to its own loopback host names' }
  }
  if (req.method === 'POST') {
    const type = (req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
    if (!JSON_TYPES.has(type)) {
      return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'POST a JSON body (Content-Type: application/json)' }
    }
  }
  if (!policy.tokens) return undefined
  const unauthenticated: Refusal = {
    status: 401,
    code: 'UNAUTHENTICATED',
    message: 'a valid bearer token is required (Authorization: Bearer <token>; see facet token create)',
  }
  const token = bearerToken(req.header('authorization'))
  if (!token) return unauthenticated
  return policy.tokens.verify(token).then(ok => (ok ? undefined : unauthenticated))
}

/** Answers refused requests before yoga parses them (after GraphiQL's page and the health check, which stay public). */
function guard(policy: AccessPolicy): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      const refuse = (refusal: Refusal | undefined): void => {
        if (!refusal) return
        const headers: Record<string, string> = { 'content-type': 'application/json' }
        if (refusal.status === 401) headers['www-authenticate'] = 'Bearer realm="facet"'
        const body = JSON.stringify({ errors: [{ message: refusal.message, extensions: { code: refusal.code } }] })
        endResponse(new fetchAPI.Response(body, { status: refusal.status, headers }))
      }
      const refusal = checkRequest(policy, { method: request.method, header: name => request.headers.get(name) })
      if (refusal instanceof Promise) return refusal.then(refuse)
      refuse(refusal)
    },
  }
}
