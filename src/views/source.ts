import { vfsError } from '../vfs/errors.ts'
import type { MaybePromise } from '../vfs/node.ts'

/** One page of a paged source: the items and the cursor of the next page (absent on the last). */
export interface SourcePage<R> {
  /** The records of this page, at most the requested `limit`. */
  items: R[]
  /** Passed back in the next request to get the next page; absent on the last page. */
  cursor?: string | undefined
}

/** What a paged `list` is asked for. */
export interface SourcePageRequest {
  /** The most records to return. */
  limit: number
  /** The `cursor` of the previous page; absent for the first page. */
  cursor?: string | undefined
}

/**
 * Where a collection's records come from: an array, or a function returning an array,
 * a (sync or async) iterable, or — when it answers the page request — one
 * {@link SourcePage} at a time.
 */
export type RecordSource<R> =
  | readonly R[]
  | ((page: SourcePageRequest) => MaybePromise<readonly R[] | Iterable<R> | AsyncIterable<R> | SourcePage<R>>)

interface OpenIterator<R> {
  iterator: Iterator<R> | AsyncIterator<R>
  offset: number
}

const MAX_OPEN_ITERATORS = 32

function isPage<R>(x: unknown): x is SourcePage<R> {
  return typeof x === 'object' && x !== null && Array.isArray((x as SourcePage<R>).items) && !(Symbol.iterator in x) && !(Symbol.asyncIterator in x)
}

function iteratorOf<R>(x: Iterable<R> | AsyncIterable<R>): Iterator<R> | AsyncIterator<R> {
  if (Symbol.asyncIterator in x) return (x as AsyncIterable<R>)[Symbol.asyncIterator]()
  return (x as Iterable<R>)[Symbol.iterator]()
}

/**
 * Pages through a {@link RecordSource} without loading it whole. Readdir cursors map
 * to the source: an index for arrays, the source's own cursor for paged sources, and
 * for iterables a token naming a live iterator kept between pages (a few are kept;
 * an expired one is restarted and skipped forward).
 */
export class SourcePager<R> {
  private readonly open = new Map<string, OpenIterator<R>>()
  private nextId = 1

  constructor(private readonly source: RecordSource<R>) {}

  /** Returns up to `limit` records after `cursor`, and the cursor of the next page. */
  async page(limit: number, cursor: string | undefined): Promise<SourcePage<R>> {
    const src = this.source
    if (typeof src !== 'function') return sliceArray(src, limit, cursor)
    const tag = cursor?.[0]
    const rest = cursor?.slice(1)
    if (tag === 'p') return tagPage(await this.call({ limit, cursor: rest }), 'p')
    if (tag === 'i') return this.fromIterator(limit, rest!)
    if (cursor !== undefined && tag !== 'a') throw vfsError('EINVAL', 'bad cursor')
    const result = await this.call({ limit, cursor: undefined })
    if (isPage<R>(result)) {
      if (cursor !== undefined) throw vfsError('EINVAL', 'bad cursor')
      return tagPage(result, 'p')
    }
    if (Array.isArray(result)) return sliceArray(result as readonly R[], limit, cursor)
    return this.readFrom({ iterator: iteratorOf(result as Iterable<R>), offset: 0 }, limit)
  }

  /** Every record, in order, one page at a time. */
  async *all(pageSize = 1000): AsyncGenerator<R> {
    const src = this.source
    if (typeof src !== 'function') {
      yield* src
      return
    }
    const first = await this.call({ limit: pageSize, cursor: undefined })
    if (Array.isArray(first)) {
      yield* first as readonly R[]
      return
    }
    if (!isPage<R>(first)) {
      for await (const r of first as AsyncIterable<R>) yield r
      return
    }
    let page: SourcePage<R> = first
    for (;;) {
      yield* page.items
      if (page.cursor === undefined) return
      const next = await this.call({ limit: pageSize, cursor: page.cursor })
      if (!isPage<R>(next)) throw new TypeError('a paged source returned something other than a page')
      page = next
    }
  }

  /** Ends every iterator kept between pages. */
  async close(): Promise<void> {
    const all = [...this.open.values()]
    this.open.clear()
    for (const o of all) await o.iterator.return?.()
  }

  private async call(req: SourcePageRequest) {
    return (this.source as Exclude<RecordSource<R>, readonly R[]>)(req)
  }

  private async fromIterator(limit: number, token: string): Promise<SourcePage<R>> {
    const kept = this.open.get(token)
    if (kept) {
      this.open.delete(token)
      return this.readFrom(kept, limit)
    }
    const offset = Number(token.split('.')[0])
    if (!Number.isSafeInteger(offset) || offset < 0) throw vfsError('EINVAL', 'bad cursor')
    const result = await this.call({ limit, cursor: undefined })
    if (isPage(result) || Array.isArray(result)) throw vfsError('EINVAL', 'bad cursor')
    const restarted: OpenIterator<R> = { iterator: iteratorOf(result as Iterable<R>), offset: 0 }
    while (restarted.offset < offset) {
      const step = await restarted.iterator.next()
      if (step.done) return { items: [] }
      restarted.offset++
    }
    return this.readFrom(restarted, limit)
  }

  private async readFrom(o: OpenIterator<R>, limit: number): Promise<SourcePage<R>> {
    const items: R[] = []
    while (items.length < limit) {
      const step = await o.iterator.next()
      if (step.done) return { items }
      items.push(step.value)
    }
    o.offset += items.length
    const token = `${o.offset}.${this.nextId++}`
    this.open.set(token, o)
    if (this.open.size > MAX_OPEN_ITERATORS) {
      const [oldest, old] = this.open.entries().next().value as [string, OpenIterator<R>]
      this.open.delete(oldest)
      void old.iterator.return?.()
    }
    return { items, cursor: 'i' + token }
  }
}

function sliceArray<R>(array: readonly R[], limit: number, cursor: string | undefined): SourcePage<R> {
  const start = cursor === undefined ? 0 : Number(cursor.slice(1))
  if (!Number.isSafeInteger(start) || start < 0) throw vfsError('EINVAL', 'bad cursor')
  const items = array.slice(start, start + limit)
  const next = start + items.length
  return next < array.length ? { items, cursor: 'a' + next } : { items }
}

function tagPage<R>(page: unknown, tag: string): SourcePage<R> {
  if (!isPage<R>(page)) throw new TypeError('a paged source returned something other than a page')
  return page.cursor === undefined || page.cursor === null ? { items: page.items } : { items: page.items, cursor: tag + page.cursor }
}
