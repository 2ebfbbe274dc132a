import { describe, expect, it } from 'vitest'
import { describeFilesStore, filesStoreLocation, isPostgresUrl } from '../../src/demo/files-store.ts'

describe('filesStoreLocation', () => {
  it('takes anything but a PostgreSQL URL as a log file path, as given', () => {
    expect(filesStoreLocation('/srv/facet/files.chain')).toEqual({ path: '/srv/facet/files.chain' })
    expect(filesStoreLocation('rel/files.chain')).toEqual({ path: 'rel/files.chain' })
    expect(filesStoreLocation('postgres.chain')).toEqual({ path: 'postgres.chain' })
  })

  it('makes a postgres backend of a postgres:// or postgresql:// URL without connecting', () => {
    for (const url of ['postgres://127.0.0.1:1/none', 'postgresql://db.example/facet', 'POSTGRES://h/d?options=-c%20search_path%3Ds']) {
      const location = filesStoreLocation(url)
      expect('backend' in location && [location.backend.kind, location.backend.name, location.backend.tornTails]).toEqual(['postgres', 'postgres facet_chain_blocks', false])
    }
  })

  it('refuses a URL that does not parse and an empty store', () => {
    expect(() => filesStoreLocation('postgres://a b/db')).toThrow(/^invalid PostgreSQL URL \(expected postgres:\/\/\[USER\[:PASSWORD\]@\]HOST\[:PORT\]\/DB\)$/)
    expect(() => filesStoreLocation('')).toThrow(/^no store given \(expected a log file path or postgres:\/\/HOST\/DB\)$/)
  })
})

describe('describeFilesStore', () => {
  it("masks a URL's password and leaves paths and password-free URLs alone", () => {
    expect(describeFilesStore('postgres://me:s3cret@db.example:5433/facet')).toBe('postgres://me:***@db.example:5433/facet')
    expect(describeFilesStore('postgresql://me@db.example/facet')).toBe('postgresql://me@db.example/facet')
    expect(describeFilesStore('/a:b@c/files.chain')).toBe('/a:b@c/files.chain')
    expect([isPostgresUrl('postgresql://x/y'), isPostgresUrl('./postgres://x')]).toEqual([true, false])
  })
})
