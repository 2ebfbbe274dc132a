import { defineView, dir, file } from 'facetfs'

/** Options for the greetings view. */
export interface GreetingsOptions {
  /** Who to greet: one file each. */
  names: string[]
}

/** A read-only view: an index of names, and one greeting file per name. */
export default defineView((options: GreetingsOptions) => ({
  name: 'greetings',
  root: dir({
    'index.txt': file(() => options.names.join('\n') + '\n'),
    people: dir(() => Object.fromEntries(options.names.map(name => [`${name}.txt`, file(`Hello, ${name}!\n`)]))),
  }),
}))
