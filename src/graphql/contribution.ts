// The type lives beside the mount table, which must not import anything above the router.
export type { GraphQLContribution } from '../vfs/contribution.ts'
