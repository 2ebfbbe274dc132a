import type { Manifest } from './manifest.ts'

/**
 * The versions readers of this process have open (a mounted file, a pull under way),
 * counted, so gc keeps their chunks however the tags move. Readers in other processes are
 * covered by gc's grace period instead (see `GcOptions.graceMs`).
 */
export class Pins {
  private readonly open = new Map<string, { manifest: Manifest; count: number }>()
  private chunkSet: Set<string> | undefined

  /** Marks version `id` in use until the returned function is called (once; later calls do nothing). */
  pin(id: string, manifest: Manifest): () => void {
    const held = this.open.get(id)
    if (held) held.count++
    else {
      this.open.set(id, { manifest, count: 1 })
      this.chunkSet = undefined
    }
    let released = false
    return () => {
      if (released) return
      released = true
      const h = this.open.get(id)
      if (h && --h.count === 0) {
        this.open.delete(id)
        this.chunkSet = undefined
      }
    }
  }

  /** True while some reader holds version `id`. */
  hasVersion(id: string): boolean {
    return this.open.has(id)
  }

  /** True while some open version lists chunk `id`. */
  hasChunk(id: string): boolean {
    this.chunkSet ??= new Set([...this.open.values()].flatMap(h => h.manifest.entries.flatMap(e => (e.chunks ?? []).map(c => c[0]))))
    return this.chunkSet.has(id)
  }
}
