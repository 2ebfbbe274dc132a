import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach } from 'vitest'
import { createIdentity } from '../../src/crypto/identity.ts'
import { exportPublicIdentity, importContact, parsePublicIdentity } from '../../src/crypto/contacts.ts'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { createVfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { sh, testMountDir } from '../helpers/fuse.ts'
import { facet } from './run.ts'
import { isMounted, killRunning, startUp, waitForLine, type Up } from './up-harness.ts'

/** The passphrase of both identities. */
export const PASS = 'share test pass'

/** Two identities in their own homes (alice, the owner, knows bob as a contact) and alice's chain, fresh for each test of the calling suite. */
export interface ShareSetup {
  /** The test's folder, the working folder of every `facet` run. */
  readonly work: string
  /** Alice's chain log: /a (x.txt, sub/y.txt), /b/secret.txt, /top.txt. */
  readonly store: string
  readonly alice: Record<string, string>
  readonly bob: Record<string, string>
  /** Runs `facet ...args` with `env` in the test's folder; stderr trimmed. */
  run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }>
  /** A fresh mount folder, unmounted and removed after the test. */
  mountDir(): Promise<string>
  /** Starts bob's facet up on alice's store at `dir` and resolves once it has mounted. */
  bobUp(dir: string): Promise<Up>
}

/** Stops `up` with SIGTERM and resolves its exit. */
export async function stop(up: Up): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  up.child.kill('SIGTERM')
  return up.exited
}

/** Sets up {@link ShareSetup} before each test of the calling suite and removes it (mounts, processes, files) after. */
export function shareSetupEach(): ShareSetup {
  let work = ''
  const dirs: string[] = []
  const s: ShareSetup = {
    get work() {
      return work
    },
    get store() {
      return join(work, 'files.chain')
    },
    get alice() {
      return { FACET_HOME: join(work, 'alice'), FACET_PASSPHRASE: PASS }
    },
    get bob() {
      return { FACET_HOME: join(work, 'bob'), FACET_PASSPHRASE: PASS }
    },
    async run(args, env) {
      const r = await facet(args, { env, cwd: work })
      return { ...r, stderr: r.stderr.trim() }
    },
    async mountDir() {
      const dir = await testMountDir()
      dirs.push(dir)
      return dir
    },
    async bobUp(dir) {
      const up = startUp(['--mount', dir, '--files-store', s.store], { env: s.bob, cwd: work })
      await waitForLine(up, /^FacetFS mounted at /, 30_000)
      return up
    },
  }
  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'facet-share-'))
    // each in its own home, as `facet identity create default` makes them; bob's card imported by alice as `facet identity import` does
    const aliceId = await createIdentity('default', PASS, { home: s.alice.FACET_HOME! })
    const bobId = await createIdentity('default', PASS, { home: s.bob.FACET_HOME! })
    await importContact(parsePublicIdentity(JSON.stringify(exportPublicIdentity(bobId))), { home: s.alice.FACET_HOME!, as: 'bob' })
    const chain = await Chain.create(s.store, { identity: aliceId, home: s.alice.FACET_HOME! })
    const vfs = createVfs({ mounts: { '/c': chainMount(chain) }, logger: silentLogger })
    await vfs.mkdir('/c/a')
    await vfs.mkdir('/c/a/sub')
    await vfs.mkdir('/c/b')
    await vfs.writeFile('/c/a/x.txt', 'shared with bob\n')
    await vfs.writeFile('/c/a/sub/y.txt', 'deeper\n')
    await vfs.writeFile('/c/b/secret.txt', 'alice only\n')
    await vfs.writeFile('/c/top.txt', 'alice only too\n')
    await vfs.close()
  })
  afterEach(async () => {
    await killRunning()
    for (const dir of dirs.splice(0)) {
      if (await isMounted(dir)) await sh(`fusermount3 -uz '${dir}' || umount -l '${dir}'`)
      if (!(await isMounted(dir))) await rm(dir, { recursive: true, force: true })
    }
    await rm(work, { recursive: true, force: true })
  })
  return s
}
