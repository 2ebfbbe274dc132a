import { MessageChannel } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { own } from '../../src/crypto/threads.ts'

/** The bytes a value takes when posted to another thread (V8's structured clone, as postMessage does). */
async function postedBytes(value: Uint8Array): Promise<number> {
  const { port1, port2 } = new MessageChannel()
  try {
    const got = new Promise<Uint8Array>(done => port2.once('message', done))
    port1.postMessage(value)
    return (await got).buffer.byteLength
  } finally {
    port1.close()
    port2.close()
  }
}

describe('own: what a worker message carries of a buffer', () => {
  it('copies a small pooled Buffer out of its 8 KiB pool, so a message carries its own bytes only', async () => {
    const aad = Buffer.allocUnsafe(58).fill(7)
    expect(aad.buffer.byteLength).toBeGreaterThan(4096)
    expect(await postedBytes(aad)).toBe(aad.buffer.byteLength)
    const mine = own(aad)
    expect(Buffer.from(mine).equals(aad)).toBe(true)
    expect(await postedBytes(mine)).toBe(58)
  })

  it('copies a view into a bigger buffer, and passes a buffer that is whole as it is', () => {
    const whole = new Uint8Array(32).fill(1)
    expect(own(whole)).toBe(whole)
    const big = new Uint8Array(1024).fill(2)
    const view = big.subarray(100, 132)
    const copy = own(view)
    expect(copy).not.toBe(view)
    expect(copy.buffer.byteLength).toBe(32)
    expect([...copy]).toEqual([...view])
  })
})
