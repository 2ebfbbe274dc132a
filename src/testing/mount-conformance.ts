import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, it } from 'vitest'
import type { Mount } from '../vfs/mounts.ts'
import { silentLogger } from '../vfs/log.ts'
import { createVfs, type Vfs } from '../vfs/vfs.ts'
import { fuseCases } from './fuse-cases.ts'
import { allowOtherSkipReason, fuseSkipReason, hasCommand, mountForConformance, type ConformanceMount } from './fuse-harness.ts'
import { discoverFixture, makeFixture, vfsCases, type Fixture } from './vfs-cases.ts'

export type { Fixture } from './vfs-cases.ts'

/**
 * What a mount can do. Each flag says the mount has that capability; a flag left out
 * (or `false`) says it has not, and the suite then expects the documented errno in its
 * place instead of skipping: `EROFS` for writes on a read-only mount (`EPERM` for
 * `mknod` and `link` there), `EROFS` for `symlink`, `EPERM` for `link` and `mknod`,
 * `EOPNOTSUPP` for `setxattr`, `EINVAL` for `RENAME_EXCHANGE`, `EPERM` for `chmod` and
 * `chown` on a writable mount that keeps no modes or owners.
 */
export interface MountCapabilities {
  /** Files and folders can be made, written, renamed and removed (else the mount is read-only). @default false */
  write?: boolean
  /** `symlink` makes symlinks. @default false */
  symlinks?: boolean
  /** `link` makes hard links. @default false */
  hardLinks?: boolean
  /** `mknod` makes fifos, device nodes and sockets. @default false */
  specialFiles?: boolean
  /** `user.*` extended attributes are kept. @default false */
  xattrs?: boolean
  /** `rename` with `RENAME_EXCHANGE` swaps two names. @default false */
  renameExchange?: boolean
  /** `chmod` keeps permission bits (with setuid, setgid and sticky). @default false */
  chmod?: boolean
  /** `chown` keeps owner and group. @default false */
  chown?: boolean
  /** Times are kept to the nanosecond (else to the millisecond). @default false */
  nanosecondTimes?: boolean
  /** A file stays readable and writable through handles opened before its last name went. @default false */
  unlinkOpen?: boolean
}

/** Every capability: what the memory mount, the reference, has. */
export const FULL_POSIX: Readonly<Required<MountCapabilities>> = Object.freeze({
  write: true,
  symlinks: true,
  hardLinks: true,
  specialFiles: true,
  xattrs: true,
  renameExchange: true,
  chmod: true,
  chown: true,
  nanosecondTimes: true,
  unlinkOpen: true,
})

/** Options for {@link runMountConformance}. */
export interface MountConformanceOptions {
  /** What the mount can do; see {@link MountCapabilities}. */
  capabilities: MountCapabilities
  /**
   * Also run the shell and editor sequences through a real FUSE mount. They skip, with
   * the reason, where FUSE is unavailable.
   * @default true
   */
  fuse?: boolean
  /**
   * What a mount with content of its own holds. A read-only mount always must list
   * something (the suite fails on an empty one); `names` are paths relative to the
   * mount that must exist, e.g. `['users/alice.json']`.
   */
  fixture?: {
    /** Paths relative to the mount that must exist, e.g. `['users/alice.json']`. @default [] */
    names?: string[]
  }
}

/** What an in-process case gets: a fresh VFS with the mount at `/m`, and the fixture in it. */
export interface CaseContext {
  /** A VFS of the case's own, with the mount under test at `/m`. */
  readonly vfs: Vfs
  /** The VFS path of `rel` (relative to the mount), e.g. `path('a/b')` is `'/m/a/b'`. */
  path(rel?: string): string
  /** The mount's capabilities, each flag filled in (`false` where left out). */
  readonly caps: Readonly<Required<MountCapabilities>>
  /** What the mount holds: made by the suite on a writable mount, found by listing a read-only one. */
  readonly fixture: Fixture
  /** Ends the case as skipped, with the reason. */
  skip(reason: string): never
}

/** What a FUSE case gets besides a {@link CaseContext}: the case's folder on the mount and a local scratch folder. */
export interface FuseCaseContext extends CaseContext {
  /** The case's folder on the FUSE mount: a fresh folder of its own on a writable mount, the mount's root on a read-only one. */
  readonly dir: string
  /** The VFS path of `rel` inside the case's folder. */
  here(rel?: string): string
  /** A fresh local folder (not on the mount) for tarballs and copies. */
  readonly local: string
  /** Why another user cannot be let in through this mount, else undefined. */
  readonly allowOtherSkip: string | undefined
}

/** One behaviour the suite checks, named as a sentence with its errno. */
export interface MountCase<C extends CaseContext = CaseContext> {
  /** The behaviour as a sentence, e.g. `'rejects lookup of a missing file with ENOENT'`; the vitest test name. */
  readonly name: string
  /** Checks the behaviour; rejects when the mount does not have it. */
  run(ctx: C): Promise<void>
}

/** Thrown by `skip` when a case runs outside vitest's registration ({@link runMountCase}). */
export class CaseSkipped extends Error {
  /** Always `'CaseSkipped'`. */
  override readonly name = 'CaseSkipped'
}

/** The in-process and FUSE cases for these options, as {@link runMountConformance} registers them. */
export function mountConformanceCases(options: MountConformanceOptions): {
  /** The cases run in-process against the VFS. */
  vfs: MountCase[]
  /** The cases run through a real FUSE mount; empty when `options.fuse` is `false`. */
  fuse: MountCase<FuseCaseContext>[]
} {
  const caps = capabilitiesOf(options)
  return { vfs: vfsCases(caps), fuse: options.fuse === false ? [] : fuseCases(caps) }
}

function capabilitiesOf(options: MountConformanceOptions): Required<MountCapabilities> {
  const c = options.capabilities
  return {
    write: c.write ?? false,
    symlinks: c.symlinks ?? false,
    hardLinks: c.hardLinks ?? false,
    specialFiles: c.specialFiles ?? false,
    xattrs: c.xattrs ?? false,
    renameExchange: c.renameExchange ?? false,
    chmod: c.chmod ?? false,
    chown: c.chown ?? false,
    nanosecondTimes: c.nanosecondTimes ?? false,
    unlinkOpen: c.unlinkOpen ?? false,
  }
}

const at = (rel = '') => (rel === '' ? '/m' : '/m/' + rel)

async function fixtureOf(vfs: Vfs, caps: Required<MountCapabilities>, options: MountConformanceOptions): Promise<Fixture> {
  const fixture = caps.write ? await makeFixture(vfs, caps) : await discoverFixture(vfs)
  fixture.names.push(...(options.fixture?.names ?? []))
  return fixture
}

/**
 * Runs one in-process case against a fresh mount from `makeMount` at `/m` of a fresh
 * VFS, then checks that no handle was left open and closes the VFS. Rejects when the
 * case fails ({@link CaseSkipped} when it skips). The negative tests call it directly.
 */
export async function runMountCase(c: MountCase, makeMount: () => Mount | Promise<Mount>, options: MountConformanceOptions, skip?: (reason: string) => never): Promise<void> {
  const caps = capabilitiesOf(options)
  const vfs = createVfs({ mounts: { '/m': await makeMount() }, logger: silentLogger })
  try {
    const fixture = await fixtureOf(vfs, caps, options)
    await c.run({ vfs, path: at, caps, fixture, skip: skip ?? (reason => { throw new CaseSkipped(reason) }) })
    if (vfs.openHandles !== 0) throw new Error(`${vfs.openHandles} handle(s) left open after the case`)
  } finally {
    await vfs.close()
  }
}

/**
 * Registers vitest tests that check a mount keeps the semantics every FacetFS mount
 * keeps (DESIGN.md, "Semantics every mount keeps"): the errno table, POSIX sequences
 * (create, link, rename over, truncate, chmod, utimens, symlinks, fifos, xattrs) and
 * permissions in-process, each on a fresh mount from `makeMount` mounted at `/m`; then,
 * through one FUSE mount, the shell and editor sequences (`>`, `>>`, `sed -i`, vim's
 * swap and rename, `cp -p`, `tar x`, `git`) and a second user's rights.
 *
 * A capability the mount lacks is declared off, and the suite expects the documented
 * errno instead. A read-only mount must have content: the suite fails on an empty one.
 *
 * ```ts
 * runMountConformance('memory', () => memoryMount(), { capabilities: FULL_POSIX })
 * runMountConformance('hello', () => helloView(), { capabilities: {}, fixture: { names: ['hello.txt'] } })
 * ```
 */
export function runMountConformance(name: string, makeMount: () => Mount | Promise<Mount>, options: MountConformanceOptions): void {
  const { vfs: inProcess, fuse } = mountConformanceCases(options)
  const caps = capabilitiesOf(options)

  describe(`mount conformance: ${name}`, () => {
    describe('in-process', () => {
      for (const c of inProcess) it(c.name, ctx => runMountCase(c, makeMount, options, reason => ctx.skip(reason)), 15_000)
    })

    if (fuse.length === 0) return
    describe('through FUSE', () => {
      let skipAll: string | undefined
      let allowOtherSkip: string | undefined
      let vfs: Vfs | undefined
      let mount: ConformanceMount | undefined
      let fixture: Fixture | undefined
      let local: string | undefined
      let n = 0

      beforeAll(async () => {
        skipAll = await fuseSkipReason()
        if (skipAll) return
        allowOtherSkip = await allowOtherSkipReason()
        if (!allowOtherSkip && process.getuid?.() !== 0) allowOtherSkip = 'running a command as another user (setpriv) needs root'
        if (!allowOtherSkip && !(await hasCommand('setpriv'))) allowOtherSkip = 'setpriv is not installed (util-linux)'
        vfs = createVfs({ mounts: { '/m': await makeMount() }, logger: silentLogger })
        fixture = await fixtureOf(vfs, caps, options)
        mount = await mountForConformance(vfs, { allowOther: allowOtherSkip === undefined })
        local = await mkdtemp(join(tmpdir(), 'facet-conformance-'))
      }, 30_000)

      afterAll(async () => {
        try {
          await mount?.unmount()
        } finally {
          await vfs?.close()
          if (local) await rm(local, { recursive: true, force: true })
        }
      }, 30_000)

      for (const c of fuse) {
        it(c.name, async ctx => {
          if (skipAll) ctx.skip(skipAll)
          const v = vfs!
          let rel = ''
          if (caps.write) {
            rel = `case-${++n}`
            await v.mkdir(at(rel), 0o755)
          }
          const scratch = await mkdtemp(join(local!, 'case-'))
          const within = (r = '') => at([rel, r].filter(Boolean).join('/'))
          await c.run({
            vfs: v,
            path: at,
            caps,
            fixture: fixture!,
            skip: reason => ctx.skip(reason),
            dir: join(mount!.dir, 'm', rel),
            here: within,
            local: scratch,
            allowOtherSkip,
          })
        }, 60_000)
      }
    })
  })
}
