import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createGraphQLApi, type GraphQLApi } from '../../src/graphql/index.ts'
import type { Vfs } from '../../src/vfs/vfs.ts'
import { gql, testVfs } from './helpers.ts'

let vfs: Vfs
let api: GraphQLApi

beforeEach(() => {
  ;({ vfs } = testVfs())
  api = createGraphQLApi(vfs)
})
afterEach(async () => {
  await vfs.close()
})

const aliases = (n: number, field: string) => '{ ' + Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ') + ' }'
const scandirs = () => Object.values(vfs.opStats().mounts).reduce((n, m) => n + (m.ops.scandir ?? 0), 0)

describe('the cost limit', () => {
  it('refuses 5,000 aliases of find with COST_LIMIT before running any of them', async () => {
    const before = scandirs()
    const start = Date.now()
    const r = await gql(api, aliases(5000, 'find { nodes { path } }'))
    expect(Date.now() - start).toBeLessThan(2000)
    expect(r.data).toBeUndefined()
    expect(r.errors).toHaveLength(1)
    expect(r.errors![0]!.message).toMatch(/^query cost \d+ exceeds the limit of 5000000: ask for fewer fields or aliases, or smaller pages \(first\)$/)
    expect(r.errors![0]!.extensions).toMatchObject({ code: 'COST_LIMIT', limit: 5_000_000 })
    expect(r.errors![0]!.extensions!.cost).toBeGreaterThan(100_000_000)
    expect(scandirs()).toBe(before)
  })

  it('refuses a flood of small finds too: each find counts the entries it may walk', async () => {
    const r = await gql(api, aliases(300, 'find(first: 1) { nodes { path } }'))
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'COST_LIMIT' })
  })

  it('multiplies nested page sizes, given as literals or variables, and refuses a query whose pages multiply past the limit', async () => {
    const nested = /* GraphQL */ `
      query ($outer: Int, $inner: Int = 1000) {
        node(path: "/") {
          ... on Directory { entries(first: $outer) { nodes { ... on Directory { entries(first: $inner) { nodes { name ... on Directory { entries(first: $inner) { nodes { name } } } } } } } } }
        }
      }
    `
    const big = await api.fetch('http://facet/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: nested, variables: { outer: 1000 } }),
    })
    expect(((await big.json()) as any).errors[0].extensions.code).toBe('COST_LIMIT')
    const small = await api.fetch('http://facet/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: nested, variables: { outer: 10, inner: 10 } }),
    })
    const body = (await small.json()) as any
    expect(body.errors).toBeUndefined()
    expect(body.data.node.entries.nodes).toHaveLength(3)
  })

  it('reckons each run of a document with variables by its values, and a fixed document the same each time', async () => {
    const query = 'query ($n: Int) { node(path: "/") { ... on Directory { entries(first: $n) { nodes { name } } } } }'
    const strict = createGraphQLApi(vfs, { limits: { maxCost: 30 } })
    const run = async (variables: Record<string, unknown>) => {
      const res = await strict.fetch('http://facet/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) })
      return (await res.json()) as any
    }
    // the same text, so the same parsed document: the cheap run first must not let the costly one through
    expect((await run({ n: 2 })).errors).toBeUndefined()
    expect((await run({ n: 1000 })).errors?.[0]?.extensions).toMatchObject({ code: 'COST_LIMIT' })
    expect((await run({ n: 2 })).errors).toBeUndefined()
    const fixed = '{ mounts { path name } a: mounts { path } }'
    const tight = createGraphQLApi(vfs, { limits: { maxCost: 3 } })
    for (let i = 0; i < 3; i++) expect((await gql(tight, fixed)).errors?.[0]?.extensions).toMatchObject({ code: 'COST_LIMIT', cost: 5, limit: 3 })
  })

  it('reckons a fragment spread many times in linear time, and refuses what it expands to', async () => {
    const levels = 40
    const frags = Array.from({ length: levels }, (_, i) =>
      i === levels - 1 ? `fragment F${i} on Query { mounts { path } }` : `fragment F${i} on Query { ...F${i + 1} x${i}: mounts { path } ...F${i + 1} }`,
    )
    const start = Date.now()
    const r = await gql(api, `{ ...F0 } ${frags.join(' ')}`)
    expect(Date.now() - start).toBeLessThan(2000)
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'COST_LIMIT' })
  })

  it('takes its limit and field weights from the options', async () => {
    const strict = createGraphQLApi(vfs, { limits: { maxCost: 3 } })
    expect((await gql(strict, '{ mounts { path name } }')).data).toBeDefined()
    expect((await gql(strict, '{ mounts { path name } a: mounts { path } }')).errors?.[0]?.extensions).toMatchObject({ code: 'COST_LIMIT', cost: 5, limit: 3 })
    const cheapFind = createGraphQLApi(vfs, { limits: { fieldCosts: {} } })
    expect((await gql(cheapFind, aliases(200, 'find(first: 1) { nodes { path } }'))).errors).toBeUndefined()
  })

  it('leaves normal queries under the limit: a full page with every field, the README example, and introspection', async () => {
    const fields = 'path name kind size mode permissions uid gid nlink ino atime mtime ctime mount { path name } parent { path }'
    const page = await gql(api, `{ node(path: "/hello/planets") { ... on Directory { entries(first: 1000) { edges { cursor node { ${fields} ... on File { text json } } } pageInfo { hasNextPage endCursor } } } } }`)
    expect(page.errors).toBeUndefined()
    const found = await gql(api, `{ find(path: "/", first: 1000, glob: "**/*.json") { nodes { ${fields} } pageInfo { hasNextPage } } }`)
    expect(found.errors).toBeUndefined()
    const readme = await gql(api, '{ node(path: "/users/ada.json") { size ... on File { json } } }')
    expect(readme).toEqual({ data: { node: { size: expect.any(Number), json: { name: 'ada', email: 'ada@example.org' } } } })
    const intro = await gql(api, '{ __schema { types { name fields { name args { name } type { name ofType { name } } } } } }')
    expect(intro.errors).toBeUndefined()
  })
})
