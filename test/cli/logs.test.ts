import { describe, expect, it } from 'vitest'
import { facet } from './run.ts'

const config = ['--config', 'test/cli/fixtures/records.config.ts']
const REFUSED = "facet: EINVAL: invalid argument (invalid record: count: Invalid input: expected number, received string), close '/items/a.json'\n"

describe('facet logs', () => {
  it('prints one human line for a refused write with --log-format text, not a log line on top', async () => {
    const result = await facet(['write', '/items/a.json', '--log-format', 'text', ...config], { input: '{ "count": "x" }' })
    expect(result).toEqual({ code: 1, stdout: '', stderr: REFUSED })
  })

  it('writes the refusal as one structured entry before the facet: line with --log-format json', async () => {
    const { code, stderr } = await facet(['write', '/items/a.json', '--log-format', 'json', ...config], { input: '{ "count": "x" }' })
    expect(code).toBe(1)
    const [entry, line, ...rest] = stderr.split('\n')
    expect(JSON.parse(entry!)).toMatchObject({ level: 40, path: '/items/a.json', code: 'EINVAL', msg: 'write to a view refused' })
    expect(`${line}\n`).toBe(REFUSED)
    expect(rest).toEqual([''])
  })

  it('writes structured entries when stderr is not a terminal and no format is given', async () => {
    const { stderr } = await facet(['write', '/items/a.json', ...config], { input: '{ "count": "x" }' })
    expect(stderr.split('\n')[0]).toMatch(/^\{"level":40,/)
  })

  it('leaves out entries below --log-level', async () => {
    const result = await facet(['--log-level', 'error', 'write', '/items/a.json', '--log-format', 'json', ...config], { input: '{ "count": "x" }' })
    expect(result).toEqual({ code: 1, stdout: '', stderr: REFUSED })
  })

  it('refuses an unknown --log-level or --log-format as a usage error, exit code 2', async () => {
    const level = await facet(['ls', '--log-level', 'loud'])
    expect([level.code, level.stderr]).toEqual([2, "facet: option '--log-level <level>' argument 'loud' is invalid. expected one of debug, info, warn, error, silent\n"])
    expect((await facet(['ls', '--log-format', 'xml'])).code).toBe(2)
  })
})
