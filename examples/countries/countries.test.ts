import { afterEach, describe, expect, it } from 'vitest'
import { createVfs, silentLogger, type Vfs } from '../../src/index.ts'
import { runViewConformance } from '../../src/views/testing.ts'
import config from './facet.config.ts'
import countries from './countries.ts'

runViewConformance('example countries', () => countries(), { folder: '/by-code', expectNames: ['de.yaml', 'countries.csv'] })
runViewConformance('example countries (by continent)', () => countries(), { folder: '/by-continent/asia', expectNames: ['in.json', 'jp.json'] })

describe('countries example', () => {
  let vfs: Vfs | undefined
  afterEach(async () => vfs?.close())

  it('serves its config: one YAML file per country and a CSV of all of them', async () => {
    vfs = createVfs({ mounts: config.mounts, logger: silentLogger })
    expect((await vfs.readFile('/countries/by-code/nz.yaml')).toString()).toBe('code: nz\nname: New Zealand\ncapital: Wellington\ncontinent: Oceania\npopulation: 5223100\n')
    const csv = (await vfs.readFile('/countries/by-code/countries.csv')).toString().split('\n')
    expect(csv[0]).toBe('code,name,capital,continent,population')
    expect(csv).toHaveLength(8)
    expect((await vfs.readdirAll('/countries/by-continent')).map(e => e.name)).toEqual(['africa', 'asia', 'europe', 'oceania', 'south-america'])
  })
})
