/**
 * What a mount (a view plugin, typically) adds to the GraphQL schema beside the generic tree.
 *
 * `typeDefs` is SDL that may declare its own types and extend the root types;
 * `resolvers` is a graphql-tools resolver map for them. Resolvers receive the
 * request's `GraphQLContext` (`src/graphql`) as their third argument, so they can reach the tree
 * through `context.vfs` (mutations should, so that views validate them as they do a
 * FUSE write), or their own data source through the view's closure.
 *
 * Name fields after the view (`users`, `kanbanCards`) so two views do not collide; a
 * contribution that does not merge (a name clash, bad SDL) is left out and logged,
 * and the rest of the schema is served.
 *
 * ```ts
 * const view: View = {
 *   name: 'users',
 *   root: dir({ ... }),
 *   graphql: {
 *     typeDefs: 'type User { name: String! email: String! }  extend type Query { users: [User!]! }',
 *     resolvers: { Query: { users: () => store.list() } },
 *   },
 * }
 * ```
 */
export interface GraphQLContribution {
  /** SDL: new types, and `extend type Query` / `Mutation` / `Subscription` with fields. */
  readonly typeDefs: string
  /** Resolvers for the fields and types of `typeDefs`, in graphql-tools' resolver-map form. */
  readonly resolvers: object
}
