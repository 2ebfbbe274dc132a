import { mkdtempSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createVfs, silentLogger, type Vfs } from '../../src/index.ts'
import { runViewConformance, errnoOf as errno } from '../../src/views/testing.ts'
import kanban from './kanban.ts'

const root = mkdtempSync(join(tmpdir(), 'facet-kanban-'))
let n = 0
const boardFile = () => join(root, `board-${++n}.json`)
afterAll(() => rm(root, { recursive: true, force: true }))

runViewConformance('example kanban', () => kanban({ file: boardFile() }), {
  folder: '/cards',
  expectNames: ['ship-it.yaml', 'write-docs.yaml', 'cards.csv'],
  write: {
    existing: 'ship-it.yaml',
    valid: 'title: Ship it now\ncolumn: doing\npoints: 8\n',
    readBack: 'id: ship-it\ntitle: Ship it now\ncolumn: doing\npoints: 8\ntags: []\nrev: 2\n',
    invalid: ['title: [oops\n', 'title: ""\ncolumn: doing\n', 'title: X\ncolumn: someday\n', 'title: X\ncolumn: todo\npoints: 1000\n'],
    create: { name: 'new-card.yaml', content: 'title: New\ncolumn: todo\n', readBack: 'id: new-card\ntitle: New\ncolumn: todo\npoints: 1\ntags: []\nrev: 1\n' },
    remove: true,
  },
})

describe('kanban example', () => {
  let vfs: Vfs | undefined
  afterEach(async () => vfs?.close())

  it('saves a valid edit to the board file and refuses a bad one with the zod reason beside the card', async () => {
    const file = boardFile()
    vfs = createVfs({ mounts: { '/k': kanban({ file }) }, logger: silentLogger })
    await vfs.writeFile('/k/cards/ship-it.yaml', 'title: Ship it\ncolumn: done\npoints: 5\n')
    expect(JSON.parse(await readFile(file, 'utf8')).find((c: { id: string }) => c.id === 'ship-it').column).toBe('done')
    const before = await readFile(file, 'utf8')
    expect(await errno(vfs.writeFile('/k/cards/ship-it.yaml', 'title: Ship it\ncolumn: later\n'))).toBe('EINVAL')
    expect(await readFile(file, 'utf8')).toBe(before)
    expect((await vfs.readFile('/k/cards/.ship-it.yaml.error')).toString()).toMatch(/^EINVAL: invalid record: column: /)
    expect((await vfs.readFile('/k/board.md')).toString()).toContain('## done\n\n- Ship it (5)\n')
  })

  it('renames a card with mv and survives a restart', async () => {
    const file = boardFile()
    vfs = createVfs({ mounts: { '/k': kanban({ file }) }, logger: silentLogger })
    await vfs.rename('/k/cards/ship-it.yaml', '/k/cards/release.yaml')
    await vfs.close()
    vfs = createVfs({ mounts: { '/k': kanban({ file }) }, logger: silentLogger })
    expect((await vfs.readdirAll('/k/cards')).map(e => e.name).sort()).toEqual(['cards.csv', 'release.yaml', 'write-docs.yaml'])
  })

  it('shows an edit made to the board file by another program', async () => {
    const file = boardFile()
    vfs = createVfs({ mounts: { '/k': kanban({ file }) }, logger: silentLogger })
    const events: string[] = []
    vfs.watch('/k', e => events.push(e.path))
    await vfs.readFile('/k/cards/ship-it.yaml')
    const cards = JSON.parse(await readFile(file, 'utf8'))
    cards[0].title = 'Edited elsewhere'
    await writeFile(file, JSON.stringify(cards))
    await expect.poll(() => events.length, { timeout: 5000 }).toBeGreaterThan(0)
    expect((await vfs.readFile(`/k/cards/${cards[0].id}.yaml`)).toString()).toContain('title: Edited elsewhere')
  })
})
