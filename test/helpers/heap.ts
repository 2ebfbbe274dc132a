import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/**
 * Heap in use after a full collection: what is still reachable, not the garbage
 * a run happens to leave behind. Raw `heapUsed` depends on when V8 last collected,
 * which makes a memory bound flaky; this does not.
 */
export function liveHeapUsed(): number {
  gc()
  return process.memoryUsage().heapUsed
}
