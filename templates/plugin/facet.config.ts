import { fileURLToPath } from 'node:url'
import { defineConfig } from 'facetfs'
import notes from './src/view.ts'

export default defineConfig({
  mounts: {
    '/notes': notes({ file: fileURLToPath(new URL('./notes.json', import.meta.url)) }),
  },
})
