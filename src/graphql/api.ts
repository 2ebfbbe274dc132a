import type { GraphQLSchema } from 'graphql'
import { createSchema, createYoga, type GraphiQLOptions, type Plugin, type YogaServerInstance } from 'graphql-yoga'
import type { Logger } from '../vfs/log.ts'
import type { CallerContext, MountInfo, Vfs } from '../vfs/vfs.ts'
import { accessGuard, admitRequest, whenAdmitted, type AccessPolicy, type Auth } from './access.ts'
import type { GraphQLContribution } from './contribution.ts'
import { createMaskError, isGraphQLErrorLike, isVfsErrorLike } from './errors.ts'
import { useJit } from './jit.ts'
import { depthLimitRule, resolveLimits, useCostLimit, type GraphQLLimits } from './limits.ts'
import { createRevocationWatch } from './revocation.ts'
import { treeResolvers, treeTypeDefs } from './schema.ts'
import type { GraphQLContext } from './tree.ts'

/** Options for {@link createGraphQLApi}. */
export interface GraphQLApiOptions {
  /** Depth, page-size and byte limits. */
  limits?: GraphQLLimits
  /** The URL path of the API and of GraphiQL. @default '/graphql' */
  endpoint?: string
  /** Serve GraphiQL (from the package, no CDN) to a browser GETting the endpoint. @default true */
  graphiql?: boolean
  /** Tokens, hosts and revocation; `serveGraphQL` sets it. @default open to any caller */
  access?: AccessPolicy
  /** Schema contributions beside those of the mounts (`mount.graphql`). @default none */
  contributions?: readonly GraphQLContribution[]
  /** Cross-origin access for browsers, as yoga's `cors` option. @default false (same origin only) */
  cors?: Parameters<typeof createYoga>[0] extends infer O ? (O extends { cors?: infer C } ? C : never) : never
  /** Run queries and mutations as code compiled by graphql-jit. @default true */
  jit?: boolean
  /** Who the tree sees as the caller of every operation without a token; a token's uid, gid and identity replace it. @default the process's uid and gid */
  caller?: CallerContext
}

/** What a front door other than HTTP (the WebSocket server) puts in the initial context: the token of the connection. */
export interface ConnectionContext {
  facetAuth?: Auth | undefined
}

/** The yoga instance {@link createGraphQLApi} returns: call `api.fetch(url, init)` in-process or mount it on a Node server. */
export type GraphQLApi = YogaServerInstance<Record<string, unknown>, GraphQLContext>

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
  const policy = options.access ?? {}
  const revocations = policy.revocations ?? (policy.tokens ? createRevocationWatch(policy.tokens, { logger }) : undefined)
  const admitted = new WeakMap<Request, Auth>()
  let graphiqlHtml: Promise<string> | undefined
  const graphiql: GraphiQLOptions = { title: 'FacetFS GraphQL', defaultQuery: DEFAULT_QUERY }
  // a browser that sent the token by HTTP Basic sends it again by itself; a placeholder header would replace it
  const graphiqlWithHeader: GraphiQLOptions = { ...graphiql, headers: JSON.stringify({ Authorization: 'Bearer <token from facet token create>' }) }
  const graphiqlFor = (request: Request) => {
    if (!policy.tokens && !policy.allowedHosts) return graphiql
    // refused here, the page is not served and the access guard answers the request
    return whenAdmitted(admitRequest(policy, { method: request.method, header: name => request.headers.get(name) }), ({ refusal, auth }) =>
      refusal ? false : auth?.scheme === 'bearer' ? graphiqlWithHeader : graphiql,
    )
  }

  return createYoga<Record<string, unknown>, GraphQLContext>({
    graphqlEndpoint: options.endpoint ?? '/graphql',
    landingPage: false,
    multipart: false,
    cors: options.cors ?? false,
    logging: yogaLogger(logger),
    graphiql: options.graphiql === false ? false : graphiqlFor,
    renderGraphiQL: opts =>
      (graphiqlHtml ??= import('@graphql-yoga/render-graphiql').then(m => m.renderGraphiQL(opts))),
    maskedErrors: { maskError: createMaskError() },
    context: (initial: { request?: Request } & ConnectionContext): GraphQLContext => {
      let mounts: MountInfo[] | undefined
      const auth = initial.facetAuth ?? (initial.request && admitted.get(initial.request))
      return {
        vfs,
        caller: auth?.caller ? { ...caller, ...auth.caller } : caller,
        limits,
        mounts: () => (mounts ??= vfs.mounts()),
        bytesRead: 0,
        token: auth?.token,
        revocations,
      }
    },
    plugins: [
      accessGuard(policy, admitted),
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
