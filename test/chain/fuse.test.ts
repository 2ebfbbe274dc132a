import { execFile } from 'node:child_process'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Chain } from '../../src/chain/store.ts'
import { chainMount } from '../../src/chain/mount.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { fuseSkip, mountForTest } from '../helpers/fuse.ts'
import { tempHome, testIdentity } from './helpers.ts'

const run = promisify(execFile)
const skip = fuseSkip
// never pass `cwd` inside the mount to spawn: the child chdirs before exec while this process (the FUSE server) waits (vfork) — a deadlock
const sh = (script: string, cwd?: string) => run('sh', ['-c', cwd ? `cd "$0" && ${script}` : script, cwd ?? 'sh'], { maxBuffer: 64 << 20, env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x', HOME: '/tmp' } })
const SECRET_NAME = 'unguessable-name-QX7Z9'
const SECRET_TEXT = 'plaintext-marker-8GJ2K5-only-in-clear-through-fuse'
const SRC = new URL('../../src/vfs', import.meta.url).pathname

describe.skipIf(skip)(`chain mount through FUSE${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let t: Awaited<ReturnType<typeof tempHome>>
  let vfs: Vfs
  let m: { dir: string; unmount(): Promise<void> }
  beforeAll(async () => {
    t = await tempHome()
    const chain = await Chain.create(t.path, { identity: testIdentity(), home: t.home })
    vfs = createVfs({ mounts: { '/': chainMount(chain) }, logger: silentLogger })
    m = await mountForTest(vfs)
  })
  afterAll(async () => {
    await m?.unmount()
    await vfs?.close()
    await t?.cleanup()
  })

  it('copies a source tree in and out with identical checksums', async () => {
    await sh(`cp -r ${SRC} ${m.dir}/tree && cp -r ${m.dir}/tree ${t.home}/out`)
    const sums = async (dir: string) => (await sh('find . -type f | sort | xargs sha256sum', dir)).stdout
    const want = await sums(SRC)
    expect(want.length).toBeGreaterThan(100)
    expect(await sums(`${m.dir}/tree`)).toBe(want)
    expect(await sums(`${t.home}/out`)).toBe(want)
  })

  it('runs git init and git commit inside the mount', async () => {
    const { stdout } = await sh(`mkdir repo && cd repo && git init -q && cp -r ${SRC} src && git add -A && git commit -qm first && echo more >> src/path.ts && git commit -qam second && git log --oneline | wc -l && git fsck --strict 2>&1 | wc -l`, m.dir)
    expect(stdout.trim().split('\n')).toEqual(['2', '0'])
  })

  it('extracts a tarball, appends, renames over existing files and survives editor save patterns', async () => {
    await sh(`tar -C ${SRC}/.. -cf ${t.home}/src.tar vfs`)
    await sh(`mkdir x && tar -C x -xf ${t.home}/src.tar && diff -r ${SRC} x/vfs`, m.dir)
    await sh(`printf 'one\\n' > log && printf 'two\\n' >> log && printf 'three\\n' >> log`, m.dir)
    expect((await sh('cat log', m.dir)).stdout).toBe('one\ntwo\nthree\n')
    await sh(`echo new > a && echo old > b && mv a b && test ! -e a`, m.dir)
    expect((await sh('cat b', m.dir)).stdout).toBe('new\n')
    await sh(`printf 'hello world\\n' > doc.txt && sed -i 's/world/chain/' doc.txt`, m.dir)
    expect((await sh('cat doc.txt', m.dir)).stdout).toBe('hello chain\n')
    await sh(`printf 'v2\\n' > .doc.txt.swp && mv -f .doc.txt.swp doc.txt`, m.dir)
    expect((await sh('cat doc.txt; ls -a | grep -c swp || true', m.dir)).stdout).toBe('v2\n0\n')
    const { stdout } = await sh(`dd if=/dev/urandom of=${t.home}/rand bs=1M count=3 status=none && cp ${t.home}/rand r && cmp ${t.home}/rand r && truncate -s 100000 r && stat -c %s r && ln -s r lnk && readlink lnk && chmod 600 r && stat -c %a r`, m.dir)
    expect(stdout).toBe('100000\nr\n600\n')
  })

  it('leaves a known plaintext (content and file name) in no file under the FacetFS home', async () => {
    await sh(`mkdir ${SECRET_NAME}-dir && printf '${SECRET_TEXT}%.0s' $(seq 1 50) > ${SECRET_NAME}-dir/${SECRET_NAME}.txt && sync`, m.dir)
    expect((await sh(`cat ${SECRET_NAME}-dir/${SECRET_NAME}.txt`, m.dir)).stdout).toContain(SECRET_TEXT)
    const fh = await vfs.open(`/${SECRET_NAME}-dir/${SECRET_NAME}.txt`)
    await vfs.fsync(fh)
    await vfs.release(fh)
    const files: string[] = []
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name)
        if (p === join(t.home, 'out')) continue
        if (e.isDirectory()) await walk(p)
        else if (e.isFile()) files.push(p)
      }
    }
    await walk(t.home)
    expect(files).toContain(t.path)
    for (const f of files) {
      expect(f).not.toContain(SECRET_NAME)
      // a trust store record being written (a temporary file) may be renamed away meanwhile
      const bytes = await readFile(f).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' && f.endsWith('.tmp') ? Buffer.alloc(0) : Promise.reject(err)))
      for (const needle of [SECRET_TEXT, SECRET_NAME, SECRET_TEXT.slice(0, 16), SECRET_NAME.slice(0, 12)]) {
        expect(bytes.includes(Buffer.from(needle)), `${f} holds '${needle}'`).toBe(false)
        expect(bytes.includes(Buffer.from(needle, 'utf16le')), `${f} holds '${needle}' (utf16)`).toBe(false)
      }
    }
    expect((await stat(t.path)).size).toBeGreaterThan(SECRET_TEXT.length * 50)
  })

  it('keeps hard links, fifos, extended attributes and nanosecond times made with ln, mkfifo, setfattr and touch -d', async () => {
    const script = [
      'mkdir posix && cd posix',
      'printf linked > f && ln f g && mkdir d && ln f d/h && mkfifo p',
      "setfattr -n user.origin -v chain f && getfattr --only-values -n user.origin d/h && echo",
      "TZ=UTC touch -d '2001-02-03 04:05:06.123456789' g",
      "TZ=UTC stat -c '%n %h %F %y' f g d/h p",
      'stat -c %h . d',
      'rm f && stat -c %h g d/h && cat g && echo',
      "getfattr --only-values -n user.origin g && echo",
      'mv d/h h2 && ls d | wc -l && stat -c %h h2',
    ].join(' && ')
    const { stdout } = await sh(script, m.dir)
    expect(stdout.split('\n')).toEqual([
      'chain',
      'f 3 regular file 2001-02-03 04:05:06.123456789 +0000',
      'g 3 regular file 2001-02-03 04:05:06.123456789 +0000',
      'd/h 3 regular file 2001-02-03 04:05:06.123456789 +0000',
      expect.stringMatching(/^p 1 fifo /),
      '3',
      '2',
      '2',
      '2',
      'linked',
      'chain',
      '0',
      '2',
      '',
    ])
    const s = await vfs.stat('/posix/g')
    expect(s).toMatchObject({ nlink: 2, mtimeNs: 981173106123456789n })
    expect(await vfs.lstat('/posix/p')).toMatchObject({ kind: 'fifo' })
  })

  it('reports df figures for the mount', async () => {
    const { stdout } = await sh(`df -P ${m.dir} | tail -1 | awk '{print ($2 > 0)}'`)
    expect(stdout.trim()).toBe('1')
  })
})

describe.skipIf(skip)(`closing files through FUSE and through the API${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('lets closed files join the scheduled group commit through FUSE, while a close through the API waits for its own block', async () => {
    const t = await tempHome()
    // a delay no test outlives: a block now comes only from what forces one
    const chain = await Chain.create(t.path, { identity: testIdentity(), home: t.home, commitDelayMs: 60_000 })
    const vfs = createVfs({ mounts: { '/': chainMount(chain) }, logger: silentLogger })
    const m = await mountForTest(vfs)
    try {
      const before = chain.headSeq
      // 20 files made and closed by another process, one after another
      await sh(`for i in $(seq 1 20); do echo "small file $i" > ${m.dir}/f$i.txt; done`)
      // every close returned and its RELEASE was answered, yet no block was forced
      expect(chain.headSeq).toBe(before)
      expect((await readFile(join(m.dir, 'f7.txt'), 'utf8'))).toBe('small file 7\n')
      // one fsync commits all 20 in one block
      await sh(`sync ${m.dir}/f20.txt`)
      expect(chain.headSeq).toBe(before + 1)
      // the API's close still commits its file and reports how that went
      await vfs.writeFile('/api.txt', 'through the API')
      expect(chain.headSeq).toBe(before + 2)
    } finally {
      await m.unmount()
      await vfs.close()
    }
    const again = await Chain.open(t.path, { identity: testIdentity(), home: t.home, readOnly: true })
    try {
      const names = [...again.tree.names(again.root).keys()].sort()
      expect(names).toEqual(['api.txt', ...Array.from({ length: 20 }, (_, i) => `f${i + 1}.txt`)].sort())
      const reader = createVfs({ mounts: { '/': chainMount(again) }, logger: silentLogger })
      expect((await reader.readFile('/f13.txt')).toString()).toBe('small file 13\n')
      expect((await reader.readFile('/api.txt')).toString()).toBe('through the API')
      await reader.close()
    } finally {
      await again.close().catch(() => {})
      await t.cleanup()
    }
  })
})
