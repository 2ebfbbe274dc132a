import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql'

/** Limits that keep one request from costing the server too much. */
export interface GraphQLLimits {
  /** The deepest selection nesting a query may have; introspection fields do not count. @default 12 */
  maxDepth?: number
  /** The largest `first` of a connection (`entries`, `find`). @default 1000 */
  maxPageSize?: number
  /** The most bytes one `text`, `base64` or `json` field returns; larger reads fail with `EFBIG`. @default 1 MiB */
  maxFieldBytes?: number
  /** The most content bytes all `text`, `base64` and `json` fields of one request return together (EFBIG beyond). @default 16 MiB */
  maxRequestBytes?: number
  /** The most entries one `find` page visits before it returns what it has, with `hasNextPage`. @default 20000 */
  maxFindScan?: number
}

/** {@link GraphQLLimits} with every default filled in. */
export type ResolvedLimits = Required<GraphQLLimits>

/** Fills in the defaults of {@link GraphQLLimits}. */
export function resolveLimits(limits: GraphQLLimits = {}): ResolvedLimits {
  return {
    maxDepth: limits.maxDepth ?? 12,
    maxPageSize: limits.maxPageSize ?? 1000,
    maxFieldBytes: limits.maxFieldBytes ?? 1024 * 1024,
    maxRequestBytes: limits.maxRequestBytes ?? 16 * 1024 * 1024,
    maxFindScan: limits.maxFindScan ?? 20_000,
  }
}

/**
 * A validation rule refusing operations nested deeper than `max` fields, with
 * `extensions.code` `'DEPTH_LIMIT'`. Fragments count where they are spread;
 * `__schema` and `__type` (GraphiQL's introspection) are not counted.
 */
export function depthLimitRule(max: number): ValidationRule {
  const depthLimit = (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>()
    for (const def of context.getDocument().definitions) {
      if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def)
    }
    const depthOf = (set: SelectionSetNode, seen: Set<string>): number => {
      let deepest = 0
      for (const sel of set.selections) {
        let d = 0
        if (sel.kind === Kind.FIELD) {
          if (sel.name.value.startsWith('__')) continue
          d = sel.selectionSet ? 1 + depthOf(sel.selectionSet, seen) : 1
        } else if (sel.kind === Kind.INLINE_FRAGMENT) {
          d = depthOf(sel.selectionSet, seen)
        } else {
          const name = sel.name.value
          const frag = fragments.get(name)
          if (!frag || seen.has(name)) continue
          seen.add(name)
          d = depthOf(frag.selectionSet, seen)
          seen.delete(name)
        }
        if (d > deepest) deepest = d
        if (deepest > max) return deepest
      }
      return deepest
    }
    return {
      OperationDefinition(op) {
        const depth = depthOf(op.selectionSet, new Set())
        if (depth > max) {
          context.reportError(
            new GraphQLError(`query depth ${depth} exceeds the limit of ${max}`, {
              nodes: [op],
              extensions: { code: 'DEPTH_LIMIT' },
            }),
          )
        }
      },
    }
  }
  return depthLimit
}
