import { randomBytes } from 'node:crypto'
import { readFileSync, watch as watchFile, type FSWatcher } from 'node:fs'
import { rename, writeFile } from 'node:fs/promises'
import { z } from 'zod'
import type { RecordChange } from 'facetfs'

/** A card as stored and as shown: what the schema accepts. */
export const CardSchema = z.object({
  id: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and dashes only'),
  title: z.string().min(1, 'a card needs a title'),
  column: z.enum(['todo', 'doing', 'done']),
  points: z.number().int().min(0).max(100).default(1),
  tags: z.array(z.string()).default([]),
  /** Bumped by the board on every save; used to refuse edits made to an older version. */
  rev: z.number().int().default(0),
})

/** One card of the board. */
export type Card = z.output<typeof CardSchema>

/**
 * A kanban board kept in one JSON file on disk, written atomically (temp file and
 * rename) on every change, so it survives restarts. Another process editing the file
 * is noticed (`fs.watch`) and reported to watchers.
 */
export class Board {
  private cards = new Map<string, Card>()
  private listeners = new Set<(c: RecordChange) => void>()
  private watcher: FSWatcher | undefined
  private lastWrite = ''

  constructor(readonly file: string) {
    this.load()
  }

  private load(): void {
    let text = '[]'
    try {
      text = readFileSync(this.file, 'utf8')
    } catch {}
    if (text === this.lastWrite) return
    const cards = z.array(CardSchema).parse(JSON.parse(text))
    this.cards = new Map(cards.map(c => [c.id, c]))
  }

  list(): Card[] {
    return [...this.cards.values()]
  }

  get(id: string): Card | undefined {
    return this.cards.get(id)
  }

  async save(id: string, card: Card): Promise<void> {
    const prev = this.cards.get(id)
    this.cards.set(id, { ...card, rev: (prev?.rev ?? 0) + 1 })
    await this.flush()
  }

  async delete(id: string): Promise<void> {
    this.cards.delete(id)
    await this.flush()
  }

  async move(from: string, to: string): Promise<void> {
    const card = this.cards.get(from)
    if (!card) return
    this.cards.delete(from)
    this.cards.set(to, { ...card, id: to, rev: card.rev + 1 })
    await this.flush()
  }

  /** Starts noticing edits made to the file by others; returns the function that stops. */
  watch(listener: (c: RecordChange) => void): () => void {
    this.listeners.add(listener)
    this.watcher ??= watchFile(this.file, () => {
      try {
        this.load()
      } catch {
        return
      }
      for (const l of this.listeners) l({ type: 'reset' })
    })
    return () => {
      this.listeners.delete(listener)
      if (this.listeners.size === 0) {
        this.watcher?.close()
        this.watcher = undefined
      }
    }
  }

  private async flush(): Promise<void> {
    const text = JSON.stringify(this.list(), null, 2) + '\n'
    const tmp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`
    await writeFile(tmp, text)
    this.lastWrite = text
    await rename(tmp, this.file)
  }
}
