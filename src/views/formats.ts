import { parse as parseCsv } from 'csv-parse/sync'
import { stringify as stringifyCsv } from 'csv-stringify/sync'
import YAML from 'yaml'
import { vfsError } from '../vfs/errors.ts'

/** The built-in record formats of a collection. */
export type FormatName = 'json' | 'yaml' | 'csv' | 'ndjson' | 'md' | 'text'

/**
 * How records turn into bytes and back. `render`/`parse` handle one record per file;
 * `header`/`row`/`footer` stream a whole collection into one file (`users.csv`).
 * `parse` throws `EINVAL` with a readable reason on malformed input.
 */
export interface Format {
  /** A short name, e.g. `'json'`. */
  readonly name: string
  /** The file extension without a dot, e.g. `'json'`. */
  readonly ext: string
  /** Renders one record as the whole content of its file. */
  render(record: unknown): string
  /** Parses the content of one record's file; throws `EINVAL` with the reason. */
  parse(text: string): unknown
  /** The text before the first row of a whole-collection file, given the first record (or undefined when empty). */
  header?(first: unknown): string
  /** One record as a row of a whole-collection file. */
  row?(record: unknown, index: number, first: unknown): string
}

/** Options for the built-in formats. */
export interface FormatOptions {
  /** For `md`: the field holding the body below the front matter. @default 'body' */
  bodyField?: string
  /** For `csv`: column order; the first record's keys when absent. */
  columns?: string[]
}

function invalid(format: string, err: unknown): never {
  const reason = err instanceof Error ? err.message.split('\n')[0] : String(err)
  throw vfsError('EINVAL', `malformed ${format}: ${reason}`)
}

const json: Format = {
  name: 'json',
  ext: 'json',
  render: r => JSON.stringify(r, null, 2) + '\n',
  parse(text) {
    if (text.trim() === '') throw vfsError('EINVAL', 'malformed json: the file is empty')
    try {
      return JSON.parse(text)
    } catch (err) {
      return invalid('json', err)
    }
  },
  header: () => '[\n',
  row: (r, i) => (i === 0 ? '' : ',\n') + JSON.stringify(r),
}

const ndjson: Format = {
  name: 'ndjson',
  ext: 'ndjson',
  render: r => JSON.stringify(r) + '\n',
  parse(text) {
    const lines = text.split('\n').filter(l => l.trim() !== '')
    if (lines.length !== 1) throw vfsError('EINVAL', `malformed ndjson: expected one line per record file, got ${lines.length}`)
    try {
      return JSON.parse(lines[0]!)
    } catch (err) {
      return invalid('ndjson', err)
    }
  },
  header: () => '',
  row: r => JSON.stringify(r) + '\n',
}

const yaml: Format = {
  name: 'yaml',
  ext: 'yaml',
  render: r => YAML.stringify(r),
  parse(text) {
    if (text.trim() === '') throw vfsError('EINVAL', 'malformed yaml: the file is empty')
    try {
      return YAML.parse(text, { prettyErrors: true, uniqueKeys: true })
    } catch (err) {
      return invalid('yaml', err)
    }
  },
  header: () => '',
  row: r => '---\n' + YAML.stringify(r),
}

function csv(options: FormatOptions): Format {
  const columnsOf = (first: unknown): string[] =>
    options.columns ?? (first && typeof first === 'object' ? Object.keys(first as object) : ['value'])
  const cells = (r: unknown, columns: string[]): unknown[] =>
    columns.map(c => {
      const v = r && typeof r === 'object' ? (r as Record<string, unknown>)[c] : r
      return v !== null && typeof v === 'object' ? JSON.stringify(v) : v
    })
  return {
    name: 'csv',
    ext: 'csv',
    render(r) {
      const columns = columnsOf(r)
      return stringifyCsv([columns, cells(r, columns)])
    },
    parse(text) {
      let rows: Record<string, string>[]
      try {
        rows = parseCsv(text, { columns: true, skip_empty_lines: true, trim: false })
      } catch (err) {
        return invalid('csv', err)
      }
      if (rows.length !== 1) throw vfsError('EINVAL', `malformed csv: expected a header and one row, got ${rows.length} rows`)
      return rows[0]
    },
    header: first => (first === undefined ? '' : stringifyCsv([columnsOf(first)])),
    row: (r, _i, first) => stringifyCsv([cells(r, columnsOf(first))]),
  }
}

function md(options: FormatOptions): Format {
  const bodyField = options.bodyField ?? 'body'
  return {
    name: 'md',
    ext: 'md',
    render(r) {
      const { [bodyField]: body, ...meta } = (r ?? {}) as Record<string, unknown>
      const front = Object.keys(meta).length > 0 ? `---\n${YAML.stringify(meta)}---\n` : ''
      return front + (body === undefined || body === null ? '' : String(body))
    },
    parse(text) {
      let meta: unknown = {}
      let body = text
      if (text.startsWith('---\n')) {
        const end = text.indexOf('\n---\n', 3)
        const endAtEof = text.endsWith('\n---') ? text.length - 4 : -1
        const stop = end >= 0 ? end : endAtEof
        if (stop < 0) throw vfsError('EINVAL', "malformed md: the front matter has no closing '---' line")
        try {
          meta = YAML.parse(text.slice(4, stop + 1), { prettyErrors: true, uniqueKeys: true }) ?? {}
        } catch (err) {
          return invalid('md front matter', err)
        }
        if (typeof meta !== 'object' || Array.isArray(meta)) throw vfsError('EINVAL', 'malformed md: the front matter must be a mapping')
        body = text.slice(Math.min(text.length, stop + 5))
      }
      return { ...(meta as object), [bodyField]: body }
    },
    header: () => '',
    row: (r, i) => (i === 0 ? '' : '\n') + md(options).render(r),
  }
}

const text: Format = {
  name: 'text',
  ext: 'txt',
  render: r => (typeof r === 'string' ? r : r === undefined || r === null ? '' : typeof r === 'object' ? JSON.stringify(r) + '\n' : String(r)),
  parse: t => t,
  header: () => '',
  row: r => text.render(r) + (typeof r === 'string' && r.endsWith('\n') ? '' : '\n'),
}

/** Returns the built-in format called `name`, or `format` itself when it is already a {@link Format}. */
export function formatOf(format: FormatName | Format, options: FormatOptions = {}): Format {
  if (typeof format !== 'string') return format
  switch (format) {
    case 'json':
      return json
    case 'ndjson':
      return ndjson
    case 'yaml':
      return yaml
    case 'csv':
      return csv(options)
    case 'md':
      return md(options)
    case 'text':
      return text
    default:
      throw new TypeError(`unknown format '${String(format)}'`)
  }
}

/** Parses `text` in the named format, throwing `EINVAL` with a readable reason. */
export function parseAs(format: FormatName | Format, text: string, options?: FormatOptions): unknown {
  return formatOf(format, options).parse(text)
}

/** Renders `record` in the named format. */
export function renderAs(format: FormatName | Format, record: unknown, options?: FormatOptions): string {
  return formatOf(format, options).render(record)
}

/**
 * Streams records as one whole-collection file: yields text chunks (header, then one
 * row per record, then the footer) without holding the collection in memory.
 */
export async function* renderStream(format: Format, records: AsyncIterable<unknown>): AsyncGenerator<string> {
  if (!format.row) throw new TypeError(`format '${format.name}' cannot render a whole collection`)
  let first: unknown
  let i = 0
  for await (const r of records) {
    if (i === 0) {
      first = r
      yield format.header?.(first) ?? ''
    }
    yield format.row(r, i, first)
    i++
  }
  if (i === 0) yield format.name === 'json' ? '[]\n' : ''
  else if (format.name === 'json') yield '\n]\n'
}
