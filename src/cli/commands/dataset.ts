import type { Command } from 'commander'
import type { Shared } from '../shared.ts'

interface StoreCliOptions {
  home?: string
  identity?: string
  passphraseFile?: string
  allowRollback?: boolean
}

type Datasets = typeof import('../../datasets/index.ts')

function mib(n: number): string {
  return n >= 1 << 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`
}

/** A progress line on stderr, redrawn at most every 100 ms, only on a terminal. */
function progress(what: string, show: (n: number) => string = mib): { update(done: number, total: number): void; end(): void } {
  if (!process.stderr.isTTY) return { update() {}, end() {} }
  let last = 0
  let drawn = false
  return {
    update(done, total) {
      const now = Date.now()
      if (now - last < 100) return
      last = now
      drawn = true
      process.stderr.write(`\r${what} ${show(done)} of ${show(total)} (${total ? Math.floor((100 * done) / total) : 100}%)\x1b[K`)
    },
    end() {
      if (drawn) process.stderr.write('\r\x1b[K')
    },
  }
}

/** Adds `facet dataset push|pull|tag|ls|diff|rm|gc`: versioned, tagged, deduplicated file trees kept in the chain `datasets`. */
export function register(program: Command, shared: Shared): void {
  const cmd = program.command('dataset').description('versioned, tagged, deduplicated file trees kept in an encrypted, signed chain (<home>/chains/datasets.chain)')
  const withStore = (c: Command) =>
    c
      .option('--home <dir>', 'FacetFS home (default: $FACET_HOME or ~/.facet)')
      .option('--identity <name>', 'the identity that opens the store and signs versions', 'default')
      .option('--passphrase-file <file>', 'read the passphrase from the first line of this file (else FACET_PASSPHRASE, else a prompt)')
      .option('--allow-rollback', 'accept a store log older than the last one seen here')

  async function open<T>(options: StoreCliOptions, fn: (ds: Datasets, store: import('../../datasets/index.ts').DatasetStore) => Promise<T>): Promise<T> {
    const ds = await import('../../datasets/index.ts')
    const c = await import('../../crypto/index.ts')
    const home = options.home ?? c.facetHome()
    const identity = await shared.unlockIdentity({ home, identity: options.identity, passphraseFile: options.passphraseFile })
    const opened = await ds.openDatasetStore({ identity, home, allowRollback: options.allowRollback === true })
    try {
      return await fn(ds, opened.store)
    } catch (err) {
      const expected = [ds.NameError, ds.PushError, ds.PullRefusedError, ds.NotFoundError, ds.DigestError, ds.ManifestError, ds.ChunkIntegrityError]
      if (expected.some(E => err instanceof E)) throw new shared.CliError((err as Error).message)
      throw err
    } finally {
      await opened.close()
    }
  }

  withStore(cmd.command('push').description('push folder DIR as a new version of NAME and point TAG at it (default tag: latest)'))
    .argument('<dir>')
    .argument('<ref>', 'NAME[:TAG]')
    .option('--skip-errors', 'leave out unreadable files, special files and looping symlinks (named on stderr) instead of failing')
    .action(async (dir: string, ref: string, options: StoreCliOptions & { skipErrors?: boolean }) => {
      await open(options, async (ds, store) => {
        const { dataset, tag } = ds.parseRef(ref, 'latest')
        const bar = progress('pushing')
        const r = await ds.push(store, dir, dataset, tag, { skipErrors: options.skipErrors === true, progress: bar.update }).finally(bar.end)
        for (const p of r.skipped) shared.note(`skipped ${p.path}: ${p.reason}`)
        await shared.print(`${dataset}:${tag} -> ${r.version.slice(0, 12)}: ${r.files} files, ${mib(r.bytes)}; new ${mib(r.bytesNew)} (${r.chunksNew} chunks), reused ${mib(r.bytesReused)} (${r.chunksReused} chunks)\n`)
      })
    })

  withStore(cmd.command('pull').description('write version NAME:TAG to DIR, reading only the chunks DIR lacks; atomic: a crash leaves the old tree or the new'))
    .argument('<ref>', 'NAME:TAG')
    .argument('<dir>')
    .option('--force', 'replace DIR even when it has local edits or was not pulled here')
    .action(async (ref: string, dir: string, options: StoreCliOptions & { force?: boolean }) => {
      await open(options, async (ds, store) => {
        const { dataset, tag } = ds.parseRef(ref, 'latest')
        const bar = progress('pulling')
        const r = await ds.pull(store, dataset, tag, dir, { force: options.force === true, progress: bar.update }).finally(bar.end)
        await shared.print(`${dir}: ${dataset}:${tag} (${r.version.slice(0, 12)}), ${r.files} files, ${mib(r.bytes)}; read ${mib(r.bytesFetched)} (${r.chunksFetched} chunks) from the store, kept ${mib(r.bytesLocal)} (${r.chunksLocal} chunks) from the folder\n`)
      })
    })

  withStore(cmd.command('tag').description('point tag TO of NAME at the version NAME:FROM points at (FROM may be a version id)'))
    .argument('<from>', 'NAME:FROM')
    .argument('<to>', 'TO')
    .action(async (from: string, to: string, options: StoreCliOptions) => {
      await open(options, async (ds, store) => {
        const at = from.indexOf(':')
        const dataset = ds.checkDatasetName(at < 0 ? from : from.slice(0, at))
        const what = at < 0 ? 'latest' : from.slice(at + 1)
        const version = /^[0-9a-f]{64}$/.test(what) ? what : (await store.resolve(dataset, ds.checkTagName(what))).id
        await store.moveTag(dataset, ds.checkTagName(to), version)
        await store.sync()
        await shared.print(`${dataset}:${to} -> ${version.slice(0, 12)}\n`)
      })
    })

  withStore(cmd.command('rm').description('remove tag NAME:TAG (its history stays; gc frees what no tag reaches)'))
    .argument('<ref>', 'NAME:TAG')
    .action(async (ref: string, options: StoreCliOptions) => {
      await open(options, async (ds, store) => {
        const { dataset, tag } = ds.parseRef(ref)
        await store.moveTag(dataset, tag, null)
        await store.sync()
        await shared.print(`removed ${dataset}:${tag}\n`)
      })
    })

  withStore(cmd.command('ls').description('list datasets and their tags; with NAME, its tags; with NAME:TAG, the tag history'))
    .argument('[ref]', 'NAME or NAME:TAG')
    .action(async (ref: string | undefined, options: StoreCliOptions) => {
      await open(options, async (ds, store) => {
        const lines: string[] = []
        if (ref?.includes(':')) {
          const { dataset, tag } = ds.parseRef(ref)
          const record = await store.tag(dataset, tag)
          if (!record) throw new ds.NotFoundError(`no tag ${ref}`)
          for (const m of record.history) lines.push(`${m.time}  ${m.version ? m.version.slice(0, 12) : '(removed)'}  by ${m.by}`)
        } else {
          for (const dataset of ref ? [ds.checkDatasetName(ref)] : await store.datasets()) {
            for (const t of await store.tags(dataset)) {
              const v = ds.currentVersion(t)
              if (!v) continue
              const m = await store.version(dataset, v)
              const bytes = m.entries.reduce((n, e) => n + (e.kind === 'file' ? e.size : 0), 0)
              lines.push(`${`${dataset}:${t.tag}`.padEnd(28)} ${v.slice(0, 12)}  ${m.created}  ${m.entries.filter(e => e.kind === 'file').length} files  ${mib(bytes)}`)
            }
          }
        }
        await shared.print(lines.map(l => l + '\n').join(''))
      })
    })

  withStore(cmd.command('diff').description('what changed from NAME:A to NAME:B: + added, - removed, M changed (with the share of new chunks)'))
    .argument('<a>', 'NAME:A')
    .argument('<b>', 'NAME:B')
    .action(async (a: string, b: string, options: StoreCliOptions) => {
      await open(options, async (ds, store) => {
        const ra = ds.parseRef(a)
        const rb = ds.parseRef(b)
        const ma = (await store.resolve(ra.dataset, ra.tag)).manifest
        const mb = (await store.resolve(rb.dataset, rb.tag)).manifest
        const before = new Map(ma.entries.map(e => [e.path, e]))
        const after = new Map(mb.entries.map(e => [e.path, e]))
        const oldChunks = new Set(ma.entries.flatMap(e => (e.chunks ?? []).map(c => c[0])))
        const lines: string[] = []
        for (const [p, e] of after) {
          const was = before.get(p)
          if (!was) lines.push(`+ ${p}`)
          else if (was.kind !== e.kind || was.sha256 !== e.sha256 || was.target !== e.target || was.mode !== e.mode) {
            const fresh = (e.chunks ?? []).filter(c => !oldChunks.has(c[0])).reduce((n, c) => n + c[1], 0)
            lines.push(`M ${p}${e.kind === 'file' ? ` (${mib(fresh)} of ${mib(e.size)} new)` : ''}`)
          }
        }
        for (const p of before.keys()) if (!after.has(p)) lines.push(`- ${p}`)
        await shared.print(lines.sort((x, y) => x.slice(2).localeCompare(y.slice(2))).map(l => l + '\n').join(''))
      })
    })

  withStore(cmd.command('gc').description('free the versions and chunks no tag reaches'))
    .action(async (options: StoreCliOptions) => {
      await open(options, async (_ds, store) => {
        const bar = progress('collecting: chunk', String)
        const r = await store.gc((done, total) => bar.update(done, total)).finally(bar.end)
        await shared.print(`freed ${r.chunks} chunks (${mib(r.bytes)}) and ${r.versions} versions${r.temps ? `, removed ${r.temps} temp files` : ''}\n`)
      })
    })
}
