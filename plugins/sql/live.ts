import { createHash } from 'node:crypto'
import { decodeCell, ident, renderSql } from './codec.ts'
import type { SqlSource } from './source.ts'
import { keyText, type SqlTable } from './table.ts'

/** The NOTIFY channel FacetFS triggers use. @default */
export const DEFAULT_CHANNEL = 'facet_changes'

/** A change another client made, as the triggers report it. */
export interface RowChange {
  /** The table's folder name. */
  table: string
  /** What the other client did; `truncate` emptied the whole table. */
  op: 'insert' | 'update' | 'delete' | 'truncate'
  /** The key after the change (absent for delete and truncate). */
  key?: string[]
  /** The key before the change (absent for insert and truncate); differs from `key` when an update changed the key. */
  oldKey?: string[]
}

/**
 * What a change listener receives: a row change, or `undefined` when changes may have
 * been missed (the listening connection was lost, or a payload was too big) and
 * everything should be read again.
 */
export type ChangeListener = (change: RowChange | undefined) => void

function triggerFunctionName(table: SqlTable): string {
  const base = `facet_notify_${table.info.name}`
  if (Buffer.byteLength(base) <= 63) return base
  return `facet_notify_${createHash('sha256').update(table.info.name).digest('hex').slice(0, 16)}`
}

/**
 * The SQL that installs the change triggers of `table`: a function (in the table's
 * schema) that sends `{schema, table, op, old, new}` with the rendered key on `channel`
 * after each row change, an `AFTER INSERT OR UPDATE OR DELETE … FOR EACH ROW` trigger
 * and a statement-level `AFTER TRUNCATE` trigger, both named `facet_notify`.
 * Idempotent (`CREATE OR REPLACE`). FacetFS runs it only when asked (`installTriggers: true`).
 */
export function triggerSql(table: SqlTable, channel: string = DEFAULT_CHANNEL): string {
  const info = table.info
  const rel = `${ident(info.schema)}.${ident(info.name)}`
  const fn = `${ident(info.schema)}.${ident(triggerFunctionName(table))}`
  const keyOf = (row: string) => `json_build_array(${table.keyFields.map(k => renderSql(k.column, `${row}.${ident(k.column.name)}`)).join(', ')})`
  const lit = (s: string) => `'${s.replace(/'/g, "''")}'`
  return `
CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $facet$
DECLARE
  payload text;
  k_old json;
  k_new json;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN k_old := ${keyOf('OLD')}; END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN k_new := ${keyOf('NEW')}; END IF;
  payload := json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', lower(TG_OP), 'old', k_old, 'new', k_new)::text;
  IF octet_length(payload) > 7900 THEN
    payload := json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', lower(TG_OP), 'overflow', true)::text;
  END IF;
  PERFORM pg_notify(${lit(channel)}, payload);
  RETURN NULL;
END
$facet$;
CREATE OR REPLACE TRIGGER facet_notify AFTER INSERT OR UPDATE OR DELETE ON ${rel} FOR EACH ROW EXECUTE FUNCTION ${fn}();
CREATE OR REPLACE TRIGGER facet_notify_truncate AFTER TRUNCATE ON ${rel} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();
`
}

/** Installs the change triggers of each table (see {@link triggerSql}) in one transaction. */
export async function installTriggers(source: SqlSource, tables: readonly SqlTable[], channel: string = DEFAULT_CHANNEL): Promise<void> {
  await source.transaction(async tx => {
    for (const t of tables) {
      for (const stmt of splitStatements(triggerSql(t, channel))) await tx.query(stmt)
    }
  })
}

/** Removes what {@link installTriggers} installed. */
export async function removeTriggers(source: SqlSource, tables: readonly SqlTable[]): Promise<void> {
  await source.transaction(async tx => {
    for (const t of tables) {
      const rel = `${ident(t.info.schema)}.${ident(t.info.name)}`
      await tx.query(`DROP TRIGGER IF EXISTS facet_notify ON ${rel}`)
      await tx.query(`DROP TRIGGER IF EXISTS facet_notify_truncate ON ${rel}`)
      await tx.query(`DROP FUNCTION IF EXISTS ${ident(t.info.schema)}.${ident(triggerFunctionName(t))}()`)
    }
  })
}

function splitStatements(sql: string): string[] {
  // The function body is one statement ending at `$facet$;`; the triggers follow, one per line.
  const end = sql.indexOf('$facet$;') + '$facet$;'.length
  return [sql.slice(0, end), ...sql.slice(end).split('\n').filter(s => s.trim())]
}

interface Payload {
  schema: string
  table: string
  op: RowChange['op']
  old: Array<string | null> | null
  new: Array<string | null> | null
  overflow?: boolean
}

/**
 * Listens for the triggers' notifications and reports each change to a table in
 * `tables` to `onChange`, with keys decoded as the table's row names use them.
 * Reports `undefined` after the listening connection came back (changes may have been
 * missed). Returns a stop function.
 */
export async function watchChanges(
  source: SqlSource,
  tables: readonly SqlTable[],
  onChange: ChangeListener,
  channel: string = DEFAULT_CHANNEL,
): Promise<() => Promise<void>> {
  const byName = new Map(tables.map(t => [`${t.info.schema}.${t.info.name}`, t]))
  const decodeKey = (t: SqlTable, cells: Array<string | null> | null) =>
    cells ? t.keyFields.map((k, i) => keyText(decodeCell(k.column, cells[i] ?? null))) : undefined
  return source.listen(
    channel,
    text => {
      let p: Payload
      try {
        p = JSON.parse(text) as Payload
      } catch {
        return
      }
      const t = byName.get(`${p.schema}.${p.table}`)
      if (!t) return
      const change: RowChange = { table: t.folder, op: p.op }
      if (!p.overflow) {
        const key = decodeKey(t, p.new)
        const oldKey = decodeKey(t, p.old)
        if (key) change.key = key
        if (oldKey) change.oldKey = oldKey
      }
      onChange(change)
    },
    () => onChange(undefined),
  )
}
