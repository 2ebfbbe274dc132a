import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach } from 'vitest'
import { generateIdentity, type Identity } from '../../src/crypto/identity.ts'
import { Chain, type CreateChainOptions } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'

let cached: Identity | undefined

/** One identity per test file (key generation costs ~40 ms). */
export function testIdentity(): Identity {
  cached ??= (({ seeds: _s, ...id }) => id)(generateIdentity('tester'))
  return cached
}

/** A temp folder acting as FACET_HOME, with a chain path inside. */
export async function tempHome(): Promise<{ home: string; path: string; cleanup(): Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'facet-chain-'))
  return { home, path: join(home, 'test.chain'), cleanup: () => rm(home, { recursive: true, force: true }) }
}

/** Opens (or creates) a chain at `path` and mounts it at `/c` in a fresh VFS. */
export async function chainVfs(path: string, home: string, options: Partial<CreateChainOptions> = {}): Promise<{ vfs: Vfs; chain: Chain }> {
  const chain = await Chain.openOrCreate(path, { identity: testIdentity(), home, ...options })
  const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
  return { vfs, chain }
}

/** A fresh temporary FacetFS home (and chain path in it) for each test of the calling suite, removed after it. */
export function tempHomeEach(): { readonly home: string; readonly path: string } {
  let t: Awaited<ReturnType<typeof tempHome>> | undefined
  beforeEach(async () => {
    t = await tempHome()
  })
  afterEach(async () => {
    await t?.cleanup()
  })
  return {
    get home() {
      return t!.home
    },
    get path() {
      return t!.path
    },
  }
}
