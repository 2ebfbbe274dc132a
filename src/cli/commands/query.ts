import type { Command } from 'commander'
import type { ConfigOptions, Shared } from '../shared.ts'

interface QueryOptions extends ConfigOptions {
  variables?: string
  operation?: string
}

/**
 * Adds `facet query '<graphql>' [--variables JSON] [--operation NAME]`: runs one
 * GraphQL operation against the config's tree in-process (no server, no port) and
 * prints the JSON result; exits 1 when the result has errors. `-` reads the
 * operation from stdin.
 */
export function register(program: Command, shared: Shared): void {
  shared
    .addConfigOption(
      program
        .command('query')
        .description('run a GraphQL query or mutation against the tree in-process and print the JSON result')
        .argument('<graphql>', "the operation, e.g. '{ node(path: \"/\") { name } }'; '-' reads it from stdin")
        .option('--variables <json>', 'variables as a JSON object')
        .option('--operation <name>', 'the operation to run when the document has several'),
    )
    .action(async (source: string, options: QueryOptions) => {
      const query = source === '-' ? (await shared.readStdin()).toString('utf8') : source
      let variables: unknown
      if (options.variables !== undefined) {
        try {
          variables = JSON.parse(options.variables)
        } catch (err) {
          throw shared.usageError(`--variables is not valid JSON: ${err instanceof Error ? err.message : String(err)}`)
        }
        if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) {
          throw shared.usageError('--variables must be a JSON object')
        }
      }
      const { createGraphQLApi } = await import('../../graphql/api.ts')
      const body = await shared.withVfs(options, async vfs => {
        const api = createGraphQLApi(vfs, { graphiql: false })
        const res = await api.fetch('http://facet/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ query, variables, operationName: options.operation }),
        })
        return (await res.json()) as { errors?: unknown[] }
      })
      await shared.print(JSON.stringify(body, null, 2) + '\n')
      if (body.errors?.length) process.exitCode = 1
    })
}
