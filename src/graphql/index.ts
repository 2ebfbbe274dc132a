export { createGraphQLApi } from './api.ts'
export type { ConnectionContext, GraphQLApi, GraphQLApiOptions } from './api.ts'
export { admitRequest, bearerToken, credentialToken } from './access.ts'
export type { AccessPolicy, Admission, Auth, Refusal } from './access.ts'
export { createRevocationWatch } from './revocation.ts'
export type { RevocationWatch, RevocationWatchOptions } from './revocation.ts'
export { serveGraphQL, isLoopback } from './server.ts'
export type { GraphQLServer, ServeGraphQLOptions } from './server.ts'
export type { GraphQLContribution } from './contribution.ts'
export type { GraphQLContext } from './tree.ts'
export { NodeRef } from './tree.ts'
export { resolveLimits, depthLimitRule, operationCost, useCostLimit } from './limits.ts'
export type { CostOptions, GraphQLLimits, ResolvedLimits } from './limits.ts'
export { treeTypeDefs, treeResolvers, JSONScalar } from './schema.ts'
export { isVfsErrorLike, vfsGraphQLError } from './errors.ts'
export { recordFormat, parseRecord, stringifyRecord } from './records.ts'
export type { RecordFormat } from './records.ts'
export {
  callerOf,
  createToken,
  facetHome,
  fileTokens,
  hashToken,
  readTokens,
  revokeToken,
  staticTokens,
  tokenFile,
} from './tokens.ts'
export type { CreateTokenOptions, StaticToken, TokenIdentity, TokenRecord, TokenVerifier } from './tokens.ts'
