// ML-DSA-65 worker thread for src/crypto/pq-pool.ts. Plain JavaScript on purpose: it loads the
// same way under node, tsx and vitest, and needs only post-quantum.mjs, not our TypeScript.
import { createHash } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import { crc32 } from 'node:zlib'
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js'
import { mlDsaImplementation, mlDsaSign, mlDsaVerify } from './post-quantum.mjs'

// warm noble's JIT with a throwaway key so the first real signature is not the slow one
if (mlDsaImplementation === 'noble') {
  const k = ml_dsa65.keygen(new Uint8Array(32))
  const m = new Uint8Array(32)
  mlDsaVerify(mlDsaSign(m, k.secretKey), m, k.publicKey)
  mlDsaSign(m, k.secretKey)
}

parentPort.on('message', job => {
  if (job.crash) process.exit(70)
  if (job.op === 'hold') {
    // test hook: keep this thread busy until the pool stores 1 in the shared cell
    Atomics.wait(new Int32Array(job.cell), 0, 0)
    parentPort.postMessage({ id: job.id })
    return
  }
  try {
    if (job.op === 'sign') {
      const signature = mlDsaSign(job.message, job.secretKey)
      parentPort.postMessage({ id: job.id, signature }, [signature.buffer])
    } else if (job.op === 'signBody') {
      // a block body in shared memory: hash its unsigned part, sign, append the signature
      // (u16 length, bytes) and checksum the whole body, all off the JS thread
      const body = Buffer.from(job.sab, job.offset, job.capacity)
      const digest = createHash('sha256').update(job.prefix).update(body.subarray(0, job.length)).digest()
      const signature = mlDsaSign(digest, job.secretKey)
      if (job.length + 2 + signature.length > job.capacity) throw new Error('the block buffer has no room for the signature')
      body.writeUInt16LE(signature.length, job.length)
      body.set(signature, job.length + 2)
      const crc = crc32(body.subarray(0, job.length + 2 + signature.length))
      parentPort.postMessage({ id: job.id, digest, signature, crc })
    } else if (job.op === 'verify') {
      parentPort.postMessage({ id: job.id, ok: mlDsaVerify(job.signature, job.message, job.publicKey) })
    } else throw new Error(`unknown operation ${job.op}`)
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) })
  }
})
