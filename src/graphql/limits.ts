import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type DocumentNode,
  type ExecutionArgs,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql'
import type { Plugin } from 'graphql-yoga'

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
  /**
   * The most an operation may cost, reckoned before it runs; a costlier one is refused
   * whole with `extensions.code` `'COST_LIMIT'`. Each selected field counts 1 (an alias
   * is a field of its own), a list inside a page counts once per item of the page
   * (`first`, or its default), nested pages multiply, and fields named in `fieldCosts`
   * add their weight. A page of 1000 entries with 20 fields each costs about 21000; a
   * `find` of 1000 nodes listing up to 1000 entries of each about 2 million; 5000
   * aliases of `find` about 100 million.
   * @default 5000000
   */
  maxCost?: number
  /** Extra cost of fields that do more work than reading one value, by `Type.field`. @default { 'Query.find': maxFindScan } (one find may walk that many entries) */
  fieldCosts?: Readonly<Record<string, number>>
}

/** {@link GraphQLLimits} with every default filled in. */
export type ResolvedLimits = Required<GraphQLLimits>

/** Fills in the defaults of {@link GraphQLLimits}. */
export function resolveLimits(limits: GraphQLLimits = {}): ResolvedLimits {
  const maxFindScan = limits.maxFindScan ?? 20_000
  return {
    maxDepth: limits.maxDepth ?? 12,
    maxPageSize: limits.maxPageSize ?? 1000,
    maxFieldBytes: limits.maxFieldBytes ?? 1024 * 1024,
    maxRequestBytes: limits.maxRequestBytes ?? 16 * 1024 * 1024,
    maxFindScan,
    maxCost: limits.maxCost ?? 5_000_000,
    fieldCosts: limits.fieldCosts ?? { 'Query.find': maxFindScan },
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

/** The parts of a schema type the cost needs, read without `instanceof` (yoga and a caller may load two copies of graphql). */
interface TypeLike {
  readonly name?: string
  readonly ofType?: TypeLike
  getFields?(): Record<string, { readonly type: TypeLike; readonly args: ReadonlyArray<{ readonly name: string; readonly defaultValue?: unknown }> }>
}

const namedType = (t: TypeLike): TypeLike => (t.ofType ? namedType(t.ofType) : t)
const isList = (t: TypeLike): boolean => String(t).replace(/!$/, '').startsWith('[')

/** Options of {@link operationCost}. */
export interface CostOptions extends Pick<ResolvedLimits, 'maxPageSize' | 'fieldCosts'> {
  /** The operation to reckon; the only one of the document when absent. */
  operationName?: string | null | undefined
  /** The request's variables, for page sizes given by a variable. */
  variables?: Readonly<Record<string, unknown>> | null | undefined
  /**
   * Reckon what holds for any variables and any operation chosen: a page size given by
   * a variable counts 0, and the cheapest operation of the document counts. Validation
   * uses this, as its result is cached per document. @default false
   */
  lowerBound?: boolean
}

/**
 * What an operation of `document` costs under the rules of {@link GraphQLLimits.maxCost}:
 * page sizes come from literals, from the variables, or from the defaults of the
 * variable and of the argument, and count at most `maxPageSize` (a larger one fails on
 * its own). Fragments count where they are spread, reckoned once per fragment and page
 * size, so a fragment spread many times costs linear time to reckon; introspection
 * fields count nothing.
 */
export function operationCost(schema: GraphQLSchema, document: DocumentNode, options: CostOptions): number {
  const fragments = new Map<string, FragmentDefinitionNode>()
  const operations: OperationDefinitionNode[] = []
  for (const def of document.definitions) {
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def)
    else if (def.kind === Kind.OPERATION_DEFINITION) operations.push(def)
  }
  const memo = new Map<string, number>()
  const open = new Set<string>()
  const pageOf = (field: FieldNode, args: ReadonlyArray<{ name: string; defaultValue?: unknown }>, defaults: Map<string, unknown>): number | undefined => {
    const arg = args.find(a => a.name === 'first')
    if (!arg) return undefined
    let value: unknown = arg.defaultValue
    const given = field.arguments?.find(a => a.name.value === 'first')?.value
    if (given?.kind === Kind.INT || given?.kind === Kind.FLOAT) value = Number(given.value)
    else if (given?.kind === Kind.VARIABLE) {
      const name = given.name.value
      if (options.lowerBound) return 0
      const vars = options.variables
      value = vars && name in vars ? vars[name] : (defaults.get(name) ?? arg.defaultValue)
    } else if (given) value = undefined
    return typeof value === 'number' && value >= 0 ? Math.min(value, options.maxPageSize) : 1
  }
  const costOf = (set: SelectionSetNode, type: TypeLike | undefined, page: number | undefined, defaults: Map<string, unknown>): number => {
    let total = 0
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        const name = sel.name.value
        if (name.startsWith('__')) continue
        const def = type?.getFields?.()[name]
        if (!def) {
          total += 1
          continue
        }
        const own = pageOf(sel, def.args, defaults)
        const list = isList(def.type)
        // a page field that is not itself a list (a connection) hands its size to the lists below it
        const inner = sel.selectionSet ? costOf(sel.selectionSet, namedType(def.type), own !== undefined && !list ? own : undefined, defaults) : 0
        const cost = 1 + inner + (options.fieldCosts[`${type?.name}.${name}`] ?? 0)
        total += (list ? (own ?? page ?? 1) : 1) * cost
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        const cond = sel.typeCondition ? (schema.getType(sel.typeCondition.name.value) as TypeLike | undefined) : type
        total += costOf(sel.selectionSet, cond, page, defaults)
      } else {
        const name = sel.name.value
        const frag = fragments.get(name)
        const key = `${name}:${page}`
        if (!frag || open.has(key)) continue
        let cost = memo.get(key)
        if (cost === undefined) {
          open.add(key)
          cost = costOf(frag.selectionSet, schema.getType(frag.typeCondition.name.value) as TypeLike | undefined, page, defaults)
          open.delete(key)
          memo.set(key, cost)
        }
        total += cost
      }
    }
    return total
  }
  const costOfOperation = (op: OperationDefinitionNode): number => {
    const root = (op.operation === 'query' ? schema.getQueryType() : op.operation === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType()) as
      | TypeLike
      | null
      | undefined
    if (!root) return 0
    const defaults = new Map<string, unknown>()
    for (const v of op.variableDefinitions ?? []) {
      const d = v.defaultValue
      if (d && (d.kind === Kind.INT || d.kind === Kind.FLOAT)) defaults.set(v.variable.name.value, Number(d.value))
    }
    // fragment costs depend on the variables' defaults, which are per operation
    memo.clear()
    return costOf(op.selectionSet, root, undefined, defaults)
  }

  if (options.lowerBound) return operations.length === 0 ? 0 : Math.min(...operations.map(costOfOperation))
  const name = options.operationName
  const op = name ? operations.find(o => o.name?.value === name) : operations.length === 1 ? operations[0] : undefined
  return op ? costOfOperation(op) : 0
}

/** True when an operation of `document` declares a variable (its cost may then depend on the values). */
function declaresVariables(document: DocumentNode): boolean {
  return document.definitions.some(d => d.kind === Kind.OPERATION_DEFINITION && (d.variableDefinitions?.length ?? 0) > 0)
}

/**
 * Refuses an operation whose {@link operationCost} exceeds `limits.maxCost` before any
 * of it runs, over HTTP and WebSocket alike, with `extensions.code` `'COST_LIMIT'` and
 * the cost in `extensions.cost`. A document that costs too much whatever its variables
 * is refused before it is even validated (graphql's validation of many fragment
 * spreads can itself take long); the rest once the variables are known, before it runs.
 */
export function useCostLimit(limits: ResolvedLimits): Plugin {
  const tooCostly = (cost: number) =>
    new GraphQLError(`query cost ${cost} exceeds the limit of ${limits.maxCost}: ask for fewer fields or aliases, or smaller pages (first)`, {
      extensions: { code: 'COST_LIMIT', cost, limit: limits.maxCost },
    })
  // yoga hands the same parsed document to every request with the same text: the cost of an
  // operation that declares no variables is the same each time, and is reckoned once
  const fixed = new WeakMap<DocumentNode, Map<string | null | undefined, number>>()
  const atRun = (args: ExecutionArgs) => {
    const byName = fixed.get(args.document)
    let cost = byName?.get(args.operationName)
    if (cost === undefined) {
      cost = operationCost(args.schema, args.document, { ...limits, operationName: args.operationName, variables: args.variableValues })
      if (!declaresVariables(args.document)) {
        if (byName) byName.set(args.operationName, cost)
        else fixed.set(args.document, new Map([[args.operationName, cost]]))
      }
    }
    return cost > limits.maxCost ? { errors: [tooCostly(cost)] } : undefined
  }
  return {
    onValidate({ params, setResult }) {
      const cost = operationCost(params.schema, params.documentAST, { ...limits, lowerBound: true })
      if (cost > limits.maxCost) setResult([tooCostly(cost)])
    },
    onExecute({ args, setResultAndStopExecution }) {
      const r = atRun(args)
      if (r) setResultAndStopExecution(r)
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const r = atRun(args)
      if (r) setResultAndStopExecution(r)
    },
  }
}
