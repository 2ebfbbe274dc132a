import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type Vfs } from '../../src/vfs/vfs.ts'
import { collection, defineView, dir, file } from '../../src/views/index.ts'
import { errnoOf } from '../../src/views/testing.ts'
import { fuseSkip, mountForTest, run, sh, type TestMount } from '../helpers/fuse.ts'

/** A store of text notes that counts every `put` it is given, by content. */
class Notes {
  readonly data = new Map<string, { id: string; body: string }>()
  readonly puts: string[] = []
  /** Called after each put: a test waits on it for an apply that happens at release, after close(2) returned. */
  onPut: (() => void) | undefined
  constructor() {
    this.data.set('a', { id: 'a', body: 'alpha\n' })
    this.data.set('long', { id: 'long', body: 'L'.repeat(5000) + '\n' })
  }
}

/** A store of JSON records that refuses what is not an object with a string `title`. */
class Books {
  readonly data = new Map<string, { id: string; title: string }>([['1', { id: '1', title: 'Dune' }]])
  puts = 0
}

function view(notes: Notes, books: Books) {
  let renders = 0
  return defineView(() => ({
    name: 'contract',
    root: dir({
      notes: collection<{ id: string; body: string }>({
        list: () => [...notes.data.values()],
        key: 'id',
        // a note file is its body, byte for byte
        format: { name: 'note', ext: 'txt', render: n => (n as { body: string }).body, parse: t => ({ body: t }), header: () => '', row: n => (n as { body: string }).body },
        get: id => notes.data.get(id),
        put: (id, n) => {
          notes.puts.push(n.body)
          notes.data.set(id, { id, body: n.body })
          notes.onPut?.()
        },
      }),
      books: collection({
        list: () => [...books.data.values()],
        key: 'id',
        get: id => books.data.get(id),
        schema: {
          '~standard': {
            version: 1,
            vendor: 'test',
            validate: (v: unknown) =>
              v && typeof v === 'object' && !Array.isArray(v) && typeof (v as { title?: unknown }).title === 'string'
                ? { value: v as { id: string; title: string } }
                : { issues: [{ message: 'title: expected a string' }] },
          },
        },
        put: (id, b) => {
          books.puts++
          books.data.set(id, b!)
        },
      }),
      // a new rendering, of another size, every time one is made; the 10 s it serves is longer
      // than any gap between a stat and the cat after it, however loaded the machine
      'counter.txt': file(() => `render ${++renders} ${'x'.repeat(renders % 7)}\n`, { ttlMs: 10_000 }),
    }),
  }))()
}

describe('the write contract of a view, in-process', () => {
  let notes: Notes
  let books: Books
  let vfs: Vfs
  beforeEach(() => {
    notes = new Notes()
    books = new Books()
    vfs = createVfs({ logger: silentLogger, mounts: { '/v': view(notes, books) } })
  })

  it('leaves size and content of a record as they were after a refused writeFile (EINVAL)', async () => {
    const before = await vfs.readFile('/v/books/1.json')
    expect(await errnoOf(vfs.writeFile('/v/books/1.json', '[1,2]'))).toBe('EINVAL')
    expect((await vfs.stat('/v/books/1.json')).size).toBe(before.length)
    expect((await vfs.readFile('/v/books/1.json')).equals(before)).toBe(true)
    expect(books.puts).toBe(0)
    expect((await vfs.readFile('/v/books/.errors')).toString()).toMatch(/^1\.json: EINVAL: /)
  })

  it('shows the committed size to stat while a writer holds unapplied content', async () => {
    const fh = await vfs.open('/v/notes/a.txt', 0o1 | 0o1000)
    await vfs.write(fh, 0, Buffer.from('a much longer body than before\n'))
    expect((await vfs.stat('/v/notes/a.txt')).size).toBe('alpha\n'.length)
    expect((await vfs.fstat(fh)).size).toBe('a much longer body than before\n'.length)
    await vfs.release(fh)
    expect((await vfs.readFile('/v/notes/a.txt')).toString()).toBe('a much longer body than before\n')
    expect(notes.puts).toEqual(['a much longer body than before\n'])
  })

  it('reports a refused apply once, to the flush, and never again at release', async () => {
    const fh = await vfs.open('/v/books/1.json', 0o1 | 0o1000)
    await vfs.write(fh, 0, Buffer.from('{not json'))
    expect(await errnoOf(vfs.flush(fh))).toBe('EINVAL')
    await vfs.release(fh)
    const errors = (await vfs.readFile('/v/books/.errors')).toString()
    expect(errors.split('\n').filter(Boolean)).toHaveLength(1)
    expect((await vfs.readFile('/v/books/1.json')).toString()).toContain('"Dune"')
  })

  it('refuses a chmod that would change a record mode with EPERM, and accepts one that changes nothing', async () => {
    expect(await errnoOf(vfs.chmod('/v/books/1.json', 0o600))).toBe('EPERM')
    expect(await errnoOf(vfs.chmod('/v/books/1.json', 0o644))).toBe('no error')
    expect((await vfs.stat('/v/books/1.json')).mode & 0o777).toBe(0o644)
  })

  it('keeps the time of .errors while it does not change', async () => {
    await errnoOf(vfs.writeFile('/v/books/1.json', 'null'))
    const a = await vfs.stat('/v/books/.errors')
    await new Promise(done => setTimeout(done, 20))
    const b = await vfs.stat('/v/books/.errors')
    expect(b.mtimeMs).toBe(a.mtimeMs)
  })

  it('renders a generated file once for a stat and the open after it, so their sizes agree', async () => {
    for (let i = 0; i < 20; i++) {
      const size = (await vfs.stat('/v/counter.txt')).size
      expect((await vfs.readFile('/v/counter.txt')).length).toBe(size)
    }
  })
})

describe.skipIf(fuseSkip)('the write contract of a view, through FUSE', () => {
  let notes: Notes
  let books: Books
  let vfs: Vfs
  let mount: TestMount
  let m: string

  beforeAll(async () => {
    notes = new Notes()
    books = new Books()
    vfs = createVfs({ logger: silentLogger, mounts: { '/v': view(notes, books) } })
    mount = await mountForTest(vfs)
    m = mount.dir
  })
  afterAll(async () => {
    await mount?.unmount()
    await vfs?.close()
  })

  it('applies one shell write exactly once, never the empty file O_TRUNC leaves', async () => {
    notes.puts.length = 0
    expect((await sh(`printf 'new\\n' > ${m}/v/notes/a.txt`)).code).toBe(0)
    expect(notes.puts).toEqual(['new\n'])
    expect((await run('cat', [`${m}/v/notes/a.txt`])).stdout).toBe('new\n')
  })

  it('records one refusal for one bad shell write of a JSON record, leaving it unchanged', async () => {
    await sh(`rm -f ${m}/v/books/.errors`)
    const before = (await run('cat', [`${m}/v/books/1.json`])).stdout
    await sh(`echo '{broken' > ${m}/v/books/1.json`)
    expect((await run('cat', [`${m}/v/books/1.json`])).stdout).toBe(before)
    expect((await run('cat', [`${m}/v/books/.errors`])).stdout.split('\n').filter(Boolean)).toHaveLength(1)
    expect(books.puts).toBe(0)
  })

  it('applies the empty file of a bare `: >` once, at close', async () => {
    notes.puts.length = 0
    const applied = new Promise<void>(done => (notes.onPut = done))
    expect((await sh(`: > ${m}/v/notes/long.txt`)).code).toBe(0)
    await applied
    notes.onPut = undefined
    expect(notes.puts).toEqual([''])
    notes.data.set('long', { id: 'long', body: 'L'.repeat(5000) + '\n' })
  })

  const rounds = Number(process.env.CONTRACT_ROUNDS ?? 60)
  it(`lets concurrent readers see the old record or the new one whole, never a torn one (${rounds} rounds)`, async () => {
    const long = 'L'.repeat(5000) + '\n'
    const short = 'short\n'
    // one shell rewrites the record while another reads it as fast as it can
    // the shells get the test's own time: the run helper's 10 s kills a loaded machine's loops midway
    const timeoutMs = 20_000 + rounds * 100
    const writer = sh(`for i in $(seq ${rounds}); do printf '${short}' > ${m}/v/notes/long.txt; printf '%s\\n' ${'L'.repeat(5000)} > ${m}/v/notes/long.txt; done`, { timeoutMs })
    const reader = sh(`for i in $(seq ${rounds * 3}); do cat ${m}/v/notes/long.txt | md5sum; done`, { timeoutMs })
    const [w, r] = await Promise.all([writer, reader])
    expect(w.code).toBe(0)
    expect(r.code).toBe(0)
    const { createHash } = await import('node:crypto')
    const ok = new Set([long, short].map(t => createHash('md5').update(t).digest('hex') + '  -'))
    const sums = r.stdout.trim().split('\n')
    expect(sums).toHaveLength(rounds * 3)
    expect(sums.filter(s => !ok.has(s))).toEqual([])
  }, 30_000 + Number(process.env.CONTRACT_ROUNDS ?? 60) * 100)

  it('has stat and cat agree on a generated file, round after round', async () => {
    const out = await sh(`for i in $(seq 30); do s=$(stat -c %s ${m}/v/counter.txt); c=$(cat ${m}/v/counter.txt | wc -c); [ "$s" = "$c" ] || echo "stat=$s cat=$c"; done`, { timeoutMs: 60_000 })
    expect(out).toMatchObject({ code: 0, stdout: '' })
  }, 70_000)

  it('lets tar read a view without "file changed as we read it"', async () => {
    await sh(`echo 'null' > ${m}/v/books/1.json`)
    const t = await run('tar', ['cf', '/dev/null', '-C', `${m}/v`, 'books'])
    expect(t).toMatchObject({ code: 0, stderr: '' })
  })
})

describe('a refused rm of a record', () => {
  it('says why in .errors and .NAME.error, and keeps the record', async () => {
    const keep = new Map([['x', { id: 'x', n: 1 }]])
    const { vfsError } = await import('../../src/vfs/errors.ts')
    const guarded = createVfs({
      logger: silentLogger,
      mounts: {
        '/v': defineView(() => ({
          name: 'guarded',
          root: collection({
            list: () => [...keep.values()],
            key: 'id',
            get: id => keep.get(id),
            put: () => {},
            remove: () => {
              throw vfsError('EINVAL', 'x is referenced by 3 orders')
            },
          }),
        }))(),
      },
    })
    expect(await errnoOf(guarded.unlink('/v/x.json'))).toBe('EINVAL')
    expect((await guarded.readFile('/v/.errors')).toString()).toBe('x.json: EINVAL: x is referenced by 3 orders\n')
    expect((await guarded.readFile('/v/.x.json.error')).toString()).toBe('EINVAL: x is referenced by 3 orders\n')
    expect((await guarded.readdirAll('/v')).map(e => e.name)).toContain('x.json')
    await guarded.close()
  })
})

describe('folders of collections from a function', () => {
  it('set up the collections they return, so their watch reaches the change bus', async () => {
    let emit: ((c: { type: 'update'; key: string }) => void) | undefined
    let unwatched = 0
    const shelf = collection({
      list: () => [{ id: 'x' }],
      key: 'id',
      watch: e => {
        emit = e as never
        return () => void unwatched++
      },
    })
    const v = createVfs({ logger: silentLogger, mounts: { '/v': defineView(() => ({ name: 'shelves', root: dir(() => ({ shelf })) }))() } })
    const events: string[] = []
    v.watch('/v', e => events.push(`${e.type} ${e.path}`))
    expect((await v.readdirAll('/v')).map(e => e.name)).toEqual(['shelf'])
    expect(emit).toBeDefined()
    emit!({ type: 'update', key: 'x' })
    expect(events).toEqual(['update /v/shelf/x.json'])
    await v.close()
    expect(unwatched).toBe(1)
  })
})

describe('moves between collections of one view', () => {
  it('move a record in one change of the store when the view says how, and refuse with EXDEV otherwise', async () => {
    const groups = new Map([
      ['friends', new Map([['ada', { id: 'ada', tel: '1' }]])],
      ['work', new Map<string, { id: string; tel: string }>()],
    ])
    const moves: string[] = []
    const group = (g: string) =>
      collection({
        list: () => [...groups.get(g)!.values()],
        key: 'id',
        get: id => groups.get(g)!.get(id),
        put: (id, r) => void groups.get(g)!.set(id, r as { id: string; tel: string }),
        move: (key, target, newKey) => {
          const to = target === work ? 'work' : 'friends'
          const r = groups.get(g)!.get(key)!
          groups.get(g)!.delete(key)
          groups.get(to)!.set(newKey, { ...r, id: newKey })
          moves.push(`${g}/${key} -> ${to}/${newKey}`)
        },
      })
    const friends = group('friends')
    const work = group('work')
    const other = collection({ list: () => [{ id: 'zed' }], key: 'id', put: () => {} })
    const v = createVfs({ logger: silentLogger, mounts: { '/book': defineView(() => ({ name: 'book', root: dir({ friends, work, other }) }))() } })
    await v.rename('/book/friends/ada.json', '/book/work/ada.json')
    expect(moves).toEqual(['friends/ada -> work/ada'])
    expect((await v.readdirAll('/book/friends')).filter(e => e.name.endsWith('.json'))).toEqual([])
    expect(JSON.parse((await v.readFile('/book/work/ada.json')).toString())).toEqual({ id: 'ada', tel: '1' })
    expect(await errnoOf(v.rename('/book/other/zed.json', '/book/work/zed.json'))).toBe('EXDEV')
    await v.close()
  })
})
