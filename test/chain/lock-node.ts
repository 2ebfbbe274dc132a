// Child process for postgres-locks.test.ts: one FacetFS node serving a PostgreSQL chain through FUSE.
// Prints `mounted` once the mount is up; unmounts and exits when its stdin closes.
import { identityFromSeeds } from '../../src/crypto/identity.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { postgresBackend } from '../../src/chain/postgres.ts'
import { Chain } from '../../src/chain/store.ts'
import { mountFuse } from '../../src/fuse/index.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs } from '../../src/vfs/vfs.ts'

const [url, table, home, seedsHex, role, dir] = process.argv.slice(2)
const identity = identityFromSeeds('tester', Buffer.from(seedsHex!, 'hex'))
const follower = role === 'follower'
const chain = await Chain.openOrCreate(postgresBackend({ url: url!, table: table! }), { identity, home: home!, readOnly: follower })
const vfs = createVfs({ mounts: { '/c': chainMount(chain, { follow: follower }) }, logger: silentLogger })
const mount = await mountFuse(vfs, dir!, { logger: silentLogger })
process.stdout.write('mounted\n')
process.stdin.resume()
process.stdin.on('end', async () => {
  await mount.unmount()
  await vfs.close()
  process.exit(0)
})
