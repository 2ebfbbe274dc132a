import { constants as fsc } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { isVfsError, type ErrnoCode } from '../vfs/errors.ts'
import type { Mount } from '../vfs/mounts.ts'
import { silentLogger } from '../vfs/log.ts'
import { createVfs, type ChangeEvent, type Vfs } from '../vfs/vfs.ts'

/** Write-back cases for {@link runViewConformance}; leave them out for a read-only view. */
export interface WriteConformance {
  /** An existing file of the folder to edit, e.g. `'alice.json'`. */
  existing: string
  /** Valid new content for it. */
  valid: string
  /** What it reads back as after the valid edit. @default `valid` */
  readBack?: string
  /** Contents that must be refused with `EINVAL` (malformed, schema-violating…). */
  invalid: string[]
  /** A new file to create, with its content. */
  create?: {
    /** Its name in the folder, which must not exist yet, e.g. `'carol.json'`. */
    name: string
    /** What is written to it. */
    content: string
    /** What it reads back as. @default `content` */
    readBack?: string
  }
  /** Whether `rm` of `existing` removes it. @default false */
  remove?: boolean
  /** The view's write limit, to check that a larger write fails with `EFBIG`; skipped when absent. */
  maxWriteBytes?: number
  /** The errno a record write over the limit fails with. @default 'EFBIG' */
  tooBigCode?: ErrnoCode
}

/** Options for {@link runViewConformance}. */
export interface ConformanceOptions {
  /** The folder of the view under test, e.g. `'/users'`. @default '/' */
  folder?: string
  /** Names the folder must list. */
  expectNames?: string[]
  /** Write-back cases; absent for a read-only view, which must refuse writes with `EROFS`. */
  write?: WriteConformance
  /** Whether `rm` on a read-only folder must fail with `EROFS`. @default true when `write` is absent */
  readOnly?: boolean
}

/** Resolves to the errno code `p` rejects with (`'EINVAL'`), or `'no error'`; anything but a VfsError is rethrown. */
export async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    if (isVfsError(err)) return err.code
    throw err
  }
  return 'no error'
}

/**
 * Registers vitest tests that check a view behaves as a filesystem: paged listing,
 * lookup, exact sizes, byte-range reads, write-back, refusal of bad input, and errno
 * codes. Each test mounts a fresh view from `makeView` at `/v` of a fresh VFS.
 *
 * ```ts
 * runViewConformance('queue', () => queueView({ dir }), { folder: '/jobs', write: { … } })
 * ```
 */
export function runViewConformance(name: string, makeView: () => Mount | Promise<Mount>, options: ConformanceOptions = {}): void {
  const folder = options.folder ?? '/'
  const at = (n = '') => ('/v' + (folder === '/' ? '' : folder) + (n ? '/' + n : '')).replace(/\/+/g, '/')
  const readOnly = options.readOnly ?? options.write === undefined
  let vfs: Vfs | undefined

  async function setup(): Promise<Vfs> {
    vfs = createVfs({ mounts: { '/v': await makeView() }, logger: silentLogger })
    return vfs
  }

  async function files(v: Vfs): Promise<string[]> {
    return (await v.readdirAll(at())).filter(e => e.kind === 'file').map(e => e.name)
  }

  describe(`view conformance: ${name}`, () => {
    afterEach(async () => {
      await vfs?.close()
      vfs = undefined
    })

    it('lists the folder in pages that add up to the whole listing without duplicates', async () => {
      const v = await setup()
      const all = (await v.readdirAll(at())).map(e => e.name)
      const paged: string[] = []
      let cursor: string | undefined
      do {
        const page = await v.readdir(at(), cursor === undefined ? { limit: 2 } : { limit: 2, cursor })
        paged.push(...page.entries.map(e => e.name))
        cursor = page.cursor
      } while (cursor !== undefined)
      expect(paged).toEqual(all)
      expect(new Set(all).size).toBe(all.length)
      for (const n of options.expectNames ?? []) expect(all).toContain(n)
    })

    it('reports on stat the exact byte length that reading returns', async () => {
      const v = await setup()
      for (const n of (await files(v)).slice(0, 50)) {
        const st = await v.stat(at(n))
        const bytes = await v.readFile(at(n))
        expect(st.size, n).toBe(bytes.length)
        expect(st.kind).toBe('file')
      }
    })

    it('reads byte ranges that match slices of the whole file', async () => {
      const v = await setup()
      const n = (await files(v))[0]
      if (n === undefined) return
      const whole = await v.readFile(at(n))
      const fh = await v.open(at(n))
      try {
        for (const [offset, length] of [[0, 1], [1, 3], [Math.floor(whole.length / 2), 7], [Math.max(0, whole.length - 2), 100], [whole.length, 10], [whole.length + 5, 10]] as const) {
          const got = Buffer.from(await v.read(fh, offset, length))
          expect(got.equals(whole.subarray(offset, offset + length)), `${n} @${offset}+${length}`).toBe(true)
        }
      } finally {
        await v.release(fh)
      }
    })

    it('rejects lookup of a missing name with ENOENT', async () => {
      const v = await setup()
      expect(await errnoOf(v.stat(at('no-such-file-' + 'x'.repeat(8))))).toBe('ENOENT')
      expect(await errnoOf(v.readFile(at('no-such-file.json')))).toBe('ENOENT')
    })

    it("rejects names with a NUL byte or '..' above the root with EINVAL", async () => {
      const v = await setup()
      expect(await errnoOf(v.stat(at('a\0b')))).toBe('EINVAL')
      expect(await errnoOf(v.stat('/v/../../etc/passwd'))).toBe('EINVAL')
      expect(await errnoOf(v.writeFile(at('x\0.json'), '{}'))).toBe('EINVAL')
    })

    it('rejects readdir of a file with ENOTDIR and reading a folder with EISDIR', async () => {
      const v = await setup()
      const n = (await files(v))[0]
      if (n !== undefined) expect(await errnoOf(v.readdir(at(n)))).toBe('ENOTDIR')
      expect(await errnoOf(v.readFile(at()))).toBe('EISDIR')
    })

    if (readOnly) {
      it('refuses writes, creates and removes with EROFS', async () => {
        const v = await setup()
        const n = (await files(v))[0]
        if (n !== undefined) {
          const before = await v.readFile(at(n))
          expect(await errnoOf(v.writeFile(at(n), 'changed'))).toBe('EROFS')
          expect(await errnoOf(v.unlink(at(n)))).toBe('EROFS')
          expect((await v.readFile(at(n))).equals(before)).toBe(true)
        }
        expect(await errnoOf(v.writeFile(at('new-file.json'), '{}'))).toBe('EROFS')
      })
    }

    const w = options.write
    if (!w) return

    it('applies a valid edit on close and reads it back exactly', async () => {
      const v = await setup()
      await v.writeFile(at(w.existing), w.valid)
      expect((await v.readFile(at(w.existing))).toString()).toBe(w.readBack ?? w.valid)
      expect((await v.stat(at(w.existing))).size).toBe(Buffer.byteLength(w.readBack ?? w.valid))
    })

    it('refuses malformed or invalid content with EINVAL on close and leaves the file unchanged', async () => {
      const v = await setup()
      const before = await v.readFile(at(w.existing))
      for (const bad of w.invalid) {
        expect(await errnoOf(v.writeFile(at(w.existing), bad)), JSON.stringify(bad)).toBe('EINVAL')
        expect((await v.readFile(at(w.existing))).toString()).toBe(before.toString())
        // stat agrees with the content left in place: no size of the refused buffer lingers
        expect((await v.stat(at(w.existing))).size, JSON.stringify(bad)).toBe(before.length)
      }
    })

    it("applies a shell's O_TRUNC write once: a flush before the first write stores nothing", async () => {
      const v = await setup()
      await v.unlink(at('.errors')).catch(() => {})
      // a shell's '>' opens with O_TRUNC, then closes a duplicate of the descriptor (a flush)
      // before it writes; applying the empty file there would be a second, refused, edit
      const fh = await v.open(at(w.existing), fsc.O_WRONLY | fsc.O_TRUNC)
      try {
        await v.flush(fh)
        await v.write(fh, 0, Buffer.from(w.valid))
        await v.flush(fh)
      } finally {
        await v.release(fh)
      }
      expect((await v.readFile(at(w.existing))).toString()).toBe(w.readBack ?? w.valid)
      expect(await errnoOf(v.readFile(at(`.${w.existing}.error`)))).toBe('ENOENT')
    })

    it('keeps the times of .errors while its text does not change', async () => {
      const v = await setup()
      const bad = w.invalid[0]
      if (bad === undefined) return
      await errnoOf(v.writeFile(at(w.existing), bad))
      const a = await v.stat(at('.errors'))
      await new Promise(done => setTimeout(done, 15))
      const b = await v.stat(at('.errors'))
      expect(b.mtimeMs).toBe(a.mtimeMs)
      expect(b.size).toBe(a.size)
    })

    if (w.maxWriteBytes !== undefined) {
      const max = w.maxWriteBytes
      it(`refuses a write over the size limit with ${w.tooBigCode ?? 'EFBIG'} and leaves the file unchanged`, async () => {
        const v = await setup()
        const before = await v.readFile(at(w.existing))
        expect(await errnoOf(v.writeFile(at(w.existing), Buffer.alloc(max + 1, 0x20)))).toBe(w.tooBigCode ?? 'EFBIG')
        expect((await v.readFile(at(w.existing))).equals(before)).toBe(true)
      })
    }

    if (w.create) {
      const c = w.create
      it('creates a new file that then lists and reads back', async () => {
        const v = await setup()
        expect(await errnoOf(v.stat(at(c.name)))).toBe('ENOENT')
        await v.writeFile(at(c.name), c.content)
        expect(await files(v)).toContain(c.name)
        expect((await v.readFile(at(c.name))).toString()).toBe(c.readBack ?? c.content)
      })
    }

    if (w.remove) {
      it('removes a file with unlink, after which stat fails with ENOENT', async () => {
        const v = await setup()
        await v.unlink(at(w.existing))
        expect(await errnoOf(v.stat(at(w.existing)))).toBe('ENOENT')
        expect(await files(v)).not.toContain(w.existing)
      })
    }

    it('reports a write as a change event on the VFS bus', async () => {
      const v = await setup()
      const events: ChangeEvent[] = []
      v.watch('/v', e => events.push(e))
      await v.writeFile(at(w.existing), w.valid)
      expect(events.some(e => e.path === at(w.existing))).toBe(true)
    })
  })
}
