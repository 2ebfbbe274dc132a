import { existsSync, readFileSync } from 'node:fs'
import { rename, writeFile } from 'node:fs/promises'
import { collection, defineView } from 'facetfs'
import { z } from 'zod'

/** A note as the JSON file keeps it and as `<id>.json` shows it: what the schema accepts. */
export const NoteSchema = z.object({
  id: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and dashes only'),
  title: z.string().min(1, 'a note needs a title'),
  done: z.boolean().default(false),
})

/** One note. */
export type Note = z.output<typeof NoteSchema>

/** Options for the notes view. */
export interface NotesOptions {
  /** The JSON file holding the notes (an array); created with one note when missing. */
  file: string
}

/**
 * A read-write view of the notes in one JSON file: each note is `<id>.json`. An edit is
 * parsed and checked against {@link NoteSchema} before it is saved; a bad one is refused
 * with EINVAL (the reason is in `.errors`) and changes nothing. Create a file to add a
 * note, `rm` one to delete it.
 */
export default defineView((options: NotesOptions) => {
  const notes = new Map<string, Note>()
  if (existsSync(options.file)) {
    for (const note of z.array(NoteSchema).parse(JSON.parse(readFileSync(options.file, 'utf8')))) notes.set(note.id, note)
  } else {
    notes.set('welcome', { id: 'welcome', title: 'Edit me, or create a note next to me', done: false })
  }

  // Written whole to a temporary file and renamed over the old one, so a crash never leaves half a file.
  async function save(): Promise<void> {
    const temp = `${options.file}.${process.pid}.tmp`
    await writeFile(temp, JSON.stringify([...notes.values()], null, 2) + '\n')
    await rename(temp, options.file)
  }

  return {
    name: 'notes',
    root: collection<Note>({
      list: () => [...notes.values()],
      key: 'id',
      schema: NoteSchema,
      get: id => notes.get(id),
      put: async (id, note) => {
        notes.set(id, note)
        await save()
      },
      remove: async id => {
        notes.delete(id)
        await save()
      },
    }),
  }
})
