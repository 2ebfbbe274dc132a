import { constants as fsc } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { createVfs, silentLogger, vfsError, type Vfs } from '../../src/index.ts'
import { mountStats } from '../../src/vfs/mounts.ts'
import { collection, defineView, type View } from '../../src/views/index.ts'
import { runViewConformance, errnoOf as errno } from '../../src/views/testing.ts'
import { liveHeapUsed } from '../helpers/heap.ts'
import { sampleUsers, UserStore, usersView } from './helpers.ts'

runViewConformance('collection (json, zod)', () => usersView({ store: new UserStore(sampleUsers), maxWriteBytes: 4096 }), {
  expectNames: ['alice.json', 'bob.json', 'carol.json', 'all.csv', 'all.ndjson'],
  write: {
    existing: 'alice.json',
    valid: '{"id":"alice","name":"Alice B","age":32}',
    readBack: JSON.stringify({ id: 'alice', name: 'Alice B', age: 32, version: 2 }, null, 2) + '\n',
    invalid: ['{"id":"alice",', '{"id":"alice","name":"","age":1}', '{"id":"alice","name":"A","age":-1}', '', '[1,2]', '{"id":"bob","name":"B","age":1}'],
    create: { name: 'dave.json', content: '{"name":"Dave","age":50}', readBack: JSON.stringify({ id: 'dave', name: 'Dave', age: 50, version: 1 }, null, 2) + '\n' },
    remove: true,
    maxWriteBytes: 4096,
  },
})

runViewConformance('collection (yaml)', () => usersView({ store: new UserStore(sampleUsers), format: 'yaml' }), {
  expectNames: ['alice.yaml'],
  write: {
    existing: 'bob.yaml',
    valid: 'id: bob\nname: Bobby\nage: 43\n',
    readBack: 'id: bob\nname: Bobby\nage: 43\nversion: 2\n',
    invalid: ['id: bob\nname: [unclosed\n', 'id: bob\nname: Bob\nage: old\n', 'id: bob\nid: bob\n'],
  },
})

runViewConformance('collection (csv)', () => usersView({ store: new UserStore(sampleUsers), format: 'csv' }), {
  write: {
    existing: 'carol.csv',
    valid: 'id,name,age\ncarol,Carol K,28\n',
    readBack: 'id,name,age,version\ncarol,Carol K,28,2\n',
    invalid: ['id,name,age\ncarol,"unterminated,28\n', 'id,name,age\ncarol,C,28\nx,y,1\n', 'id,name,age\ncarol,C,minus\n'],
  },
})

runViewConformance('collection (read-only, async iterable)', () =>
  defineView(() => ({
    name: 'numbers',
    root: collection({
      list: async function* () {
        for (let i = 0; i < 25; i++) yield { n: i, square: i * i }
      },
      key: r => String(r.n),
      format: 'yaml',
    }),
  }))(),
)

describe('collection', () => {
  let vfs: Vfs | undefined
  afterEach(async () => {
    await vfs?.close()
    vfs = undefined
  })
  let view: View | undefined
  const mount = (store: UserStore, format?: 'json' | 'yaml' | 'csv' | 'md' | 'text' | 'ndjson') => {
    view = usersView(format ? { store, format } : { store })
    vfs = createVfs({ mounts: { '/users': view }, logger: silentLogger })
    return vfs
  }

  it('looks up one record with get and never lists the source', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    const text = (await v.readFile('/users/bob.json')).toString()
    expect(JSON.parse(text)).toEqual({ id: 'bob', name: 'Bob', age: 42, version: 1 })
    expect(store.calls.list).toBe(0)
    expect(store.calls.get).toBeGreaterThan(0)
  })

  it('renders each record once while its version is unchanged', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    for (let i = 0; i < 5; i++) await v.stat('/users/alice.json')
    const stats = mountStats(view!)['/']!
    expect(stats.misses).toBe(1)
    expect(stats.hits).toBe(4)
  })

  it('shows a change made underneath after the source reports it, as an update event', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    const events: string[] = []
    v.watch('/', e => events.push(`${e.type} ${e.path}`))
    await v.readFile('/users/alice.json')
    store.touchOutside('alice', { name: 'Alicia' })
    expect(events).toEqual(['update /users/alice.json'])
    expect(JSON.parse((await v.readFile('/users/alice.json')).toString()).name).toBe('Alicia')
  })

  it('refuses a write to a record changed underneath since open with EAGAIN and keeps the other change', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    const fh = await v.open('/users/alice.json', fsc.O_WRONLY | fsc.O_TRUNC)
    await v.write(fh, 0, Buffer.from('{"id":"alice","name":"Mine","age":1}'))
    store.touchOutside('alice', { name: 'Theirs' })
    expect(await errno(v.flush(fh))).toBe('EAGAIN')
    expect(store.rows.get('alice')!.name).toBe('Theirs')
    expect((await v.readFile('/users/.alice.json.error')).toString()).toMatch(/^EAGAIN: 'alice.json' changed since it was opened/)
  })

  it('keeps the reason of a refused write readable in .<name>.error and .errors, and clears it on the next good write', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    expect(await errno(v.writeFile('/users/bob.json', '{"id":"bob","name":"Bob","age":"x"}'))).toBe('EINVAL')
    const reason = (await v.readFile('/users/.bob.json.error')).toString()
    expect(reason).toMatch(/^EINVAL: invalid record: age: /)
    expect((await v.readFile('/users/.errors')).toString()).toBe(`bob.json: ${reason}`)
    expect((await v.readdirAll('/users')).map(e => e.name)).toContain('.bob.json.error')
    await v.writeFile('/users/bob.json', '{"id":"bob","name":"Bob","age":43}')
    expect(await errno(v.stat('/users/.bob.json.error'))).toBe('ENOENT')
  })

  it('applies a temporary file renamed onto a record, as sed -i and editors do', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    await v.writeFile('/users/sedX1y2Z3', '{"id":"carol","name":"Caroline","age":27}')
    expect((await v.readdirAll('/users')).map(e => e.name)).toContain('sedX1y2Z3')
    await v.rename('/users/sedX1y2Z3', '/users/carol.json')
    expect(store.rows.get('carol')!.name).toBe('Caroline')
    expect(await errno(v.stat('/users/sedX1y2Z3'))).toBe('ENOENT')
  })

  it('refuses a bad temporary file renamed onto a record with EINVAL and keeps both', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    await v.writeFile('/users/.carol.json.swp', '{"id":"carol"')
    expect(await errno(v.rename('/users/.carol.json.swp', '/users/carol.json'))).toBe('EINVAL')
    expect(store.rows.get('carol')!.name).toBe('Carol')
    expect((await v.stat('/users/.carol.json.swp')).size).toBe(13)
  })

  it('re-keys a record with mv and refuses a move out of the collection with EXDEV', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    await v.rename('/users/bob.json', '/users/robert.json')
    expect([...store.rows.keys()].sort()).toEqual(['alice', 'carol', 'robert'])
    expect(JSON.parse((await v.readFile('/users/robert.json')).toString()).id).toBe('robert')
  })

  it('refuses a 50 MiB write with EFBIG and changes nothing', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    const fh = await v.open('/users/alice.json', fsc.O_WRONLY | fsc.O_TRUNC)
    let code = 'no error'
    for (let off = 0; off < 50 << 20 && code === 'no error'; off += 1 << 20) code = await errno(v.write(fh, off, Buffer.alloc(1 << 20, 0x41)))
    expect(code).toBe('EFBIG')
    expect(await errno(v.release(fh))).toBe('EFBIG')
    expect(store.rows.get('alice')!.name).toBe('Alice')
    expect(store.calls.put).toBe(0)
  })

  it('streams whole-collection files whose stat size matches their content', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    const csv = (await v.readFile('/users/all.csv')).toString()
    expect(csv).toBe('id,name,age,version\nalice,Alice,31,1\nbob,Bob,42,1\ncarol,Carol,27,1\n')
    expect((await v.stat('/users/all.csv')).size).toBe(Buffer.byteLength(csv))
    const nd = (await v.readFile('/users/all.ndjson')).toString().trim().split('\n')
    expect(nd.map(l => JSON.parse(l).id)).toEqual(['alice', 'bob', 'carol'])
    await v.writeFile('/users/alice.json', '{"id":"alice","name":"Al","age":31}')
    expect((await v.readFile('/users/all.csv')).toString()).toContain('alice,Al,31,2\n')
    expect(await errno(v.writeFile('/users/all.csv', 'x'))).toBe('EROFS')
  })

  it('renders markdown with front matter and parses the body back', async () => {
    const notes = new Map([['hello', { slug: 'hello', title: 'Hello', body: '# Hi\n\nSome text.\n' }]])
    const view = defineView(() => ({
      name: 'notes',
      root: collection({
        list: () => [...notes.values()],
        key: 'slug',
        format: 'md',
        get: k => notes.get(k),
        put: (k, n) => void notes.set(k, n as { slug: string; title: string; body: string }),
      }),
    }))()
    vfs = createVfs({ mounts: { '/n': view }, logger: silentLogger })
    expect((await vfs.readFile('/n/hello.md')).toString()).toBe('---\nslug: hello\ntitle: Hello\n---\n# Hi\n\nSome text.\n')
    await vfs.writeFile('/n/hello.md', '---\ntitle: Changed\n---\nNew body\n')
    expect(notes.get('hello')).toEqual({ slug: 'hello', title: 'Changed', body: 'New body\n' })
    expect(await errno(vfs.writeFile('/n/hello.md', '---\ntitle: [x\n---\nbody'))).toBe('EINVAL')
  })

  it('tells put a new record from a changed one, and passes the file key to the schema', async () => {
    const store = new Map([['ada', { id: 'ada', n: 1 }]])
    const puts: [string, unknown, boolean][] = []
    const seen: unknown[] = []
    const schema = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: (value: unknown, options?: { libraryOptions?: Record<string, unknown> }) => {
          seen.push(options?.libraryOptions?.fileKey)
          return { value: value as { id: string; n: number } }
        },
      },
    }
    const view = defineView(() => ({
      name: 'people',
      root: collection({
        list: () => [...store.values()],
        key: 'id',
        get: k => store.get(k),
        schema,
        put: (k, r, { created }) => {
          if (created && k === 'refused') throw vfsError('EROFS', 'no new people named refused')
          puts.push([k, r, created])
          store.set(k, r)
        },
      }),
    }))()
    vfs = createVfs({ mounts: { '/p': view }, logger: silentLogger })
    await vfs.writeFile('/p/ada.json', '{"id":"ada","n":2}')
    await vfs.writeFile('/p/bob.json', '{"n":3}')
    expect(puts).toEqual([
      ['ada', { id: 'ada', n: 2 }, false],
      ['bob', { id: 'bob', n: 3 }, true],
    ])
    expect(seen).toEqual(['ada', 'bob'])
    expect(await errno(vfs.writeFile('/p/refused.json', '{"n":4}'))).toBe('EROFS')
    expect([...store.keys()]).toEqual(['ada', 'bob'])
  })

  it('escapes keys holding / and a leading dot in file names', async () => {
    const rows = [{ k: 'a/b' }, { k: '.hidden' }, { k: '50%' }]
    const view = defineView(() => ({ name: 'k', root: collection({ list: rows, key: r => r.k, get: k => rows.find(r => r.k === k) }) }))()
    vfs = createVfs({ mounts: { '/k': view }, logger: silentLogger })
    expect((await vfs.readdirAll('/k')).map(e => e.name)).toEqual(['a%2Fb.json', '%2Ehidden.json', '50%25.json'])
    expect(JSON.parse((await vfs.readFile('/k/a%2Fb.json')).toString())).toEqual({ k: 'a/b' })
  })

  it('lists a 1,000,000-record paged source page by page with bounded memory', async () => {
    const total = 1_000_000
    const view = defineView(() => ({
      name: 'big',
      root: collection({
        list: ({ limit, cursor }) => {
          const start = cursor ? Number(cursor) : 0
          const items = []
          for (let i = start; i < Math.min(total, start + limit); i++) items.push({ id: i })
          return { items, cursor: start + limit < total ? String(start + limit) : undefined }
        },
        key: r => String(r.id),
        get: k => (Number(k) < total ? { id: Number(k) } : undefined),
      }),
    }))()
    vfs = createVfs({ mounts: { '/big': view }, logger: silentLogger })
    let cursor: string | undefined
    let count = 0
    let last = ''
    const before = liveHeapUsed()
    let peak = 0
    do {
      const page = await vfs.readdir('/big', cursor === undefined ? { limit: 10_000 } : { limit: 10_000, cursor })
      count += page.entries.length
      last = page.entries.at(-1)?.name ?? last
      cursor = page.cursor
      if (count % 100_000 === 0) peak = Math.max(peak, liveHeapUsed() - before)
    } while (cursor !== undefined)
    expect(count).toBe(total)
    expect(last).toBe('999999.json')
    // All million names at once would hold about 70 MiB; one page of 10,000 is far below this.
    expect(peak).toBeLessThan(16 * 1024 * 1024)
    expect((await vfs.readFile('/big/123456.json')).toString()).toBe('{\n  "id": 123456\n}\n')
  })

  it('pages an async iterable source by keeping its iterator between pages', async () => {
    let started = 0
    const view = defineView(() => ({
      name: 'gen',
      root: collection({
        list: () => {
          started++
          return (async function* () {
            for (let i = 0; i < 2500; i++) yield { i }
          })()
        },
        key: r => String(r.i).padStart(4, '0'),
      }),
    }))()
    vfs = createVfs({ mounts: { '/g': view }, logger: silentLogger })
    const names = (await vfs.readdirAll('/g')).map(e => e.name)
    expect(names.length).toBe(2500)
    expect(names[2499]).toBe('2499.json')
    expect(started).toBe(1)
  })

  it('refuses a new record whose key disagrees with its file name with EINVAL', async () => {
    const store = new UserStore(sampleUsers)
    const v = mount(store)
    expect(await errno(v.writeFile('/users/erin.json', '{"id":"frank","name":"F","age":1}'))).toBe('EINVAL')
    expect(store.rows.has('frank')).toBe(false)
    expect(await errno(v.stat('/users/erin.json'))).toBe('ENOENT')
  })

  it('refuses mkdir in a collection with EPERM', async () => {
    const v = mount(new UserStore(sampleUsers))
    expect(await errno(v.mkdir('/users/sub'))).toBe('EPERM')
  })
})


describe('collection logging', () => {
  it('logs a refused write with its full path, errno and reason', async () => {
    const warnings: unknown[] = []
    const logger = { ...silentLogger, warn: (obj: unknown) => void warnings.push(obj) }
    const vfs = createVfs({ mounts: { '/users': usersView({ store: new UserStore(sampleUsers) }) }, logger })
    expect(await errno(vfs.writeFile('/users/bob.json', '{"id":"bob"'))).toBe('EINVAL')
    expect(warnings).toEqual([{ path: '/users/bob.json', code: 'EINVAL', reason: expect.stringMatching(/^malformed json: /) }])
    await vfs.close()
  })
})

describe('collection concurrency', () => {
  it('applies two racing edits of one record one at a time: the second is refused with EAGAIN', async () => {
    const store = new UserStore(sampleUsers)
    const vfs = createVfs({ mounts: { '/users': usersView({ store }) }, logger: silentLogger })
    const a = await vfs.open('/users/bob.json', fsc.O_WRONLY | fsc.O_TRUNC)
    const b = await vfs.open('/users/bob.json', fsc.O_WRONLY | fsc.O_TRUNC)
    await vfs.write(a, 0, Buffer.from('{"id":"bob","name":"A","age":1}'))
    await vfs.write(b, 0, Buffer.from('{"id":"bob","name":"B","age":2}'))
    const results = await Promise.all([errno(vfs.flush(a)), errno(vfs.flush(b))])
    expect(results).toEqual(['no error', 'EAGAIN'])
    expect(store.rows.get('bob')!.name).toBe('A')
    expect(store.calls.put).toBe(1)
    await vfs.close()
  })
})
