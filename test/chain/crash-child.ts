// Child process for crash.test.ts: appends numbered records with fsync and reports each one after fsync returns.
import { constants as fsc } from 'node:fs'
import { identityFromSeeds } from '../../src/crypto/identity.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { record } from './crash-records.ts'

const [path, home, seedsHex] = process.argv.slice(2)
const identity = identityFromSeeds('tester', Buffer.from(seedsHex!, 'hex'))
const chain = await Chain.openOrCreate(path!, { identity, home: home!, commitDelayMs: 5 })
const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
const fh = await vfs.open('/c/log', fsc.O_WRONLY | fsc.O_CREAT | fsc.O_APPEND)
const start = (await vfs.fstat(fh)).size
let i = 0
let offset = 0
// find where we are: the parent restarts children on an existing chain
if (start > 0) {
  for (; offset < start; i++) offset += record(i).length
}
process.stdout.write(`ready ${i}\n`)
for (;;) {
  await vfs.write(fh, 0, record(i))
  if (i % 7 === 0) await vfs.writeFile(`/c/f${i}`, record(i))
  if (i % 3 === 0) {
    await vfs.fsync(fh)
    process.stdout.write(`synced ${i}\n`)
  }
  i++
}
