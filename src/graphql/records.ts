import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { vfsError } from '../vfs/errors.ts'

/** The record formats `File.json` parses and `writeFile(json:)` writes, by file extension. */
export type RecordFormat = 'json' | 'yaml' | 'ndjson'

/** The record format of a file name, or `undefined` when it is not a record file. */
export function recordFormat(name: string): RecordFormat | undefined {
  const dot = name.lastIndexOf('.')
  if (dot < 0) return undefined
  switch (name.slice(dot + 1).toLowerCase()) {
    case 'json':
      return 'json'
    case 'yaml':
    case 'yml':
      return 'yaml'
    case 'ndjson':
      return 'ndjson'
    default:
      return undefined
  }
}

/** Parses record text; an ndjson file becomes an array of its lines' values. Throws `EINVAL` with the parser's reason. */
export function parseRecord(text: string, format: RecordFormat): unknown {
  try {
    if (format === 'json') return JSON.parse(text)
    if (format === 'yaml') return parseYaml(text) ?? null
    return text
      .split('\n')
      .filter(line => line.trim() !== '')
      .map(line => JSON.parse(line) as unknown)
  } catch (err) {
    throw vfsError('EINVAL', `not valid ${format}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`)
  }
}

/** Renders a value as record text: pretty JSON, YAML, or one JSON line per array item for ndjson. */
export function stringifyRecord(value: unknown, format: RecordFormat): string {
  if (format === 'json') return JSON.stringify(value, null, 2) + '\n'
  if (format === 'yaml') return stringifyYaml(value)
  if (!Array.isArray(value)) throw vfsError('EINVAL', 'an ndjson file takes an array of values')
  return value.map(v => JSON.stringify(v) + '\n').join('')
}
