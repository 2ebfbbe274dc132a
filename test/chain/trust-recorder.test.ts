import { describe, expect, it } from 'vitest'
import { readTrust } from '../../src/chain/trust.ts'
import { TrustRecorder } from '../../src/chain/trust-recorder.ts'
import { silentLogger } from '../../src/vfs/log.ts'
import { tempHomeEach } from './helpers.ts'

const CHAIN_ID = new Uint8Array(16).fill(9)
const hashOf = (b: number) => Buffer.alloc(32, b)

/** A recorder of a head the test moves by hand. */
function recorderOf(home: string, enabled = true) {
  const head = { seq: 1, hash: hashOf(1) }
  const recorder = new TrustRecorder({ home, chainId: CHAIN_ID, head: () => head, enabled, logger: silentLogger })
  return { head, recorder }
}

describe('TrustRecorder (the trust store’s record of an open chain’s head)', () => {
  const t = tempHomeEach()

  it('records the head at once when asked, and writes nothing on a flush when it did not move since', async () => {
    const { head, recorder } = recorderOf(t.home)
    expect(await readTrust(t.home, CHAIN_ID)).toBeUndefined()
    await recorder.record()
    expect(await readTrust(t.home, CHAIN_ID)).toEqual({ seq: 1, hash: hashOf(1).toString('hex') })
    head.seq = 2
    await recorder.flush()
    expect((await readTrust(t.home, CHAIN_ID))?.seq).toBe(1)
  })

  it('records a head that moved within a second, as it is then', { timeout: 5000 }, async () => {
    const { head, recorder } = recorderOf(t.home)
    recorder.moved()
    head.seq = 2
    recorder.moved()
    head.seq = 3
    head.hash = hashOf(3)
    expect(await readTrust(t.home, CHAIN_ID)).toBeUndefined()
    await new Promise(r => setTimeout(r, 1300))
    expect(await readTrust(t.home, CHAIN_ID)).toEqual({ seq: 3, hash: hashOf(3).toString('hex') })
  })

  it('drops the delayed record once stopped, but still records the moved head on a flush', { timeout: 5000 }, async () => {
    const { head, recorder } = recorderOf(t.home)
    recorder.moved()
    recorder.stop()
    await new Promise(r => setTimeout(r, 1300))
    expect(await readTrust(t.home, CHAIN_ID)).toBeUndefined()
    head.seq = 4
    await recorder.flush()
    expect((await readTrust(t.home, CHAIN_ID))?.seq).toBe(4)
  })

  it('records nothing when trust is off', { timeout: 5000 }, async () => {
    const { recorder } = recorderOf(t.home, false)
    await recorder.record()
    recorder.moved()
    await new Promise(r => setTimeout(r, 1300))
    await recorder.flush()
    expect(await readTrust(t.home, CHAIN_ID)).toBeUndefined()
  })
})
