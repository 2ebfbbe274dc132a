import { defineView, dir, file, type View } from '../../src/views/view.ts'
import type { Chain } from '../../src/chain/store.ts'
import type { VNode } from '../../src/vfs/node.ts'
import { listShares } from '../../src/chain/sharing.ts'
import { listGroups } from '../../src/chain/groups.ts'
import { posixIdOf } from '../../src/chain/posix-ids.ts'

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
  /** The uid the identity stands for on a mounted chain: 2^30 plus its key id's first four bytes modulo 2^30 (posix-ids.ts); files keep the uid of whoever made them. */
  uid: number
  /** `owner` for the chain's owner, `writer` for an identity the owner authorised to write, `reader` for one holding only grants. */
  role: 'owner' | 'writer' | 'reader'
  /** The folders shared with the identity (`facet share`), by their path now, and whether it may write there (writers write the whole chain). */
  grants: {
    /** The folder's path now. */
    path: string
    /** `write` when the identity may write there, else `read`. */
    access: 'read' | 'write'
  }[]
  /** The key that verifies the identity's signatures (absent for a reader: the log holds only the key id a grant was wrapped for). */
  signing?: {
    /** Always `'ML-DSA-65'`. */
    algorithm: 'ML-DSA-65'
    /** The public key, base64 (1952 bytes). */
    publicKey: string
  }
  /** The key others encrypt content keys to when granting the identity access (absent for a reader). */
  kem?: {
    /** Always `'ML-KEM-768'`. */
    algorithm: 'ML-KEM-768'
    /** The public key, base64 (1184 bytes). */
    publicKey: string
  }
}

/** The identities a chain knows (its owner, authorised writers, and the readers it was shared with) as records: owner first, then writers, then readers, each by name. */
export function userRecords(chain: Chain): UserRecord[] {
  const shares = safeShares(chain)
  const grantsOf = (hex: string, write: boolean) =>
    shares.filter(s => s.keyId === hex && s.path !== undefined).map(s => ({ path: s.path!, access: write ? ('write' as const) : ('read' as const) }))
  const records: UserRecord[] = [...chain.writers.values()].map(w => {
    const keyId = Buffer.from(w.keyId).toString('hex')
    return {
      name: w.name,
      keyId,
      uid: posixIdOf(w.keyId),
      role: w.owner ? ('owner' as const) : ('writer' as const),
      grants: w.owner ? [{ path: '/', access: 'write' as const }] : grantsOf(keyId, true),
      signing: { algorithm: 'ML-DSA-65' as const, publicKey: Buffer.from(w.signingKey).toString('base64') },
      kem: { algorithm: 'ML-KEM-768' as const, publicKey: Buffer.from(w.kemKey).toString('base64') },
    }
  })
  for (const hex of new Set(shares.filter(s => !s.write && s.group === undefined).map(s => s.keyId))) {
    // `chmod o+r` grants to everyone holding the chain (mode-grants.ts): a well-known key, no one's identity
    const everyone = shares.some(s => s.keyId === hex && s.everyone)
    records.push({ name: everyone ? 'everyone' : `reader-${hex.slice(0, 8)}`, keyId: hex, uid: posixIdOf(Buffer.from(hex, 'hex')), role: 'reader', grants: grantsOf(hex, false) })
  }
  const rank = { owner: 0, writer: 1, reader: 2 }
  return records.sort((a, b) => (a.role === b.role ? a.name.localeCompare(b.name) : rank[a.role] - rank[b.role]))
}

/** The chain's shares; none for an identity that reads only part of the chain (it cannot see where the others' grants lie). */
function safeShares(chain: Chain): ReturnType<typeof listShares> {
  if (chain.tree.partial) return []
  return listShares(chain)
}

/**
 * The `users` view: one read-only `<name>.json` per identity of the chain (owner,
 * authorised writers, readers it was shared with) with its key id, public keys and the
 * folders it may read or write, plus `by-key/<keyId>.json` and `grants.json` (every grant:
 * path, key id, access) and `groups/<name>.json` (each group of the chain: key id, gid, key
 * epoch, members, and the folders granted to it). The folders `chmod o+r` opened to everyone
 * holding the chain show in `everyone.json`.
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
    out['grants.json'] = file(
      () =>
        JSON.stringify(
          userRecords(options.chain).flatMap(r => r.grants.map(g => ({ path: g.path, name: r.name, keyId: r.keyId, access: g.access }))),
          null,
          2,
        ) + '\n',
    )
    out['groups'] = dir(() => Object.fromEntries(listGroups(options.chain).map(g => [`${g.name}.json`, file(() => JSON.stringify(g, null, 2) + '\n')])))
    return out
  }
  return { name: 'users', root: dir(byName) }
})
