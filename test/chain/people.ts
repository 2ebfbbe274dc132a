import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach } from 'vitest'
import { generateIdentity, type Identity } from '../../src/crypto/identity.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'

/** A fresh identity named `name` (its seeds dropped), as a second person would hold it. */
export const person = (name: string): Identity => (({ seeds: _s, ...id }) => id)(generateIdentity(name))

/** A chain log that several people open, each from a home of their own (`<work>/<name>`), mounted at `/c`. */
export class ChainPeople {
  /** The test's folder. */
  work = ''
  /** The chain's log file, `<work>/files.chain` unless a test points it elsewhere. */
  path = ''
  private readonly open: Vfs[] = []

  /** The FacetFS home of `id`. */
  home(id: Identity): string {
    return join(this.work, id.name)
  }

  /** Creates (`create`) or opens the chain as `identity` and mounts it at `/c`; closed after the test unless closed before. */
  async mount(identity: Identity, options: { create?: boolean; readOnly?: boolean } = {}): Promise<{ vfs: Vfs; chain: Chain }> {
    const home = this.home(identity)
    const chain = options.create ? await Chain.create(this.path, { identity, home }) : await Chain.open(this.path, { identity, home, readOnly: options.readOnly })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    this.open.push(vfs)
    return { vfs, chain }
  }

  /** Closes a mount made by {@link mount}. */
  async close(vfs: Vfs): Promise<void> {
    this.open.splice(this.open.indexOf(vfs), 1)
    await vfs.close()
  }

  /** The names in `dir`, sorted. */
  async names(vfs: Vfs, dir: string): Promise<string[]> {
    return (await vfs.readdirAll(dir)).map(e => e.name).sort()
  }

  async setUp(prefix: string): Promise<void> {
    this.work = await mkdtemp(join(tmpdir(), prefix))
    this.path = join(this.work, 'files.chain')
  }

  async tearDown(): Promise<void> {
    for (const v of this.open.splice(0)) await v.close()
    await rm(this.work, { recursive: true, force: true })
  }
}

/** A {@link ChainPeople} made afresh for each test of the calling suite (folder `<tmp>/<prefix>*`), and cleaned up after it. */
export function chainPeopleEach(prefix: string): ChainPeople {
  const people = new ChainPeople()
  beforeEach(() => people.setUp(prefix))
  afterEach(() => people.tearDown())
  return people
}
