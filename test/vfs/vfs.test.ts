import { constants as fsc } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { createVfs, type ChangeEvent } from '../../src/vfs/vfs.ts'
import { memoryMount } from '../../src/vfs/memory.ts'
import { silentLogger, type Logger } from '../../src/vfs/log.ts'
import { vfsError } from '../../src/vfs/errors.ts'
import type { Mount, ViewContext } from '../../src/vfs/mounts.ts'
import type { VNode } from '../../src/vfs/node.ts'
import { dir, file, symlink } from '../../src/views/view.ts'

const names = (entries: { name: string }[]) => entries.map(e => e.name)

describe('mount table', () => {
  it('lists mount points in their parent directory, nested mounts included', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/': memoryMount(), '/a/b': memoryMount(), '/a/b/c': memoryMount(), '/d': memoryMount() } })
    await vfs.writeFile('/top.txt', 'x')
    expect(names(await vfs.readdirAll('/')).sort()).toEqual(['a', 'd', 'top.txt'])
    expect(names(await vfs.readdirAll('/a'))).toEqual(['b'])
    expect(names(await vfs.readdirAll('/a/b'))).toEqual(['c'])
    expect((await vfs.stat('/a')).kind).toBe('dir')
    await vfs.writeFile('/a/b/c/deep', 'deep')
    expect((await vfs.readFile('/a/b/c/deep')).toString()).toBe('deep')
    expect(names(await vfs.readdirAll('/a/b/c'))).toEqual(['deep'])
  })

  it('synthesises the root when nothing is mounted there', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/x': memoryMount(), '/y': memoryMount() } })
    expect(names(await vfs.readdirAll('/'))).toEqual(['x', 'y'])
    await expect(vfs.writeFile('/z', 'no')).rejects.toMatchObject({ code: 'EROFS' })
  })

  it('shadows an entry of the parent mount with a mount point of the same name', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/': memoryMount() } })
    await vfs.mkdir('/p')
    await vfs.writeFile('/p/hidden', 'under')
    vfs.mount('/p', memoryMount())
    expect(names(await vfs.readdirAll('/'))).toEqual(['p'])
    expect(names(await vfs.readdirAll('/p'))).toEqual([])
    await vfs.unmount('/p')
    expect(names(await vfs.readdirAll('/p'))).toEqual(['hidden'])
  })

  it('refuses a second mount at the same point with EEXIST', () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    expect(() => vfs.mount('/m', memoryMount())).toThrow(/EEXIST: file already exists \(a mount is already there\), mount '\/m'/)
  })

  it('sets a mount up when mounted, and on unmount aborts its signal, disposes it and forgets it', async () => {
    const calls: string[] = []
    let ctx: ViewContext | undefined
    const mount: Mount = {
      ...memoryMount(),
      name: 'tracked',
      setup: c => {
        ctx = c
        calls.push(`setup ${c.mountPoint}`)
        c.signal.addEventListener('abort', () => calls.push('abort'))
      },
      dispose: () => void calls.push(`dispose aborted=${ctx!.signal.aborted}`),
    }
    const vfs = createVfs({ logger: silentLogger, mounts: { '/t': mount } })
    expect(calls).toEqual(['setup /t'])
    expect(vfs.mounts()).toEqual([{ path: '/t', name: 'tracked' }])
    await vfs.unmount('/t')
    expect(calls).toEqual(['setup /t', 'abort', 'dispose aborted=true'])
    expect(vfs.mounts()).toEqual([])
    await expect(vfs.stat('/t')).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(vfs.unmount('/t')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'unmount' })
  })

  it('gives a mount a narrow context, not the whole Vfs: the router\'s figures, and replacing itself', async () => {
    let ctx: ViewContext | undefined
    const first: Mount = { ...memoryMount(), name: 'first', setup: c => void (ctx = c) }
    const vfs = createVfs({ logger: silentLogger, mounts: { '/a': memoryMount(), '/t': first } })
    try {
      expect(Object.keys(ctx!).sort()).toEqual(['changes', 'logger', 'mountPoint', 'replaceWith', 'router', 'signal'])
      expect(ctx!.router.mounts()).toEqual([{ path: '/a', name: 'memory' }, { path: '/t', name: 'first' }])
      expect(Object.keys(ctx!.router.opStats().mounts)).toEqual(['/a', '/t'])
      await ctx!.replaceWith({ ...memoryMount(), name: 'second' })
      expect(ctx!.signal.aborted).toBe(true)
      expect(vfs.mounts()).toEqual([{ path: '/a', name: 'memory' }, { path: '/t', name: 'second' }])
    } finally {
      await vfs.close()
    }
  })

  it('refuses a mount whose name is not kebab-case with EINVAL naming it', async () => {
    const vfs = createVfs({ logger: silentLogger })
    for (const name of ['My View', 'my_view', 'MyView', '-view', 'my--view', 'view-', '']) {
      expect(() => vfs.mount('/v', { name, root: dir({}) })).toThrow(
        `EINVAL: invalid argument (the view name '${name}' is not kebab-case: use lower-case letters and digits, words joined by single dashes, e.g. 'my-view'), mount '/v'`,
      )
    }
    expect(() => vfs.mount('/v', { name: undefined as unknown as string, root: dir({}) })).toThrow(
      "EINVAL: invalid argument (a view needs a `name` (a kebab-case string such as 'my-view')), mount '/v'",
    )
    vfs.mount('/ok', { name: 'my-view-2', root: dir({}) })
    await expect(vfs.replace('/ok', { name: 'Bad', root: dir({}) })).rejects.toThrow(/the view name 'Bad' is not kebab-case.*, replace '\/ok'$/)
    expect(vfs.mounts()).toEqual([{ path: '/ok', name: 'my-view-2' }])
  })

  it('replaces a mount in place while a handle on the old one keeps reading', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/v': { name: 'v1', root: dir({ 'f.txt': file('one\n') }) } } })
    const fh = await vfs.open('/v/f.txt')
    await vfs.replace('/v', { name: 'v2', root: dir({ 'f.txt': file('two\n') }) })
    expect(Buffer.from(await vfs.read(fh, 0, 100)).toString()).toBe('one\n')
    await vfs.release(fh)
    expect((await vfs.readFile('/v/f.txt')).toString()).toBe('two\n')
    expect(vfs.mounts()).toEqual([{ path: '/v', name: 'v2' }])
  })
})

describe('paths and symlinks', () => {
  it('normalises dots and repeated slashes', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    await vfs.writeFile('//m/./a', 'x')
    expect((await vfs.stat('/m/b/../a')).size).toBe(1)
  })

  it('follows relative symlinks in the middle and at the end of a path, and lstat does not', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    await vfs.mkdir('/m/real')
    await vfs.writeFile('/m/real/f', 'through')
    await vfs.symlink('real', '/m/link')
    await vfs.symlink('link/f', '/m/flink')
    expect((await vfs.readFile('/m/link/f')).toString()).toBe('through')
    expect((await vfs.readFile('/m/flink')).toString()).toBe('through')
    expect((await vfs.lstat('/m/flink')).kind).toBe('symlink')
    expect((await vfs.lstat('/m/flink')).size).toBe(6)
    expect(await vfs.readlink('/m/flink')).toBe('link/f')
  })

  it('follows an absolute symlink target as a VFS path across mounts', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/a': memoryMount(), '/b': memoryMount() } })
    await vfs.writeFile('/b/target', 'from b')
    await vfs.symlink('/b/target', '/a/abs')
    expect((await vfs.readFile('/a/abs')).toString()).toBe('from b')
  })
})

describe('handles', () => {
  it('appends at the end with O_APPEND whatever offset is given', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    await vfs.writeFile('/m/log', 'one\n')
    const fh = await vfs.open('/m/log', fsc.O_WRONLY | fsc.O_APPEND)
    await vfs.write(fh, 0, Buffer.from('two\n'))
    await vfs.release(fh)
    expect((await vfs.readFile('/m/log')).toString()).toBe('one\ntwo\n')
  })

  it('empties a file opened with O_TRUNC and reads holes as zeros', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    await vfs.writeFile('/m/f', 'long content')
    const fh = await vfs.open('/m/f', fsc.O_RDWR | fsc.O_TRUNC)
    expect((await vfs.fstat(fh)).size).toBe(0)
    await vfs.write(fh, 4, Buffer.from('x'))
    expect([...(await vfs.read(fh, 0, 10))]).toEqual([0, 0, 0, 0, 120])
    await vfs.ftruncate(fh, 8)
    expect((await vfs.fstat(fh)).size).toBe(8)
    await vfs.release(fh)
    expect(vfs.openHandles).toBe(0)
  })

  it('refuses reads on a write-only handle and writes on a read-only one with EBADF', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    await vfs.writeFile('/m/f', 'x')
    const ro = await vfs.open('/m/f', fsc.O_RDONLY)
    const wo = await vfs.open('/m/f', fsc.O_WRONLY)
    await expect(vfs.write(ro, 0, Buffer.from('y'))).rejects.toMatchObject({ code: 'EBADF', syscall: 'write', path: '/m/f' })
    await expect(vfs.read(wo, 0, 1)).rejects.toMatchObject({ code: 'EBADF', syscall: 'read' })
    await vfs.release(ro)
    await vfs.release(wo)
    await expect(vfs.release(wo)).rejects.toMatchObject({ code: 'EBADF' })
  })

  it('refuses a single transfer over 16 MiB with EINVAL', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    const fh = await vfs.create('/m/f')
    await expect(vfs.write(fh, 0, new Uint8Array(16 * 1024 * 1024 + 1))).rejects.toMatchObject({ code: 'EINVAL' })
    await vfs.release(fh)
    expect((await vfs.stat('/m/f')).size).toBe(0)
  })

  it('writes and reads back a file larger than one transfer', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    const data = Buffer.alloc(40 * 1024 * 1024)
    for (let i = 0; i < data.length; i += 4096) data[i] = i % 251
    await vfs.writeFile('/m/big', data)
    expect((await vfs.stat('/m/big')).size).toBe(data.length)
    expect((await vfs.readFile('/m/big')).equals(data)).toBe(true)
  })
})

describe('paged readdir', () => {
  it('pages through a directory with cursors and lists each entry once', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    for (let i = 0; i < 25; i++) await vfs.writeFile(`/m/f${i}`, '')
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await vfs.readdir('/m', { limit: 10, cursor })
      seen.push(...names(page.entries))
      cursor = page.cursor
      pages++
    } while (cursor)
    expect(pages).toBe(3)
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `f${i}`))
  })
})

describe('change events', () => {
  it('emits create, update, rename and delete for mutations under the watched prefix only', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount(), '/n': memoryMount() } })
    const events: ChangeEvent[] = []
    const stop = vfs.watch('/m', e => events.push(e))
    await vfs.writeFile('/m/a', '1')
    await vfs.writeFile('/n/ignored', '1')
    await vfs.mkdir('/m/d')
    await vfs.rename('/m/a', '/m/d/b')
    await vfs.chmod('/m/d/b', 0o600)
    await vfs.unlink('/m/d/b')
    stop()
    await vfs.rmdir('/m/d')
    expect(events.map(e => [e.type, e.path, e.oldPath ?? null])).toEqual([
      ['create', '/m/a', null],
      ['update', '/m/a', null],
      ['create', '/m/d', null],
      ['rename', '/m/d/b', '/m/a'],
      ['update', '/m/d/b', null],
      ['delete', '/m/d/b', null],
    ])
    expect(events.every(e => e.mount === '/m')).toBe(true)
  })

  it('turns a change reported by a mount into an event with the full path', async () => {
    let host: ViewContext | undefined
    const mount: Mount = { name: 'ext', root: dir({}), setup: h => void (host = h) }
    const vfs = createVfs({ logger: silentLogger, mounts: { '/ext': mount } })
    const events: ChangeEvent[] = []
    vfs.watch('/', e => events.push(e))
    host!.changes.emit({ type: 'update', path: '/rec/1.json', kind: 'file' })
    expect(host!.mountPoint).toBe('/ext')
    expect(events).toEqual([{ type: 'update', path: '/ext/rec/1.json', kind: 'file', mount: '/ext' }])
  })
})

describe('errors from mounts', () => {
  it('reports an unexpected error as EIO, logs its stack, and never shows its text', async () => {
    const logged: unknown[] = []
    const logger: Logger = { ...silentLogger, error: obj => void logged.push(obj) }
    const broken: VNode = { kind: 'file', getattr: () => { throw new Error('secret connection string') } } as VNode
    const vfs = createVfs({ logger, mounts: { '/b': { name: 'b', root: dir({ f: broken }) } } })
    const err = await vfs.stat('/b/f').catch((e: unknown) => e as Error)
    expect(err).toMatchObject({ code: 'EIO', errno: 5, syscall: 'stat', path: '/b/f' })
    expect(String(err)).toBe("VfsError: EIO: i/o error, stat '/b/f'")
    expect((logged[0] as { err: Error }).err.stack).toContain('secret connection string')
  })

  it('keeps the detail of an error a mount throws on purpose', async () => {
    const picky: VNode = { kind: 'file', getattr: () => { throw vfsError('EINVAL', 'title: expected string') } } as VNode
    const vfs = createVfs({ logger: silentLogger, mounts: { '/p': { name: 'p', root: dir({ f: picky, l: symlink('f') }) } } })
    await expect(vfs.stat('/p/l')).rejects.toThrow("EINVAL: invalid argument (title: expected string), stat '/p/l'")
  })
})

describe('memory mount', () => {
  it('reports space used and free through statfs', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount({ maxBytes: 1 << 24 }) } })
    const before = await vfs.statfs('/m')
    await vfs.writeFile('/m/f', new Uint8Array(1 << 20))
    const after = await vfs.statfs('/m')
    expect(before.blocks).toBe(4096)
    expect(before.bfree - after.bfree).toBeGreaterThanOrEqual(256)
    await vfs.unlink('/m/f')
    expect((await vfs.statfs('/m')).bfree).toBe(before.bfree)
  })

  it('keeps mode, owner and times set through chmod, chown and utimens', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    await vfs.writeFile('/m/f', 'x')
    await vfs.chmod('/m/f', 0o4600)
    await vfs.chown('/m/f', 1000, -1)
    await vfs.utimens('/m/f', 1_000_000, 2_000_000)
    const st = await vfs.stat('/m/f')
    // chown clears the setuid bit, as POSIX asks
    expect(st.mode).toBe(0o100600)
    expect([st.uid, st.gid]).toEqual([1000, process.getgid!()])
    expect([st.atimeMs, st.mtimeMs]).toEqual([1_000_000, 2_000_000])
  })

  it('renames a file over an existing one and a directory over an empty one', async () => {
    const vfs = createVfs({ logger: silentLogger, mounts: { '/m': memoryMount() } })
    await vfs.writeFile('/m/a', 'new')
    await vfs.writeFile('/m/b', 'old')
    await vfs.rename('/m/a', '/m/b')
    expect((await vfs.readFile('/m/b')).toString()).toBe('new')
    await vfs.mkdir('/m/d1')
    await vfs.writeFile('/m/d1/in', 'i')
    await vfs.mkdir('/m/d2')
    await vfs.rename('/m/d1', '/m/d2')
    expect(names(await vfs.readdirAll('/m')).sort()).toEqual(['b', 'd2'])
    expect((await vfs.readFile('/m/d2/in')).toString()).toBe('i')
  })
})
