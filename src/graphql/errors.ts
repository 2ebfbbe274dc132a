import { GraphQLError } from 'graphql'
import { maskError as yogaMaskError } from 'graphql-yoga'
import { isErrnoCode, VfsError } from '../vfs/errors.ts'

/** True when `err` is a {@link VfsError}, also one from another copy of the module (a plugin's). */
export function isVfsErrorLike(err: unknown): err is VfsError {
  if (err instanceof VfsError) return true
  const e = err as { name?: unknown; code?: unknown; message?: unknown } | null
  return typeof e === 'object' && e !== null && e.name === 'VfsError' && isErrnoCode(e.code) && typeof e.message === 'string'
}

/**
 * True for a GraphQLError of any copy of `graphql` (yoga's executor and a test runner
 * may load the CommonJS and the ESM build side by side, so `instanceof` is not enough).
 */
export function isGraphQLErrorLike(err: unknown): err is GraphQLError {
  return err instanceof GraphQLError || (err instanceof Error && err.name === 'GraphQLError' && 'extensions' in err)
}

/**
 * Turns a {@link VfsError} into the GraphQL error a client sees: the same message as
 * FUSE and the CLI give, and `extensions` with the errno `code` (`'ENOENT'`), the
 * `errno` number, the `syscall` and the `path`.
 */
export function vfsGraphQLError(err: VfsError, from?: GraphQLError): GraphQLError {
  const extensions: Record<string, unknown> = { code: err.code, errno: err.errno }
  if (err.syscall !== undefined) extensions.syscall = err.syscall
  if (err.path !== undefined) extensions.path = err.path
  if (err.dest !== undefined) extensions.dest = err.dest
  return new GraphQLError(err.message, {
    nodes: from?.nodes ?? null,
    source: from?.source ?? null,
    positions: from?.positions ?? null,
    path: from?.path ?? null,
    extensions,
  })
}

/**
 * Makes yoga's `maskError`: VfsErrors keep their message and gain their errno code,
 * deliberate GraphQLErrors pass, and anything else becomes "Unexpected error." (yoga
 * logs the original with its stack; it is never sent).
 */
export function createMaskError(): (error: unknown, message: string) => Error {
  return (error, message) => {
    const wrapper = isGraphQLErrorLike(error) ? error : undefined
    const original = wrapper?.originalError ?? error
    if (isVfsErrorLike(original)) return vfsGraphQLError(original, wrapper)
    // yoga tells a deliberate error by `instanceof`, which fails for one made by another copy of graphql
    if (isDeliberate(error)) return error
    return yogaMaskError(error, message, false)
  }
}

/** A GraphQLError made on purpose: not wrapping anything, or wrapping only GraphQLErrors. */
function isDeliberate(err: unknown): err is GraphQLError {
  return isGraphQLErrorLike(err) && (err.originalError == null || isDeliberate(err.originalError))
}
