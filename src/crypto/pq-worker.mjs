// ML-DSA-65 worker thread for src/crypto/pq-pool.ts. Plain JavaScript on purpose: it loads the
// same way under node, tsx and vitest, and needs only the noble code, not our TypeScript.
import { parentPort } from 'node:worker_threads'
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js'

const SIGNATURE_BYTES = 3309
const PUBLIC_KEY_BYTES = 1952

// warm the JIT with a throwaway key so the first real signature is not the slow one
{
  const k = ml_dsa65.keygen(new Uint8Array(32))
  const m = new Uint8Array(32)
  ml_dsa65.verify(ml_dsa65.sign(m, k.secretKey), m, k.publicKey)
  ml_dsa65.sign(m, k.secretKey)
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
      const signature = ml_dsa65.sign(job.message, job.secretKey)
      parentPort.postMessage({ id: job.id, signature }, [signature.buffer])
    } else if (job.op === 'verify') {
      let ok = false
      if (job.signature.length === SIGNATURE_BYTES && job.publicKey.length === PUBLIC_KEY_BYTES) {
        try {
          ok = ml_dsa65.verify(job.signature, job.message, job.publicKey)
        } catch {
          ok = false
        }
      }
      parentPort.postMessage({ id: job.id, ok })
    } else throw new Error(`unknown operation ${job.op}`)
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) })
  }
})
