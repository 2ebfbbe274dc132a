import type { GraphQLContribution } from '../vfs/contribution.ts'
import type { DatasetStore } from './store.ts'
import { currentVersion, type TagMove, type TagRecord } from './tags.ts'

const typeDefs = /* GraphQL */ `
  "A dataset of the mounted store: file trees kept as versions, named by tags."
  type Dataset {
    name: String!
    "Tags that point at a version now, by name (removed tags are left out; their history stays in the store)."
    tags: [DatasetTag!]!
    "Every stored version, newest first."
    versions: [DatasetVersion!]!
  }

  "A name that points at one version, and can move."
  type DatasetTag {
    name: String!
    "Id of the version it points at (SHA-256 of the signed manifest, hex)."
    version: String!
    "When that version was pushed (ISO time)."
    created: String!
    "When the tag was last moved to it (ISO time)."
    moved: String!
    "Every move of the tag, oldest first."
    history: [DatasetTagMove!]!
  }

  "One move of a tag."
  type DatasetTagMove {
    "The version it pointed at from then on; null where the tag was removed."
    version: String
    "ISO time."
    time: String!
    "Name of the identity that moved it."
    by: String!
  }

  "An immutable, signed version of a dataset."
  type DatasetVersion {
    id: String!
    "ISO time of the push."
    created: String!
    "Number of files."
    files: Int!
    "Bytes of file content."
    bytes: Float!
    "SHA-256 over the tree (paths, kinds, modes, sizes, contents, targets), hex."
    digest: String!
  }

  extend type Query {
    "The datasets of the store mounted in the tree, by name."
    datasets: [Dataset!]!
    "One dataset, or null when it has no tags."
    dataset(name: String!): Dataset
  }
`

interface DatasetParent {
  name: string
}

interface TagParent {
  dataset: string
  record: TagRecord
  version: string
}

/**
 * Makes the typed GraphQL fields (`datasets`, `dataset(name)`) of a mounted dataset store.
 * `source` may be a function that opens the store on first use (for a mount opened lazily,
 * whose contribution must be known before it opens).
 */
export function datasetsGraphQL(source: DatasetStore | (() => Promise<DatasetStore>)): GraphQLContribution {
  const get = typeof source === 'function' ? source : () => Promise.resolve(source)
  const versionOf = async (dataset: string, id: string) => {
    const m = await (await get()).version(dataset, id)
    const files = m.entries.filter(e => e.kind === 'file')
    return { id, created: m.created, files: files.length, bytes: files.reduce((n, e) => n + e.size, 0), digest: m.digest }
  }
  return {
    typeDefs,
    resolvers: {
      Query: {
        datasets: async (): Promise<DatasetParent[]> => (await (await get()).datasets()).map(name => ({ name })),
        dataset: async (_: unknown, { name }: { name: string }): Promise<DatasetParent | null> => ((await (await get()).datasets()).includes(name) ? { name } : null),
      },
      Dataset: {
        tags: async ({ name }: DatasetParent): Promise<TagParent[]> =>
          (await (await get()).tags(name)).flatMap(record => {
            const version = currentVersion(record)
            return version ? [{ dataset: name, record, version }] : []
          }),
        versions: async ({ name }: DatasetParent) => {
          const all = await Promise.all((await (await get()).versions(name)).map(id => versionOf(name, id)))
          return all.sort((a, b) => b.created.localeCompare(a.created) || a.id.localeCompare(b.id))
        },
      },
      DatasetTag: {
        name: ({ record }: TagParent) => record.tag,
        created: async ({ dataset, version }: TagParent) => (await (await get()).version(dataset, version)).created,
        moved: ({ record }: TagParent) => record.history.at(-1)!.time,
        history: ({ record }: TagParent): TagMove[] => record.history,
      },
    },
  }
}
