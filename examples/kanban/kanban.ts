import { writeFileSync, existsSync } from 'node:fs'
import { collection, defineView, dir, file } from 'facetfs'
import { Board, CardSchema, type Card } from './board.ts'

/** Options for the kanban view. */
export interface KanbanOptions {
  /** The JSON file holding the board; created with two sample cards when missing. */
  file: string
}

/**
 * A read-write view: each card is `cards/<id>.yaml`. Edit one with any editor and the
 * board validates it (zod) before saving; a bad edit is refused with `EINVAL` and the
 * reason is in `cards/.<id>.yaml.error`. Create a file to add a card, `rm` to delete,
 * `mv` to rename. `board.md` shows the board by column.
 */
export default defineView((options: KanbanOptions) => {
  if (!existsSync(options.file)) {
    const sample: Card[] = [
      { id: 'write-docs', title: 'Write the docs', column: 'doing', points: 3, tags: ['docs'], rev: 1 },
      { id: 'ship-it', title: 'Ship it', column: 'todo', points: 5, tags: [], rev: 1 },
    ]
    writeFileSync(options.file, JSON.stringify(sample, null, 2) + '\n')
  }
  const board = new Board(options.file)
  return {
    name: 'kanban',
    root: dir({
      cards: collection<Card>({
        list: () => board.list(),
        key: 'id',
        format: 'yaml',
        schema: CardSchema,
        version: card => card.rev,
        get: id => board.get(id),
        put: (id, card) => board.save(id, card),
        remove: id => board.delete(id),
        rekey: (from, to) => board.move(from, to),
        watch: emit => board.watch(emit),
        files: { 'cards.csv': 'csv' },
      }),
      'board.md': file(() =>
        (['todo', 'doing', 'done'] as const)
          .map(column => `## ${column}\n\n${board.list().filter(c => c.column === column).map(c => `- ${c.title} (${c.points})\n`).join('')}`)
          .join('\n'),
      ),
    }),
  }
})
