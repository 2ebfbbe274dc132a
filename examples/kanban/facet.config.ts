import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineConfig } from 'facetfs'
import kanban from './kanban.ts'

export default defineConfig({
  mounts: {
    '/kanban': kanban({ file: process.env.KANBAN_FILE ?? join(tmpdir(), 'facet-kanban-board.json') }),
  },
})
