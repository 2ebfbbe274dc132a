/** One move of a tag: the version it pointed at from `time` on (`null` once removed). */
export interface TagMove {
  version: string | null
  /** ISO time. */
  time: string
  /** Name of the identity that moved it. */
  by: string
}

/** A tag and every place it pointed at, oldest first; the last move is where it points now. */
export interface TagRecord {
  dataset: string
  tag: string
  history: TagMove[]
}

/** Thrown for a dataset or tag name that is not valid. */
export class NameError extends Error {
  override readonly name = 'NameError'
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/

/** Checks a dataset name (lowercase letters, digits, `.`, `_`, `-`; up to 64); returns it. */
export function checkDatasetName(name: string): string {
  if (!NAME.test(name) || name.includes('..')) throw new NameError(`invalid dataset name '${name}': use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`)
  return name
}

/** Checks a tag name (`1.2.0`, `2026.12`, `latest`, `stable`: letters, digits, `.`, `_`, `-`; up to 128, as Docker's); returns it. */
export function checkTagName(tag: string): string {
  if (!TAG.test(tag) || tag.includes('..')) throw new NameError(`invalid tag '${tag}': use letters, digits, '.', '_' and '-' (up to 128), not starting with '.' or '-'`)
  return tag
}

/** Splits `NAME[:TAG]`, checking both; the tag is `fallback` when absent. */
export function parseRef(ref: string, fallback?: string): { dataset: string; tag: string } {
  const at = ref.indexOf(':')
  const dataset = checkDatasetName(at < 0 ? ref : ref.slice(0, at))
  const tag = at < 0 ? fallback : ref.slice(at + 1)
  if (tag === undefined) throw new NameError(`'${ref}' names no tag: write ${dataset}:TAG`)
  return { dataset, tag: checkTagName(tag) }
}

/** Where a tag points now, or undefined when it was removed. */
export function currentVersion(record: TagRecord): string | undefined {
  return record.history.at(-1)?.version ?? undefined
}
