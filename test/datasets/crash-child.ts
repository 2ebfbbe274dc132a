// Pushes or pulls until killed: `crash-child.ts push|pull HOME SEEDS_HEX SRC_OR_DIR`; prints `ready` once the store is open.
import { identityFromSeeds } from '../../src/crypto/identity.ts'
import { openDatasetStore, pull, push } from '../../src/datasets/index.ts'

const [mode, home, seeds, path] = process.argv.slice(2) as [string, string, string, string]
const identity = identityFromSeeds('tester', Buffer.from(seeds, 'hex'))
const open = await openDatasetStore({ identity, home })
process.stdout.write('ready\n')
if (mode === 'push') await push(open.store, path, 'corpus', 'v2')
else await pull(open.store, 'corpus', 'v2', path)
await open.close()
process.stdout.write('done\n')
