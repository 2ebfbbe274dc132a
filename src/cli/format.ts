import type { NodeKind } from '../vfs/node.ts'
import type { Stat } from '../vfs/vfs.ts'

const TYPE_CHAR: Record<NodeKind, string> = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', chardev: 'c', blockdev: 'b', socket: 's' }

/** Renders permission bits as `ls` does, e.g. `-rw-r--r--` for a file with mode `0o644`. */
export function modeString(kind: NodeKind, mode: number): string {
  let s = TYPE_CHAR[kind]
  for (const shift of [6, 3, 0]) {
    const bits = (mode >> shift) & 7
    s += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-')
  }
  return s
}

/** Renders permission bits as four octal digits, e.g. `0644`. */
export function octalMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0')
}

/** Renders a time as local `YYYY-MM-DD HH:MM`, the `ls -l` column. */
export function shortTime(ms: number): string {
  const d = new Date(ms)
  const two = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`
}

/** One `ls -l` row before alignment: mode, links, owner, group, size, time, name. */
export type LongRow = [string, string, string, string, string, string, string]

/** Builds the `ls -l` row of `name` from its stat; `target` is a symlink's target. */
export function longRow(name: string, st: Stat, target?: string): LongRow {
  const shown = target === undefined ? name : `${name} -> ${target}`
  return [modeString(st.kind, st.mode), String(st.nlink), String(st.uid), String(st.gid), String(st.size), shortTime(st.mtimeMs), shown]
}

/** Aligns `ls -l` rows: numbers right-aligned, text left-aligned, one space between columns. */
export function alignRows(rows: LongRow[]): string {
  const widths = [0, 1, 2, 3, 4, 5].map(i => Math.max(0, ...rows.map(r => r[i]!.length)))
  const right = new Set([1, 4])
  return rows
    .map(r => r.map((cell, i) => (i === 6 ? cell : right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join(' ') + '\n')
    .join('')
}

/** Renders a stat as `key: value` lines for `facet stat`. */
export function statText(path: string, st: Stat, target?: string): string {
  const rows: [string, string][] = [
    ['path', target === undefined ? path : `${path} -> ${target}`],
    ['kind', st.kind],
    ['size', String(st.size)],
    ['mode', `${octalMode(st.mode)} (${modeString(st.kind, st.mode)})`],
    ['uid', String(st.uid)],
    ['gid', String(st.gid)],
    ['nlink', String(st.nlink)],
    ['ino', String(st.ino)],
    ['atime', new Date(st.atimeMs).toISOString()],
    ['mtime', new Date(st.mtimeMs).toISOString()],
    ['ctime', new Date(st.ctimeMs).toISOString()],
  ]
  return rows.map(([k, v]) => `${(k + ':').padEnd(7)}${v}\n`).join('')
}
