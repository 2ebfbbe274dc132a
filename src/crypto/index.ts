export * from './primitives.ts'
export * from './pq.ts'
export * from './identity.ts'
export * from './passphrase.ts'
