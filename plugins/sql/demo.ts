import type { PGlite } from '@electric-sql/pglite'
import type { View } from '../../src/views/view.ts'
import { sql, type SqlOptions } from './view.ts'

/** The example schema and rows of {@link createDemoSql}: a small library. */
export const DEMO_SQL = `
CREATE TABLE authors (
  id integer PRIMARY KEY,
  name text NOT NULL UNIQUE,
  born date
);
COMMENT ON TABLE authors IS 'Writers of the books';
CREATE TABLE books (
  id integer PRIMARY KEY,
  title text NOT NULL,
  author_id integer NOT NULL REFERENCES authors(id),
  published date,
  price numeric(8, 2) CHECK (price >= 0),
  tags text[] NOT NULL DEFAULT '{}'
);
CREATE TABLE reviews (
  book_id integer REFERENCES books(id) ON DELETE CASCADE,
  reviewer text,
  stars integer NOT NULL CHECK (stars BETWEEN 1 AND 5),
  body text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (book_id, reviewer)
);
INSERT INTO authors VALUES
  (1, 'Ada Lovelace', '1815-12-10'),
  (2, 'Alan Turing', '1912-06-23'),
  (3, 'Grace Hopper', '1906-12-09');
INSERT INTO books VALUES
  (1, 'Notes on the Analytical Engine', 1, '1843-10-01', 12.50, '{computing,history}'),
  (2, 'On Computable Numbers', 2, '1936-11-12', 9.99, '{logic}'),
  (3, 'Computing Machinery and Intelligence', 2, '1950-10-01', 7.00, '{ai,philosophy}'),
  (4, 'The Education of a Computer', 3, '1952-05-02', NULL, '{}');
INSERT INTO reviews VALUES
  (1, 'babbage', 5, 'Saw further than I did.', '2024-03-01 10:00:00.123456+00'),
  (2, 'church', 4, 'Equivalent to my lambda calculus.', '2024-03-02 12:30:00+00'),
  (3, 'searle', 2, 'Syntax is not semantics.', '2024-03-03 08:15:00.5+00');
`

/**
 * Makes the demo's `/db` view: an embedded PostgreSQL (PGlite, in memory) seeded with
 * `DEMO_SQL` — `authors`, `books` and `reviews` (a composite key) — with change
 * triggers installed, so edits made with SQL show up at once. No server is needed;
 * everything is lost when the process exits.
 */
export async function createDemoSql(options: Omit<SqlOptions, 'pglite' | 'url' | 'pool' | 'source' | 'dataSource'> = {}): Promise<View & {
  /** The demo database, for running SQL beside the view; closed when the view is disposed. */
  pglite: PGlite
}> {
  // PGlite is an optional peer of facetfs: load it only when the demo database is opened.
  const { PGlite } = await import('@electric-sql/pglite')
  const pglite = new PGlite()
  await pglite.exec(DEMO_SQL)
  const view = sql({ name: 'db', installTriggers: true, ...options, pglite })
  return Object.assign(view, {
    pglite,
    // the router disposes the root (closing the view's pool) before the view itself
    async dispose() {
      await pglite.close()
    },
  })
}
