import { afterAll, describe, expect, it } from 'vitest'
import { PqPool, PqWorkerError } from '../../src/crypto/pq-pool.ts'
import { signingKeygen, verify } from '../../src/crypto/pq.ts'

describe('ML-DSA worker pool', () => {
  const pool = new PqPool({ size: 2 })
  const keys = signingKeygen(new Uint8Array(32).fill(1))
  const message = new Uint8Array(32).fill(9)
  afterAll(async () => {
    await pool.close()
  })

  it('makes signatures on a worker thread that verify on the JS thread and in the pool', async () => {
    const signature = await pool.sign(message, keys.secretKey)
    expect(signature.length).toBe(3309)
    expect(verify(signature, message, keys.publicKey)).toBe(true)
    expect(await pool.verify(signature, message, keys.publicKey)).toBe(true)
    const other = Uint8Array.from(message)
    other[0]! ^= 1
    expect(await pool.verify(signature, other, keys.publicKey)).toBe(false)
    expect(await pool.verify(signature.subarray(1), message, keys.publicKey)).toBe(false)
  })

  it('fails the job of a crashed thread with PqWorkerError and answers the next job on a fresh thread', async () => {
    pool.crashNextJob()
    await expect(pool.sign(message, keys.secretKey)).rejects.toBeInstanceOf(PqWorkerError)
    const signature = await pool.sign(message, keys.secretKey)
    expect(verify(signature, message, keys.publicKey)).toBe(true)
  })

  it('refuses jobs after close with PqWorkerError', async () => {
    const closed = new PqPool()
    await closed.close()
    await expect(closed.sign(message, keys.secretKey)).rejects.toBeInstanceOf(PqWorkerError)
  })
})
