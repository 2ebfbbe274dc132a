import { describe, expect, it } from 'vitest'
import { isVfsError } from '../../src/vfs/errors.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { createVfs, type ChangeEvent } from '../../src/vfs/vfs.ts'
import { createDemoSql } from './demo.ts'
import { until } from './test-helpers.ts'
import { sql } from './view.ts'

describe('the demo database', () => {
  it('serves the example library from an embedded PGlite and shows SQL edits at once', async () => {
    const view = await createDemoSql()
    const vfs = createVfs({ mounts: { '/db': view }, logger: silentLogger })
    try {
      expect((await vfs.readdirAll('/db')).filter(e => e.kind === 'dir').map(e => e.name)).toEqual(['authors', 'books', 'reviews'])
      expect(JSON.parse((await vfs.readFile('/db/authors/1.json')).toString())).toEqual({ id: 1, name: 'Ada Lovelace', born: '1815-12-10' })
      const events: ChangeEvent[] = []
      vfs.watch('/db', e => events.push(e))
      await view.pglite.exec(`UPDATE authors SET born = '1815-12-11' WHERE id = 1`)
      await until(() => events.length > 0)
      expect(events[0]).toMatchObject({ type: 'update', path: '/db/authors/1.json' })
      expect(JSON.parse((await vfs.readFile('/db/authors/1.json')).toString()).born).toBe('1815-12-11')
    } finally {
      await vfs.close()
    }
  })
})

describe('an unreachable server', () => {
  it('fails listing with EIO naming the connection problem, and tries again on the next call', async () => {
    const vfs = createVfs({ mounts: { '/db': sql({ url: 'postgres://postgres@127.0.0.1:1/test' }) }, logger: silentLogger })
    try {
      for (let i = 0; i < 2; i++) {
        const err = await vfs.readdirAll('/db').catch((e: unknown) => e)
        expect(isVfsError(err, 'EIO')).toBe(true)
        expect((err as Error).message).toMatch(/^EIO: i\/o error \(database unreachable: connect ECONNREFUSED 127\.0\.0\.1:1; FacetFS reconnects on the next operation\), \w+ '\/db'$/)
      }
    } finally {
      await vfs.close()
    }
  })
})
