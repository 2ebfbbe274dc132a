import { describe, expect, it } from 'vitest'
import { PublishNotices } from '../../src/chain/publish-notices.ts'
import type { Logger } from '../../src/vfs/log.ts'

/** A logger that keeps its warnings, and tells when one matching a pattern arrives. */
function warnings(): { logger: Logger; lines: string[]; arrives(pattern: RegExp): Promise<string> } {
  const lines: string[] = []
  const waiting: { pattern: RegExp; done(line: string): void }[] = []
  const ignore = () => {}
  const logger: Logger = {
    debug: ignore,
    info: ignore,
    error: ignore,
    warn: (_obj, msg) => {
      const line = msg ?? ''
      lines.push(line)
      for (const w of waiting.splice(0)) {
        if (w.pattern.test(line)) w.done(line)
        else waiting.push(w)
      }
    },
  }
  return { logger, lines, arrives: pattern => new Promise(done => waiting.push({ pattern, done })) }
}

describe('the warnings that chmod o+r published a path to everyone', () => {
  it('names each of a few publications, and sums up the rest of a burst in one warning when it ends', async () => {
    const w = warnings()
    const notices = new PublishNotices(w.logger, '/x/files.chain', { each: 3, burstMs: 50 })
    const summed = w.arrives(/ more paths /)
    for (let i = 0; i < 20; i++) notices.published(`/src/f${i}.c`)
    expect(w.lines).toEqual([0, 1, 2].map(i => `/src/f${i}.c: published to everyone holding the chain's log (chmod o+r): its names, content and everything made in it later can be read without any identity`))
    expect(await summed).toBe("17 more paths published to everyone holding the chain's log (chmod o+r), besides the 3 named above")
    // a new burst names its first paths again
    notices.published('/later')
    expect(w.lines.at(-1)).toMatch(/^\/later: published to everyone/)
    notices.endBurst()
    expect(w.lines).toHaveLength(5)
  })

  it('says nothing more at the end of a burst whose every publication it named', () => {
    const w = warnings()
    const notices = new PublishNotices(w.logger, '/x/files.chain', { each: 3, burstMs: 60_000 })
    notices.published('/pub')
    notices.published('/priv/note.txt')
    notices.endBurst()
    expect(w.lines).toHaveLength(2)
    expect(w.lines[1]).toMatch(/^\/priv\/note\.txt: published to everyone/)
  })
})
