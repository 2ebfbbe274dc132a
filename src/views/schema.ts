import type { StandardSchemaV1 } from '@standard-schema/spec'
import { vfsError } from '../vfs/errors.ts'

export type { StandardSchemaV1 }

/** Formats Standard Schema issues as one readable line: `title: expected string; tags.0: too short`. */
export function describeIssues(issues: ReadonlyArray<StandardSchemaV1.Issue>): string {
  return issues
    .map(issue => {
      const path = (issue.path ?? []).map(p => String(typeof p === 'object' && p !== null ? p.key : p)).join('.')
      return path ? `${path}: ${issue.message}` : issue.message
    })
    .join('; ')
}

/**
 * Validates `value` with any Standard Schema validator (zod, valibot, arktype…) and
 * returns its output; throws `EINVAL` naming every issue.
 */
export async function validate<T>(schema: StandardSchemaV1<unknown, T>, value: unknown, options?: StandardSchemaV1.Options): Promise<T> {
  let result = schema['~standard'].validate(value, options)
  if (result instanceof Promise) result = await result
  if (result.issues) throw vfsError('EINVAL', `invalid record: ${describeIssues(result.issues)}`)
  return result.value
}
