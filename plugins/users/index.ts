import { defineView, dir, file, type View } from '../../src/views/view.ts'
import type { Chain } from '../../src/chain/store.ts'
import type { VNode } from '../../src/vfs/node.ts'

/** Options for the `users` view. */
export interface UsersViewOptions {
  /** The open chain whose identities are shown. */
  chain: Chain
}

/** One identity as the `users` view renders it. */
export interface UserRecord {
  /** The identity's human name, e.g. `'alice'`; not unique (the file name adds the key id's start when two clash). */
  name: string
  /** The identity's stable id: SHA-256 over both public keys, as 64 hex digits. */
  keyId: string
  /** `owner` for the chain's owner, `writer` for an identity the owner authorised. */
  role: 'owner' | 'writer'
  /** The key that verifies the identity's signatures. */
  signing: {
    /** Always `'ML-DSA-65'`. */
    algorithm: 'ML-DSA-65'
    /** The public key, base64 (1952 bytes). */
    publicKey: string
  }
  /** The key others encrypt content keys to when granting the identity access. */
  kem: {
    /** Always `'ML-KEM-768'`. */
    algorithm: 'ML-KEM-768'
    /** The public key, base64 (1184 bytes). */
    publicKey: string
  }
}

/** The identities a chain knows (its owner and authorised writers) as records, key ids first. */
export function userRecords(chain: Chain): UserRecord[] {
  return [...chain.writers.values()]
    .map(w => ({
      name: w.name,
      keyId: Buffer.from(w.keyId).toString('hex'),
      role: w.owner ? ('owner' as const) : ('writer' as const),
      signing: { algorithm: 'ML-DSA-65' as const, publicKey: Buffer.from(w.signingKey).toString('base64') },
      kem: { algorithm: 'ML-KEM-768' as const, publicKey: Buffer.from(w.kemKey).toString('base64') },
    }))
    .sort((a, b) => (a.role === b.role ? a.name.localeCompare(b.name) : a.role === 'owner' ? -1 : 1))
}

/**
 * The `users` view: one read-only `<name>.json` per identity of the chain (owner and
 * authorised writers) with its key id and public keys, plus `by-key/<keyId>.json`.
 */
export default defineView((options: UsersViewOptions): View => {
  const render = (r: UserRecord) => JSON.stringify(r, null, 2) + '\n'
  const byName = (): Record<string, VNode> => {
    const out: Record<string, VNode> = {}
    for (const r of userRecords(options.chain)) {
      const stem = out[`${r.name}.json`] ? `${r.name}-${r.keyId.slice(0, 8)}` : r.name
      out[`${stem}.json`] = file(() => render(r))
    }
    out['by-key'] = dir(() => Object.fromEntries(userRecords(options.chain).map(r => [`${r.keyId}.json`, file(() => render(r))])))
    return out
  }
  return { name: 'users', root: dir(byName) }
})
