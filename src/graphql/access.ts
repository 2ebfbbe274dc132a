import type { Plugin } from 'graphql-yoga'
import type { CallerContext } from '../vfs/vfs.ts'
import type { RevocationWatch } from './revocation.ts'
import { callerOf, type TokenVerifier } from './tokens.ts'

/** Who may use the API: bearer tokens, and the `Host` header values accepted. */
export interface AccessPolicy {
  /**
   * When set, every request needs a valid token (else 401), the GraphiQL page included:
   * `Authorization: Bearer <token>`, or HTTP Basic with the token as the password (so a
   * browser can ask for it). Each request runs as the caller the token maps to.
   */
  tokens?: TokenVerifier | undefined
  /** When set, requests whose `Host` header is not in it are refused with 403 (DNS-rebinding guard on loopback). */
  allowedHosts?: ReadonlySet<string> | undefined
  /** Ends the subscriptions of a token once it is revoked. @default one made from `tokens`, checking every 250 ms */
  revocations?: RevocationWatch | undefined
}

/** A refusal before any GraphQL runs. */
export interface Refusal {
  status: 401 | 403 | 415
  code: string
  message: string
}

/** A request admitted with a token: the token, and the caller the router checks its calls as. */
export interface Auth {
  readonly token: string
  /** `undefined` when the token names no user: the API's own caller applies. */
  readonly caller: CallerContext | undefined
  /** How the token came: a bearer header, or HTTP Basic (a browser). */
  readonly scheme: 'bearer' | 'basic'
}

/** The outcome of {@link admitRequest}: refused, or admitted (with the token's caller when tokens are required). */
export type Admission = { refusal: Refusal; auth?: undefined } | { refusal?: undefined; auth: Auth | undefined }

const JSON_TYPES = new Set(['application/json', 'application/graphql-response+json', 'application/graphql'])

/** Reads the bearer token from an `Authorization` header value. */
export function bearerToken(header: string | null | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
  return m?.[1]
}

/**
 * Reads a token from an `Authorization` header value: `Bearer <token>`, or `Basic`
 * credentials whose password is the token (the user name is ignored; with an empty
 * password, the user name is taken, as `curl -u <token>:` sends it).
 */
export function credentialToken(header: string | null | undefined): { token: string; scheme: Auth['scheme'] } | undefined {
  const bearer = bearerToken(header)
  if (bearer) return { token: bearer, scheme: 'bearer' }
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '')
  if (!m) return undefined
  const text = Buffer.from(m[1]!, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  if (colon < 0) return undefined
  const token = text.slice(colon + 1) || text.slice(0, colon)
  return token ? { token, scheme: 'basic' } : undefined
}

const UNAUTHENTICATED: Refusal = {
  status: 401,
  code: 'UNAUTHENTICATED',
  message: 'a valid bearer token is required (Authorization: Bearer <token>; see facet token create)',
}

/**
 * Checks a request against `policy` (accepted hosts, tokens) and refuses POST bodies a
 * browser could send cross-site without a preflight (forms, plain text). Admitted with a
 * token, it gives the caller that token maps to. A promise only when a token must be checked.
 */
export function admitRequest(
  policy: AccessPolicy,
  req: { method: string; header(name: string): string | null | undefined },
): Admission | Promise<Admission> {
  if (policy.allowedHosts && !policy.allowedHosts.has((req.header('host') ?? '').toLowerCase())) {
    return { refusal: { status: 403, code: 'FORBIDDEN_HOST', message: 'this server answers only to its own loopback host names' } }
  }
  if (req.method === 'POST') {
    const type = (req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
    if (!JSON_TYPES.has(type)) {
      return { refusal: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'POST a JSON body (Content-Type: application/json)' } }
    }
  }
  if (!policy.tokens) return { auth: undefined }
  const credential = credentialToken(req.header('authorization'))
  if (!credential) return { refusal: UNAUTHENTICATED }
  return policy.tokens.identify(credential.token).then(who =>
    who ? { auth: { token: credential.token, caller: callerOf(who), scheme: credential.scheme } } : { refusal: UNAUTHENTICATED },
  )
}

/** Calls `then` on a value or a promise of it, staying synchronous for a value. */
export function whenAdmitted<T>(admission: Admission | Promise<Admission>, then: (a: Admission) => T): T | Promise<T> {
  return admission instanceof Promise ? admission.then(then) : then(admission)
}

/**
 * Answers refused requests before yoga parses them, and records the token's caller of
 * each admitted one in `admitted` for the context. The health check stays public (it
 * says only that the server is up); the GraphiQL page is gated by the same check
 * before this plugin runs (see `createGraphQLApi`).
 */
export function accessGuard(policy: AccessPolicy, admitted: WeakMap<Request, Auth>): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      return whenAdmitted(admitRequest(policy, { method: request.method, header: name => request.headers.get(name) }), ({ refusal, auth }) => {
        if (auth) admitted.set(request, auth)
        if (!refusal) return
        const headers = new fetchAPI.Headers({ 'content-type': 'application/json' })
        if (refusal.status === 401) {
          headers.append('www-authenticate', 'Bearer realm="facet"')
          // a browser opening GraphiQL asks for the token (as the password) when offered Basic
          if (request.method === 'GET' && request.headers.get('accept')?.includes('text/html')) {
            headers.append('www-authenticate', 'Basic realm="facet", charset="UTF-8"')
          }
        }
        const body = JSON.stringify({ errors: [{ message: refusal.message, extensions: { code: refusal.code } }] })
        endResponse(new fetchAPI.Response(body, { status: refusal.status, headers }))
      })
    },
  }
}
