import { describe, expect, it } from 'vitest'
import { createProgram } from '../../src/cli/main.ts'
import { facet } from './run.ts'

describe('facet --help', () => {
  it('lists the mounts the built-in demo really has', async () => {
    const { code, stdout } = await facet(['--help'])
    expect(code).toBe(0)
    const listed = stdout
      .slice(stdout.indexOf('else the built-in demo, which mounts:'))
      .split('\n')
      .slice(1)
      .filter(line => /^ {2}\//.test(line))
      .map(line => line.trim().split(/\s+/)[0])
    // /files and /datasets need a passphrase, which tests never have
    const mounted = (await facet(['ls', '/'])).stdout.split('\n').filter(Boolean).map(name => `/${name}`)
    expect(listed.filter(p => p !== '/files' && p !== '/datasets').sort()).toEqual(mounted)
    expect(listed).toContain('/files')
  })

  it('gives facet dev every option of facet up but those of the demo, which dev cannot serve', () => {
    const program = createProgram()
    const flags = (name: string) => program.commands.find(c => c.name() === name)!.options.map(o => o.long)
    const demoOnly = ['--passphrase-file', '--allow-rollback', '--files-store']
    expect(flags('dev')).toEqual(expect.arrayContaining(flags('up').filter(f => !demoOnly.includes(f!))))
  })
})
