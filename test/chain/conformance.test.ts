import { afterAll } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { FULL_POSIX, runMountConformance } from '../../src/testing/index.ts'
import { tempHome, testIdentity } from './helpers.ts'

const homes: Array<Awaited<ReturnType<typeof tempHome>>> = []
afterAll(async () => {
  for (const h of homes) await h.cleanup()
})

/** A fresh chain in a fresh FACET_HOME, mounted as `facet up` mounts it. */
async function freshChain() {
  const home = await tempHome()
  homes.push(home)
  return chainMount(await Chain.create(home.path, { identity: testIdentity(), home: home.home }))
}

// the chain keeps everything the memory mount does: hard links, special files, xattrs,
// RENAME_EXCHANGE and nanosecond times included
runMountConformance('chain', freshChain, { capabilities: FULL_POSIX })
