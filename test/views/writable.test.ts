import { constants as fsc } from 'node:fs'
import { readFile as readHostFile } from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { createVfs, silentLogger, vfsError, type Vfs, type VNode } from '../../src/index.ts'
import { collection, dir, file } from '../../src/views/index.ts'
import type { NodeCreate } from '../../src/vfs/node.ts'
import { startedMs } from '../../src/views/view.ts'
import { dirFrom, fileFrom, symlinkFrom, type DirCapabilities } from '../../src/views/writable.ts'
import { errnoOf } from '../../src/views/testing.ts'
import { fuseSkip, mountForTest, sh, type TestMount } from '../helpers/fuse.ts'

/** Notes in memory, one file each, in two folders; a note with "forbidden" in it is refused with EINVAL. */
function notesView() {
  const folders = { inbox: new Map<string, string>([['a.txt', 'alpha\n']]), done: new Map<string, string>() }
  const writes: string[] = []
  const nodes = new Map<string, VNode>()
  const note = (folder: Map<string, string>, name: string): VNode => {
    const key = `${folder === folders.inbox ? 'inbox' : 'done'}/${name}`
    let node = nodes.get(key)
    if (!node) {
      node = fileFrom({
        read: () => folder.get(name) ?? '',
        write: content => {
          const text = content.toString()
          if (text.includes('forbidden')) throw vfsError('EINVAL', 'notes may not say forbidden')
          writes.push(`${key}=${JSON.stringify(text)}`)
          folder.set(name, text)
        },
      })
      nodes.set(key, node)
    }
    return node
  }
  const of = new Map<DirCapabilities, Map<string, string>>()
  const folder = (notes: Map<string, string>): VNode => {
    const caps: DirCapabilities = {
      readdir: () => Object.fromEntries([...notes.keys()].sort().map(n => [n, note(notes, n)])),
      create: name => (notes.set(name, ''), note(notes, name)),
      unlink: name => void notes.delete(name),
      rename: (name, to, newName) => {
        const dest = of.get(to)!
        dest.set(newName, notes.get(name)!)
        notes.delete(name)
      },
    }
    of.set(caps, notes)
    return dirFrom(caps)
  }
  /** A writable folder not made by dirFrom. */
  const otherDir: VNode & NodeCreate = { kind: 'dir', create: () => file('') }
  const root = dir({ inbox: folder(folders.inbox), done: folder(folders.done), fixed: dir({ 'x.txt': file('x') }), other: otherDir })
  return { view: { name: 'notes', root }, folders, writes }
}

describe('dirFrom, fileFrom and symlinkFrom', () => {
  let vfs: Vfs | undefined
  afterEach(async () => {
    await vfs?.close()
    vfs = undefined
  })
  const mount = (root: VNode) => (vfs = createVfs({ logger: silentLogger, mounts: { '/v': { name: 'v', root } } }))

  it('fills the attributes left out: size from the content, the caller as owner, the start time', async () => {
    const v = mount(dirFrom({ readdir: () => ({ 'r.txt': fileFrom({ read: () => 'héllo\n' }), 'l': symlinkFrom({ readlink: () => '../target' }) }) }))
    const st = await v.stat('/v/r.txt', { uid: 1234, gid: 5678 })
    expect({ mode: st.mode, size: st.size, uid: st.uid, gid: st.gid, mtimeMs: st.mtimeMs, atimeMs: st.atimeMs, ctimeMs: st.ctimeMs, nlink: st.nlink }).toEqual({
      mode: 0o100444,
      size: 7,
      uid: 1234,
      gid: 5678,
      mtimeMs: startedMs,
      atimeMs: startedMs,
      ctimeMs: startedMs,
      nlink: 1,
    })
    const l = await v.lstat('/v/l')
    expect([l.mode, l.size]).toEqual([0o120777, 9])
    const d = await v.stat('/v')
    expect([d.mode, d.size, d.nlink, d.mtimeMs]).toEqual([0o40555, 4096, 2, startedMs])
  })

  it('uses the attributes given, a missing time taken from mtimeMs, and calls a function of them on each stat', async () => {
    let size = 3
    const v = mount(
      dirFrom({
        readdir: () => ({
          'given.txt': fileFrom({ read: () => 'never read', attributes: { mode: 0o600, size: 42, uid: 7, gid: 8, mtimeMs: 1_000_000 } }),
          'live.txt': fileFrom({ attributes: () => ({ size, mtimeMs: size * 1000 }) }),
        }),
      }),
    )
    const st = await v.stat('/v/given.txt')
    expect([st.mode, st.size, st.uid, st.gid, st.mtimeMs, st.atimeMs, st.ctimeMs]).toEqual([0o100600, 42, 7, 8, 1_000_000, 1_000_000, 1_000_000])
    expect((await v.stat('/v/live.txt')).size).toBe(3)
    size = 5
    expect([(await v.stat('/v/live.txt')).size, (await v.stat('/v/live.txt')).mtimeMs]).toEqual([5, 5000])
  })

  it('gives write bits only to what has a function that changes it', async () => {
    const v = mount(
      dirFrom({
        readdir: () => ({
          'ro.txt': fileFrom({ read: () => 'r' }),
          'rw.txt': fileFrom({ read: () => 'w', write: () => {} }),
          'ranged.txt': fileFrom({ open: () => ({}) }),
          'ro-dir': dirFrom({ readdir: () => [] }),
          'unlink-only': dirFrom({ unlink: () => {} }),
          'create-only': dirFrom({ create: () => fileFrom({}) }),
        }),
      }),
    )
    const modes: Record<string, string> = {}
    for (const name of ['ro.txt', 'rw.txt', 'ranged.txt', 'ro-dir', 'unlink-only', 'create-only']) modes[name] = ((await v.stat(`/v/${name}`)).mode & 0o7777).toString(8)
    expect(modes).toEqual({ 'ro.txt': '444', 'rw.txt': '644', 'ranged.txt': '644', 'ro-dir': '555', 'unlink-only': '755', 'create-only': '755' })
  })

  it('refuses what a node has no function for: a write with EROFS, a mkdir with EROFS, a chmod with EROFS, a lookup of an unknown name with ENOENT', async () => {
    const v = mount(dirFrom({ readdir: () => ({ 'ro.txt': fileFrom({ read: () => 'same\n' }) }) }))
    expect(await errnoOf(v.writeFile('/v/ro.txt', 'x'))).toBe('EROFS')
    expect(await errnoOf(v.open('/v/ro.txt', fsc.O_WRONLY))).toBe('EROFS')
    expect(await errnoOf(v.truncate('/v/ro.txt', 0))).toBe('EROFS')
    expect(await errnoOf(v.mkdir('/v/new'))).toBe('EROFS')
    expect(await errnoOf(v.writeFile('/v/new.txt', 'x'))).toBe('EROFS')
    expect(await errnoOf(v.unlink('/v/ro.txt'))).toBe('EROFS')
    expect(await errnoOf(v.chmod('/v/ro.txt', 0o600))).toBe('EROFS')
    expect(await errnoOf(v.stat('/v/missing'))).toBe('ENOENT')
    expect(String(await v.readFile('/v/ro.txt'))).toBe('same\n')
  })

  it('gives the EROFS of a write to a read-only file its readOnlyReason', async () => {
    const v = mount(dirFrom({ readdir: () => ({ 'sealed.txt': fileFrom({ read: () => 's', readOnlyReason: 'sealed files stay as they are' }) }) }))
    const err = await v.writeFile('/v/sealed.txt', 'x').catch((e: Error) => e)
    expect((err as Error).message).toBe("EROFS: read-only file system (sealed files stay as they are), open '/v/sealed.txt'")
  })

  it('maps errors: a vfsError keeps its code and reason, a Node system error its code, anything else is EIO', async () => {
    const v = mount(
      dirFrom({
        readdir: () => ({
          'refuses.txt': fileFrom({
            read: () => 'ok\n',
            write: () => {
              throw vfsError('EINVAL', 'expected a number')
            },
          }),
          'host.txt': fileFrom({ read: () => readHostFile('/nonexistent/facet-writable-test') }),
          'broken.txt': fileFrom({
            read: () => {
              throw new Error('secret detail')
            },
          }),
        }),
      }),
    )
    const refused = await v.writeFile('/v/refuses.txt', 'x').catch((e: Error) => e)
    expect((refused as Error).message).toBe("EINVAL: invalid argument (expected a number), close '/v/refuses.txt'")
    expect(await errnoOf(v.readFile('/v/host.txt'))).toBe('ENOENT')
    const broken = await v.readFile('/v/broken.txt').catch((e: Error) => e)
    expect((broken as Error).message).toBe("EIO: i/o error, open '/v/broken.txt'")
    expect(String(await v.readFile('/v/refuses.txt'))).toBe('ok\n')
  })

  it('passes a whole new content to write once per close: create, overwrite, append, truncate', async () => {
    const { view, folders, writes } = notesView()
    const v = (vfs = createVfs({ logger: silentLogger, mounts: { '/n': view } }))
    expect(((await v.stat('/n/inbox')).mode & 0o777).toString(8)).toBe('755')
    await v.writeFile('/n/inbox/b.txt', 'bravo\n')
    expect(folders.inbox.get('b.txt')).toBe('bravo\n')
    const fh = await v.open('/n/inbox/a.txt', fsc.O_WRONLY | fsc.O_APPEND)
    await v.write(fh, 0, Buffer.from('more\n'))
    expect((await v.fstat(fh)).size).toBe(11)
    expect(folders.inbox.get('a.txt')).toBe('alpha\n')
    await v.release(fh)
    expect(folders.inbox.get('a.txt')).toBe('alpha\nmore\n')
    expect((await v.stat('/n/inbox/a.txt')).size).toBe(11)
    await v.truncate('/n/inbox/a.txt', 3)
    expect(folders.inbox.get('a.txt')).toBe('alp')
    const rd = await v.open('/n/inbox/a.txt', fsc.O_RDONLY)
    await v.release(rd)
    expect(writes).toEqual(['inbox/b.txt="bravo\\n"', 'inbox/a.txt="alpha\\nmore\\n"', 'inbox/a.txt="alp"'])
  })

  it('stores nothing when write refuses, and keeps the old content', async () => {
    const { view, folders } = notesView()
    const v = (vfs = createVfs({ logger: silentLogger, mounts: { '/n': view } }))
    expect(await errnoOf(v.writeFile('/n/inbox/a.txt', 'forbidden\n'))).toBe('EINVAL')
    expect(folders.inbox.get('a.txt')).toBe('alpha\n')
    expect(String(await v.readFile('/n/inbox/a.txt'))).toBe('alpha\n')
  })

  it('renames within a folder and into another, handing rename the destination capabilities; EXDEV into a folder not made by dirFrom', async () => {
    const { view, folders } = notesView()
    const v = (vfs = createVfs({ logger: silentLogger, mounts: { '/n': view } }))
    await v.rename('/n/inbox/a.txt', '/n/inbox/a2.txt')
    await v.rename('/n/inbox/a2.txt', '/n/done/a3.txt')
    expect([[...folders.inbox.keys()], [...folders.done.entries()]]).toEqual([[], [['a3.txt', 'alpha\n']]])
    expect((await v.readdirAll('/n/done')).map(e => e.name)).toEqual(['a3.txt'])
    expect(await errnoOf(v.rename('/n/done/a3.txt', '/n/other/a3.txt'))).toBe('EXDEV')
    await v.unlink('/n/done/a3.txt')
    expect(folders.done.size).toBe(0)
  })

  it('cuts pages from one readdir answer, and finds children in it without a lookup', async () => {
    let calls = 0
    const names = Array.from({ length: 5 }, (_, i) => `f${i}`)
    const v = mount(
      dirFrom({
        readdir: () => {
          calls++
          return names.map(name => ({ name, kind: 'file' as const }))
        },
        lookup: name => (names.includes(name) ? fileFrom({ read: () => name }) : undefined),
      }),
    )
    const seen: string[] = []
    let page = await v.readdir('/v', { limit: 2 })
    seen.push(...page.entries.map(e => e.name))
    while (page.cursor !== undefined) {
      names.push('late')
      page = await v.readdir('/v', { limit: 2, cursor: page.cursor })
      seen.push(...page.entries.map(e => e.name))
    }
    expect([seen, calls]).toEqual([['f0', 'f1', 'f2', 'f3', 'f4'], 1])
    expect(String(await v.readFile('/v/f3'))).toBe('f3')
    expect(await errnoOf(v.readdir('/v', { cursor: 'nonsense' }))).toBe('EINVAL')
  })

  it('passes the router pages to readdirPage as they are, for a folder too large to list at once', async () => {
    const asked: string[] = []
    const v = mount(
      dirFrom({
        readdirPage: ({ limit, cursor }) => {
          asked.push(`${limit}@${cursor ?? 'start'}`)
          const from = Number(cursor ?? 0)
          const entries = Array.from({ length: Math.min(limit, 5 - from) }, (_, i) => ({ name: `n${from + i}`, kind: 'file' as const }))
          return from + entries.length < 5 ? { entries, cursor: String(from + entries.length) } : { entries }
        },
      }),
    )
    const first = await v.readdir('/v', { limit: 3 })
    const rest = await v.readdir('/v', { limit: 3, cursor: first.cursor! })
    expect([first.entries.map(e => e.name), first.cursor, rest.entries.map(e => e.name), rest.cursor, asked]).toEqual([['n0', 'n1', 'n2'], '3', ['n3', 'n4'], undefined, ['3@start', '3@3']])
  })

  it('sets up the collections its readdir returns and its own lifecycle, and disposes both on unmount', async () => {
    const log: string[] = []
    const books = collection({
      list: () => [{ id: 'b1' }],
      key: 'id',
      watch: () => (log.push('watch'), () => log.push('unwatch')),
    })
    const v = mount(
      dir({
        shelf: dirFrom({
          readdir: () => ({ books }),
          setup: ctx => void log.push(`setup ${ctx.path}`),
          dispose: () => void log.push('dispose shelf'),
        }),
        'f.txt': fileFrom({ read: () => 'f', setup: ctx => void log.push(`setup ${ctx.path}`), dispose: () => void log.push('dispose f') }),
      }),
    )
    expect(log).toEqual(['setup /shelf', 'setup /f.txt'])
    expect((await v.readdirAll('/v/shelf/books')).map(e => e.name)).toEqual(['b1.json'])
    expect(log).toEqual(['setup /shelf', 'setup /f.txt', 'watch'])
    await v.close()
    vfs = undefined
    expect(log.slice(3).sort()).toEqual(['dispose f', 'dispose shelf', 'unwatch'])
  })
})

describe.skipIf(fuseSkip)('dirFrom and fileFrom through a real FUSE mount', () => {
  let vfs: Vfs | undefined
  let mnt: TestMount | undefined
  afterEach(async () => {
    await mnt?.unmount()
    await vfs?.close()
    mnt = undefined
    vfs = undefined
  })

  it('serves echo >, cat, ls -l, mv and rm from the shell, and a refused write fails the shell command with its reason', async () => {
    const { view, folders } = notesView()
    vfs = createVfs({ logger: silentLogger, mounts: { '/n': view } })
    mnt = await mountForTest(vfs)
    const m = `${mnt.dir}/n`
    expect(await sh(`echo hello > ${m}/inbox/b.txt`)).toMatchObject({ code: 0, stderr: '' })
    expect(folders.inbox.get('b.txt')).toBe('hello\n')
    expect((await sh(`cat ${m}/inbox/b.txt`)).stdout).toBe('hello\n')
    expect((await sh(`echo again >> ${m}/inbox/b.txt && cat ${m}/inbox/b.txt`)).stdout).toBe('hello\nagain\n')
    expect((await sh(`ls -l ${m}/inbox | tail -n +2 | awk '{print $1, $5, $9}'`)).stdout).toBe('-rw-r--r-- 6 a.txt\n-rw-r--r-- 12 b.txt\n')
    expect(await sh(`mv ${m}/inbox/b.txt ${m}/done/b.txt`)).toMatchObject({ code: 0, stderr: '' })
    expect((await sh(`ls ${m}/inbox ${m}/done`)).stdout).toBe(`${m}/done:\nb.txt\n\n${m}/inbox:\na.txt\n`)
    expect(await sh(`rm ${m}/done/b.txt`)).toMatchObject({ code: 0, stderr: '' })
    expect([[...folders.inbox.keys()], [...folders.done.keys()]]).toEqual([['a.txt'], []])
    // bash ignores the close of a redirection; tee reports it
    const refused = await sh(`echo forbidden | tee ${m}/inbox/a.txt > /dev/null`)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toBe(`tee: ${m}/inbox/a.txt: Invalid argument\n`)
    expect((await sh(`cat ${m}/inbox/a.txt`)).stdout).toBe('alpha\n')
  })
})
