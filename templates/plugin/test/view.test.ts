import { mkdtempSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createVfs, silentLogger } from 'facetfs'
import { errnoOf, runViewConformance } from 'facetfs/testing'
import { afterAll, expect, it } from 'vitest'
import notes from '../src/view.ts'

const folder = mkdtempSync(join(tmpdir(), 'notes-test-'))
let files = 0
const notesFile = () => join(folder, `notes-${++files}.json`)
afterAll(() => rm(folder, { recursive: true, force: true }))

// The checks every FacetFS view passes: listing, exact sizes, byte ranges, write-back, refusals, errnos.
runViewConformance('notes', () => notes({ file: notesFile() }), {
  expectNames: ['welcome.json'],
  write: {
    existing: 'welcome.json',
    valid: '{ "title": "Read the FacetFS docs", "done": true }\n',
    readBack: '{\n  "id": "welcome",\n  "title": "Read the FacetFS docs",\n  "done": true\n}\n',
    invalid: ['{ "title": ', '{ "title": "" }', '{ "title": "Ship it", "done": "yes" }'],
    create: { name: 'second.json', content: '{ "title": "Second" }\n', readBack: '{\n  "id": "second",\n  "title": "Second",\n  "done": false\n}\n' },
    remove: true,
  },
})

it('saves an edit to the JSON file, and refuses a bad one leaving the file as it was', async () => {
  const file = notesFile()
  const vfs = createVfs({ mounts: { '/notes': notes({ file }) }, logger: silentLogger })
  try {
    await vfs.writeFile('/notes/welcome.json', '{ "title": "Done with it", "done": true }')
    const saved = await readFile(file, 'utf8')
    expect(JSON.parse(saved)).toEqual([{ id: 'welcome', title: 'Done with it', done: true }])
    expect(await errnoOf(vfs.writeFile('/notes/welcome.json', '{ "title": "" }'))).toBe('EINVAL')
    expect(await readFile(file, 'utf8')).toBe(saved)
  } finally {
    await vfs.close()
  }
})
