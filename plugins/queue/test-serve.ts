// A second FacetFS process for the queue tests: mounts queue views with FUSE and serves them until SIGTERM.
// Usage: node --import tsx test-serve.ts MOUNTPOINT '{"/nats": {"broker": "nats://…", "prefix": "…"}, …}'
import { mountFuse, unmountOnSignals } from '../../src/fuse/index.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { queueView, type QueueOptions } from './index.ts'

const [mountpoint, json] = process.argv.slice(2)
if (!mountpoint || !json) throw new Error('usage: test-serve.ts MOUNTPOINT MOUNTS-JSON')
const mounts = Object.fromEntries(Object.entries(JSON.parse(json) as Record<string, QueueOptions>).map(([path, options]) => [path, queueView(options)]))
const vfs = createVfs({ logger: silentLogger, mounts })
const mount = await mountFuse(vfs, mountpoint, { logger: silentLogger })
unmountOnSignals(() => [mount])
process.stdout.write('mounted\n')
setInterval(() => {}, 1 << 30)
