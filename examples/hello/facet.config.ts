import { defineConfig, memoryMount } from 'facetfs'
import greetings from './greetings.ts'

export default defineConfig({
  mounts: {
    '/greetings': greetings({ names: ['ada', 'grace', 'linus'] }),
    '/notes': memoryMount(),
  },
})
