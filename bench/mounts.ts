import { join } from 'node:path'
import type { Identity } from '../src/crypto/identity.ts'
import { Chain } from '../src/chain/store.ts'
import { chainMount } from '../src/chain/mount.ts'
import { mountFuse } from '../src/fuse/index.ts'
import { createVfs } from '../src/vfs/vfs.ts'
import { silentLogger } from '../src/vfs/log.ts'
import { exec, type BenchContext } from './lib.ts'

/** One folder a side-by-side bench runs the same work in: a chain mount, a gocryptfs mount or the native disk. */
export interface Side {
  /** Shown in progress lines and as a row's baseline, e.g. `'gocryptfs'`. */
  readonly name: string
  /** The folder to work in. */
  readonly dir: string
  /** Unmounts and mounts again, so what is read next comes from the filesystem, not the page cache (the native disk only syncs). */
  remount(): Promise<void>
  /** Unmounts. Safe to call more than once; also registered with `b.defer`, so a failed bench unmounts too. */
  close(): Promise<void>
}

/** The names {@link Side.name} takes. */
export const CHAIN = 'chain'
export const GOCRYPTFS = 'gocryptfs'
export const NATIVE = 'native disk'

/** Makes `close` run once, whoever calls it first: the bench itself or its deferred cleanup. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined
  return () => (done ??= fn())
}

/** True when `gocryptfs` runs; else tries `apt-get install -y gocryptfs` and says why not in a progress line. */
export async function ensureGocryptfs(b: BenchContext): Promise<boolean> {
  try {
    await exec('gocryptfs', ['-version'])
    return true
  } catch {
    b.log('gocryptfs missing: apt-get install -y gocryptfs')
    try {
      await exec('apt-get', ['install', '-y', '-q', 'gocryptfs'], { timeoutMs: 300_000, env: { DEBIAN_FRONTEND: 'noninteractive' } })
      return true
    } catch (err) {
      b.log(`could not install gocryptfs: ${(err as Error).message.split('\n')[0]}`)
      return false
    }
  }
}

/** Options of {@link mountChainSide}. */
export interface ChainSideOptions {
  /** Who owns the chain. */
  identity: Identity
  /** The FacetFS home (trust store) and the folder the chain file is made in. */
  home: string
  /** The chain file's name in `home`. @default 'files.chain' */
  file?: string
}

/** Creates an empty chain in `home` and mounts it with FUSE on a fresh temp folder. */
export async function mountChainSide(b: BenchContext, options: ChainSideOptions): Promise<Side> {
  const { identity, home } = options
  const path = join(home, options.file ?? 'files.chain')
  const dir = b.tmpdir('facet-chain-mnt-')
  const open = async (chain: Chain) => {
    const vfs = createVfs({ mounts: { '/': chainMount(chain) }, logger: silentLogger })
    return { vfs, fuse: await mountFuse(vfs, dir) }
  }
  let mounted = await open(await Chain.create(path, { identity, home }))
  const unmount = async () => {
    await mounted.fuse.unmount()
    await mounted.vfs.close()
  }
  const close = once(unmount)
  b.defer(close)
  return {
    name: CHAIN,
    dir,
    remount: async () => {
      await unmount()
      mounted = await open(await Chain.open(path, { identity, home }))
    },
    close,
  }
}

/** Makes a gocryptfs cipher folder (cheap scrypt, the bench is not about key stretching) and mounts it on a fresh temp folder. */
export async function mountGocryptfsSide(b: BenchContext): Promise<Side> {
  const cipher = b.tmpdir('facet-gocrypt-cipher-')
  const plain = b.tmpdir('facet-gocrypt-plain-')
  await exec('gocryptfs', ['-init', '-q', '-extpass', 'echo benchpass', '-scryptn', '10', cipher])
  const mount = () => exec('gocryptfs', ['-q', '-extpass', 'echo benchpass', cipher, plain])
  await mount()
  const close = once(() => exec('fusermount', ['-uz', plain]).then(() => {}, () => {}))
  b.defer(close)
  return {
    name: GOCRYPTFS,
    dir: plain,
    remount: async () => {
      await exec('fusermount', ['-u', plain])
      await mount()
    },
    close,
  }
}

/** A fresh temp folder on the disk the temp folder lives on; `remount` only syncs. */
export function nativeSide(b: BenchContext): Side {
  return {
    name: NATIVE,
    dir: b.tmpdir('facet-native-'),
    remount: async () => exec('sync', []).then(() => {}),
    close: async () => {},
  }
}
