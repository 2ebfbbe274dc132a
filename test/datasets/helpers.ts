import { createHash, randomBytes } from 'node:crypto'
import { cp, mkdir, mkdtemp, readdir, readFile, readlink, rm, lstat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, type Identity } from '../../src/crypto/identity.ts'

let cached: Identity | undefined

/** One identity per test file. */
export function testIdentity(): Identity {
  cached ??= (({ seeds: _s, ...id }) => id)(generateIdentity('tester'))
  return cached
}

/** A fresh temp folder. */
export function tempDir(prefix = 'facet-ds-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

/** Writes a tree of small files, a 3 MiB file and a symlink into `dir`. */
export async function makeTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'docs/deep'), { recursive: true })
  await mkdir(join(dir, 'data'), { recursive: true })
  for (let i = 0; i < 20; i++) await writeFile(join(dir, 'docs', `note-${i}.txt`), `note ${i}\n`.repeat(50 + i * 40))
  await writeFile(join(dir, 'docs/deep/readme.md'), '# deep\n')
  await writeFile(join(dir, 'data/big.bin'), randomBytes(3 << 20))
  await writeFile(join(dir, 'data/other.bin'), randomBytes(400 << 10))
  await symlink('../docs/deep/readme.md', join(dir, 'data/readme-link'))
}

/** Changes a few files of a {@link makeTree} tree, including 1000 bytes inserted in the middle of the big file. */
export async function changeTree(dir: string): Promise<void> {
  const big = await readFile(join(dir, 'data/big.bin'))
  const mid = big.length >> 1
  await writeFile(join(dir, 'data/big.bin'), Buffer.concat([big.subarray(0, mid), randomBytes(1000), big.subarray(mid)]))
  await writeFile(join(dir, 'docs/note-3.txt'), 'rewritten\n')
  await writeFile(join(dir, 'docs/added.txt'), 'a new file\n')
  await rm(join(dir, 'docs/note-7.txt'))
}

/** Copies `from` to `to` (a snapshot to compare against later). */
export async function snapshot(from: string, to: string): Promise<void> {
  await cp(from, to, { recursive: true, verbatimSymlinks: true })
}

/** Every path under `dir` with what it holds (file SHA-256, symlink target, `dir`), skipping the pull state file. */
export async function treeSums(dir: string, withModes = true, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const name of (await readdir(join(dir, rel))).sort()) {
    if (rel === '' && name === '.facet-dataset') continue
    const p = rel ? `${rel}/${name}` : name
    const st = await lstat(join(dir, p))
    if (st.isDirectory()) {
      out[p] = 'dir'
      Object.assign(out, await treeSums(dir, withModes, p))
    } else if (st.isSymbolicLink()) out[p] = `-> ${await readlink(join(dir, p))}`
    else out[p] = createHash('sha256').update(await readFile(join(dir, p))).digest('hex') + (withModes ? ` ${(st.mode & 0o777).toString(8)}` : '')
  }
  return out
}
