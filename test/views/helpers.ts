import { z } from 'zod'
import { collection, defineView, type RecordChange } from '../../src/views/index.ts'
import type { FormatName } from '../../src/views/formats.ts'

/** The record type of the test user store. */
export interface User {
  id: string
  name: string
  age: number
  version: number
}

export const UserSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  age: z.coerce.number().int().min(0),
  version: z.coerce.number().int().default(0),
})

/** A small in-memory user store with change notification, standing in for a database. */
export class UserStore {
  readonly rows = new Map<string, User>()
  readonly calls = { list: 0, get: 0, put: 0, remove: 0 }
  private listeners = new Set<(c: RecordChange) => void>()

  constructor(users: Array<Omit<User, 'version'>> = []) {
    for (const u of users) this.rows.set(u.id, { ...u, version: 1 })
  }

  list(): User[] {
    this.calls.list++
    return [...this.rows.values()]
  }

  get(id: string): User | undefined {
    this.calls.get++
    return this.rows.get(id)
  }

  put(id: string, u: User): void {
    this.calls.put++
    const prev = this.rows.get(id)
    this.rows.set(id, { ...u, version: (prev?.version ?? 0) + 1 })
  }

  remove(id: string): void {
    this.calls.remove++
    this.rows.delete(id)
  }

  /** Changes a record as another client would, and tells watchers. */
  touchOutside(id: string, patch: Partial<User>): void {
    const prev = this.rows.get(id)!
    this.rows.set(id, { ...prev, ...patch, version: prev.version + 1 })
    for (const l of this.listeners) l({ type: 'update', key: id })
  }

  watch(l: (c: RecordChange) => void): () => void {
    this.listeners.add(l)
    return () => this.listeners.delete(l)
  }
}

export const sampleUsers = [
  { id: 'alice', name: 'Alice', age: 31 },
  { id: 'bob', name: 'Bob', age: 42 },
  { id: 'carol', name: 'Carol', age: 27 },
]

/** A users view over `store`: `/users` in `format`, with whole-collection files. */
export const usersView = defineView((o: { store: UserStore; format?: FormatName; maxWriteBytes?: number }) => ({
  name: 'users',
  root: collection<User>({
    list: () => o.store.list(),
    key: 'id',
    format: o.format ?? 'json',
    schema: UserSchema,
    version: u => u.version,
    get: id => o.store.get(id),
    put: (id, u) => o.store.put(id, u),
    remove: id => o.store.remove(id),
    rekey: (from, to) => {
      const u = o.store.get(from)!
      o.store.remove(from)
      o.store.put(to, { ...u, id: to })
    },
    watch: emit => o.store.watch(emit),
    files: { 'all.csv': 'csv', 'all.ndjson': 'ndjson' },
    maxWriteBytes: o.maxWriteBytes ?? 8 * 1024 * 1024,
  }),
}))
