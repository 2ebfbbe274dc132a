import { defineConfig } from 'facetfs'
import countries from './countries.ts'

export default defineConfig({
  mounts: {
    '/countries': countries(),
  },
})
