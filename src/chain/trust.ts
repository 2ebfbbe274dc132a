import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** The last head of a chain seen on this machine. */
export interface TrustedHead {
  seq: number
  hash: string
}

/** Thrown when a chain's log is older than, or diverges from, the head this machine has seen. */
export class RollbackError extends Error {
  override readonly name = 'RollbackError'
  constructor(
    message: string,
    /** The block the problem is at. */
    readonly seq: number,
  ) {
    super(message)
  }
}

/** The trust store file of a chain under `home`. */
export function trustPath(home: string, chainId: Uint8Array): string {
  return join(home, 'trust', `${Buffer.from(chainId).toString('hex')}.json`)
}

/** Reads the trusted head of a chain, or `undefined` when this machine has never seen it. */
export async function readTrust(home: string, chainId: Uint8Array): Promise<TrustedHead | undefined> {
  try {
    const t = JSON.parse(await readFile(trustPath(home, chainId), 'utf8')) as TrustedHead
    return { seq: t.seq, hash: t.hash }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Records `head` as the trusted head of a chain (write to a temporary file, then rename). */
export async function writeTrust(home: string, chainId: Uint8Array, head: TrustedHead): Promise<void> {
  const path = trustPath(home, chainId)
  await mkdir(join(home, 'trust'), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  await writeFile(tmp, JSON.stringify({ ...head, updated: new Date().toISOString() }) + '\n', { mode: 0o600 })
  await rename(tmp, path)
}

/**
 * Checks a verified log against the trusted head: the log must reach at least the
 * trusted seq, and where it holds that seq the hash must match. Returns the problem, or
 * `undefined` when the log is a continuation of what was seen.
 */
export function checkTrust(trusted: TrustedHead | undefined, log: { baseSeq: number; headSeq: number; hashAt(seq: number): Uint8Array | undefined }): RollbackError | undefined {
  if (!trusted) return undefined
  if (log.headSeq < trusted.seq) {
    return new RollbackError(
      `chain rolled back: the log ends at block ${log.headSeq} but block ${trusted.seq} was seen before (hash ${trusted.hash.slice(0, 16)})`,
      log.headSeq + 1,
    )
  }
  if (trusted.seq >= log.baseSeq) {
    const h = log.hashAt(trusted.seq)
    if (!h || Buffer.from(h).toString('hex') !== trusted.hash) {
      return new RollbackError(`chain forked: block ${trusted.seq} differs from the one seen before`, trusted.seq)
    }
  }
  return undefined
}
