import { describe, expect, it } from 'vitest'
import type { Logger } from '../../src/vfs/log.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { mountStats, type ViewContext } from '../../src/vfs/mounts.ts'
import { createVfs, type ChangeEvent } from '../../src/vfs/vfs.ts'
import { collection, defineView, dir, file, type RecordChange, type View } from '../../src/views/index.ts'

/** A collection of one record whose `watch` is recorded: `emit` reaches it while watched, `log` says what happened. */
function watched(name: string, log: string[]) {
  let emit: ((c: RecordChange) => void) | undefined
  const records = [{ id: 'x' }]
  const node = collection({
    list: () => records,
    key: 'id',
    watch: e => {
      emit = e
      log.push(`watch ${name}`)
      return () => {
        emit = undefined
        log.push(`unwatch ${name}`)
      }
    },
  })
  return { node, emit: (c: RecordChange) => emit?.(c) }
}

describe('defineView', () => {
  it('returns its argument: a factory or a view, unchanged', () => {
    const factory = (greeting: string): View => ({ name: 'hello', root: dir({ 'hi.txt': file(greeting) }) })
    expect(defineView(factory)).toBe(factory)
    const view: View = { name: 'hello', root: dir({}) }
    expect(defineView(view)).toBe(view)
  })
})

describe('a view lifecycle', () => {
  it('calls setup with the logger, the change emitter and a live signal, and dispose after the signal aborts', async () => {
    const calls: string[] = []
    let ctx: ViewContext | undefined
    const logger: Logger = { ...silentLogger }
    const view = defineView({
      name: 'own',
      root: dir({}),
      setup(c: ViewContext) {
        ctx = c
        calls.push(`setup aborted=${c.signal.aborted}`)
        c.signal.addEventListener('abort', () => calls.push('abort'))
      },
      dispose() {
        calls.push(`dispose aborted=${ctx!.signal.aborted}`)
      },
    })
    const vfs = createVfs({ logger, mounts: { '/own': view } })
    const events: ChangeEvent[] = []
    vfs.watch('/', e => events.push(e))
    expect(calls).toEqual(['setup aborted=false'])
    expect(ctx!.logger).toBe(logger)
    expect(ctx!.mountPoint).toBe('/own')
    ctx!.changes.emit({ type: 'create', path: '/a.txt', kind: 'file' })
    expect(events).toEqual([{ type: 'create', path: '/own/a.txt', kind: 'file', mount: '/own' }])
    await vfs.close()
    expect(calls).toEqual(['setup aborted=false', 'abort', 'dispose aborted=true'])
  })

  it('waits for an async setup before disposing', async () => {
    const calls: string[] = []
    let started!: () => void
    const view: View = {
      name: 'slow',
      root: dir({}),
      setup: () => new Promise<void>(done => (started = () => (calls.push('setup done'), done()))),
      dispose: () => void calls.push('dispose'),
    }
    const vfs = createVfs({ logger: silentLogger, mounts: { '/slow': view } })
    const closing = vfs.close()
    await Promise.resolve()
    expect(calls).toEqual([])
    started()
    await closing
    expect(calls).toEqual(['setup done', 'dispose'])
  })
})

describe('collections in static folders', () => {
  it('watch from the moment the view is mounted, at their paths, and stop when it is unmounted', async () => {
    const log: string[] = []
    const books = watched('books', log)
    const films = watched('films', log)
    const view = defineView(() => ({ name: 'shelves', root: dir({ books: books.node, more: dir({ films: films.node }), 'readme.txt': file('hi\n') }) }))
    const vfs = createVfs({ logger: silentLogger, mounts: { '/s': view() } })
    expect(log).toEqual(['watch books', 'watch films'])
    const events: string[] = []
    vfs.watch('/s', e => events.push(`${e.type} ${e.path}`))
    books.emit({ type: 'update', key: 'x' })
    films.emit({ type: 'delete', key: 'x' })
    expect(events).toEqual(['update /s/books/x.json', 'delete /s/more/films/x.json'])
    await vfs.unmount('/s')
    expect(log).toEqual(['watch books', 'watch films', 'unwatch books', 'unwatch films'])
  })

  it('report their figures by path for /proc/stats.json', async () => {
    const log: string[] = []
    const books = watched('books', log)
    const view: View = { name: 'shelves', root: dir({ sub: dir({ books: books.node }) }) }
    const vfs = createVfs({ logger: silentLogger, mounts: { '/s': view } })
    await vfs.stat('/s/sub/books/x.json')
    await vfs.stat('/s/sub/books/x.json')
    const stats = mountStats(view)
    expect(Object.keys(stats)).toEqual(['/sub/books'])
    expect(stats['/sub/books']).toMatchObject({ path: '/sub/books', hits: 1, misses: 1 })
    await vfs.close()
  })
})

describe('collections a folder function returns', () => {
  it('watch once first returned, and stop when the function no longer returns them or the view closes', async () => {
    const log: string[] = []
    const a = watched('a', log)
    const b = watched('b', log)
    let shown: Record<string, typeof a.node> = { a: a.node, b: b.node }
    const vfs = createVfs({ logger: silentLogger, mounts: { '/d': { name: 'dynamic', root: dir({ top: dir(() => shown) }) } } })
    expect(log).toEqual([])
    expect((await vfs.readdirAll('/d/top')).map(e => e.name)).toEqual(['a', 'b'])
    expect((await vfs.readdirAll('/d/top')).map(e => e.name)).toEqual(['a', 'b'])
    expect(log).toEqual(['watch a', 'watch b'])
    const events: string[] = []
    vfs.watch('/d', e => events.push(`${e.type} ${e.path}`))
    b.emit({ type: 'create', key: 'y' })
    expect(events).toEqual(['create /d/top/b/y.json'])
    shown = { a: a.node }
    expect((await vfs.readdirAll('/d/top')).map(e => e.name)).toEqual(['a'])
    expect(log).toEqual(['watch a', 'watch b', 'unwatch b'])
    await vfs.close()
    expect(log).toEqual(['watch a', 'watch b', 'unwatch b', 'unwatch a'])
  })
})
