import { collection, defineView, dir, file } from 'facetfs'

/** One country record. */
export interface Country {
  code: string
  name: string
  capital: string
  continent: string
  population: number
}

/** Options for the countries view. */
export interface CountriesOptions {
  /** The records to show; a built-in list when absent. */
  countries?: Country[]
}

/** A small built-in data set. */
export const COUNTRIES: Country[] = [
  { code: 'br', name: 'Brazil', capital: 'Brasília', continent: 'South America', population: 203_080_756 },
  { code: 'de', name: 'Germany', capital: 'Berlin', continent: 'Europe', population: 84_482_267 },
  { code: 'in', name: 'India', capital: 'New Delhi', continent: 'Asia', population: 1_428_627_663 },
  { code: 'jp', name: 'Japan', capital: 'Tokyo', continent: 'Asia', population: 124_516_650 },
  { code: 'ke', name: 'Kenya', capital: 'Nairobi', continent: 'Africa', population: 55_100_586 },
  { code: 'nz', name: 'New Zealand', capital: 'Wellington', continent: 'Oceania', population: 5_223_100 },
]

/**
 * A read-only view: one YAML file per country under `by-code/`, a folder per
 * continent, the whole set as `countries.csv` and `countries.ndjson`, and a README.
 */
export default defineView((options: CountriesOptions = {}) => {
  const all = options.countries ?? COUNTRIES
  const byCode = new Map(all.map(c => [c.code, c]))
  const continents = [...new Set(all.map(c => c.continent))].sort()
  return {
    name: 'countries',
    root: dir({
      'README.txt': file(`${all.length} countries. by-code/<code>.yaml holds one each; by-continent/ groups them.\n`),
      'by-code': collection<Country>({
        list: all,
        key: 'code',
        format: 'yaml',
        get: code => byCode.get(code),
        files: { 'countries.csv': 'csv', 'countries.ndjson': 'ndjson' },
      }),
      'by-continent': dir(
        Object.fromEntries(
          continents.map(continent => {
            const members = all.filter(c => c.continent === continent)
            return [continent.toLowerCase().replace(/\s+/g, '-'), collection<Country>({ list: members, key: 'code', format: 'json', get: code => members.find(c => c.code === code) })]
          }),
        ),
      ),
    }),
  }
})
