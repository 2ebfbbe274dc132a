import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createSchema, createYoga } from 'graphql-yoga'
import { createGraphQLApi, serveGraphQL } from '../src/graphql/index.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { memoryMount } from '../src/vfs/memory.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import { nodeChild, type BenchContext } from './lib.ts'

/** Sizes of one run. */
interface Sizes {
  /** Files in the listed folder (the query pages the first 100). */
  entries: number
  /** Requests per in-process sample. */
  inProcess: number
  /** Requests of the socket run, shared by the concurrent clients. */
  socket: number
  /** Samples per side; the best is reported. */
  reps: number
}

const FULL: Sizes = { entries: 1000, inProcess: 2000, socket: 5000, reps: 3 }
const QUICK: Sizes = { entries: 200, inProcess: 200, socket: 500, reps: 1 }
const CLIENTS = 50

/** The two listings measured: names and kinds, as `ls` shows (a readdir), and with attributes, as `ls -l` shows (a readdir plus a stat per entry). */
const LISTINGS = [
  { label: 'ls-like page', fields: 'name kind' },
  { label: 'ls -l-like page', fields: 'name kind size mode mtime' },
].map(l => ({ ...l, query: `{ node(path: "/bench/dir") { ... on Directory { entries(first: 100) { nodes { ${l.fields} } pageInfo { hasNextPage endCursor } } } } }` }))
const HELLO = `{ hello }`
const HELLO_WORLD = 'hello-world yoga'

/** The baseline: yoga with one `hello: String` field. */
function helloYoga() {
  return createYoga({
    schema: createSchema({ typeDefs: 'type Query { hello: String! }', resolvers: { Query: { hello: () => 'world' } } }),
    logging: false,
    landingPage: false,
    graphiql: false,
  })
}

interface Fetcher {
  fetch(url: string, init: RequestInit): Promise<Response> | Response
}

/** Queries per second of `count` sequential in-process requests; throws on any error in a result. */
async function inProcessRate(api: Fetcher, query: string, count: number, check: (body: any) => boolean): Promise<number> {
  const body = JSON.stringify({ query })
  const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body }
  for (let i = 0; i < Math.min(50, count); i++) await (await api.fetch('http://bench/graphql', init)).text()
  const start = process.hrtime.bigint()
  for (let i = 0; i < count; i++) {
    const res = await api.fetch('http://bench/graphql', init)
    const json = await res.json()
    if (!check(json)) throw new Error(`bad result: ${JSON.stringify(json).slice(0, 300)}`)
  }
  return count / (Number(process.hrtime.bigint() - start) / 1e9)
}

/** A child process that sends `total` POSTs from `clients` keep-alive connections and reports the rate and failures. */
const LOAD_SCRIPT = `
import http from 'node:http'
const [url, query, total, clients, expect] = process.argv.slice(1)
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(clients) })
const body = JSON.stringify({ query })
const u = new URL(url)
const one = () => new Promise(resolve => {
  const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, res => {
    const chunks = []
    res.on('data', c => chunks.push(c))
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString()
      resolve(res.statusCode === 200 && !text.includes('"errors"') && text.includes(expect))
    })
    res.on('error', () => resolve(false))
  })
  req.on('error', () => resolve(false))
  req.end(body)
})
let sent = 0, errors = 0
const worker = async () => { while (sent < Number(total)) { sent++; if (!(await one())) errors++ } }
for (let i = 0; i < 20; i++) await one()
const start = process.hrtime.bigint()
await Promise.all(Array.from({ length: Number(clients) }, worker))
const seconds = Number(process.hrtime.bigint() - start) / 1e9
agent.destroy()
console.log(JSON.stringify({ rate: Number(total) / seconds, errors }))
`

interface LoadResult {
  rate: number
  errors: number
}

function listen(server: Server): Promise<string> {
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`)))
}

/** GraphQL queries per second for a 100-entry folder page, against a hello-world yoga schema in the same run. */
export default async function graphqlBench(b: BenchContext): Promise<void> {
  const sizes = b.quick ? QUICK : FULL
  const vfs = createVfs({ logger: silentLogger, mounts: { '/bench': memoryMount({ name: 'bench' }) } })
  b.defer(() => vfs.close())
  await vfs.mkdir('/bench/dir')
  for (let i = 0; i < sizes.entries; i++) await vfs.writeFile(`/bench/dir/record-${String(i).padStart(5, '0')}.json`, `{"id":${i}}\n`)

  const api = createGraphQLApi(vfs)
  const hello = helloYoga()
  const listed = (body: any) => body?.data?.node?.entries?.nodes?.length === 100 && !body.errors
  const greeted = (body: any) => body?.data?.hello === 'world'

  const inProcess = new Map<string, number>()
  let base = 0
  for (let r = 0; r < sizes.reps; r++) {
    base = Math.max(base, await inProcessRate(hello, HELLO, sizes.inProcess, greeted))
    for (const l of LISTINGS) inProcess.set(l.label, Math.max(inProcess.get(l.label) ?? 0, await inProcessRate(api, l.query, sizes.inProcess, listed)))
  }
  for (const l of LISTINGS) {
    const ours = inProcess.get(l.label)!
    b.row({
      figure: `in-process queries/s, 100-entry ${l.label}`,
      value: ours,
      unit: 'queries/s',
      baseline: HELLO_WORLD,
      baselineValue: base,
      higherIsBetter: true,
      note: `api.fetch, sequential; { ${l.fields} } per entry; target >= 0.5x: ${ours / base >= 0.5 ? 'met' : 'MISSED'}`,
    })
  }

  const server = await serveGraphQL(vfs, { port: 0 })
  b.defer(() => server.close())
  const helloServer = createServer(hello)
  const helloUrl = await listen(helloServer)
  b.defer(() => new Promise(resolve => (helloServer.close(resolve), helloServer.closeAllConnections())))

  const socket = new Map<string, number>()
  let baseNet = 0
  let errors = 0
  for (let r = 0; r < sizes.reps; r++) {
    const h = await nodeChild<LoadResult>(LOAD_SCRIPT, [helloUrl, HELLO, String(sizes.socket), String(CLIENTS), '"world"'])
    errors += h.errors
    baseNet = Math.max(baseNet, h.rate)
    for (const l of LISTINGS) {
      const o = await nodeChild<LoadResult>(LOAD_SCRIPT, [server.url, l.query, String(sizes.socket), String(CLIENTS), '"record-00099.json"'])
      errors += o.errors
      socket.set(l.label, Math.max(socket.get(l.label) ?? 0, o.rate))
    }
  }
  for (const l of LISTINGS) {
    const ours = socket.get(l.label)!
    b.row({
      figure: `socket queries/s, ${CLIENTS} clients, 100-entry ${l.label}`,
      value: ours,
      unit: 'queries/s',
      baseline: HELLO_WORLD,
      baselineValue: baseNet,
      higherIsBetter: true,
      note: `${sizes.socket} requests per run, errors ${errors} in all runs; target >= 0.5x: ${ours / baseNet >= 0.5 ? 'met' : 'MISSED'}`,
    })
  }
  if (errors > 0) throw new Error(`${errors} requests failed under load`)
}
