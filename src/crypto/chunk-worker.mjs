// AES-256-GCM chunk worker for src/crypto/chunk-pool.ts. Plain JavaScript on purpose, like
// pq-worker.mjs: it loads the same way under node, tsx and vitest.
//
// It seals written chunks from one part of a shared slab into another, and it reads sealed chunks from the log (pread on the chain's descriptor, or bytes sent along),
// opens them and copies the plaintext into a slot of the chain's shared slab. The buffers
// node:crypto allocates per chunk are this thread's garbage, so the JS thread that serves
// FUSE neither decrypts nor collects them.
import { readSync } from 'node:fs'
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto'
import { parentPort } from 'node:worker_threads'

const IV_BYTES = 12
const TAG_BYTES = 16

/** slab id → Buffer over its SharedArrayBuffer */
const slabs = new Map()
let scratch = Buffer.alloc(0)

function openInto(sealed, key, aad, out, at) {
  if (sealed.length < IV_BYTES + TAG_BYTES) return -1
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES))
  d.setAAD(aad)
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
  const body = d.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES))
  try {
    d.final()
  } catch {
    return -1
  }
  into(out, at, body)
  return body.length
}

/**
 * Copies `bytes` into the shared slab `out` at `at`. Buffer#fill with a value as long as the
 * range is a plain memcpy in Node's C++; Buffer#copy and TypedArray#set into shared memory
 * take V8's relaxed-atomic memmove, which cost more than the decryption itself here.
 */
function into(out, at, bytes) {
  if (bytes.length > 0) out.fill(bytes, at, at + bytes.length)
}

parentPort.on('message', job => {
  if (job.crash) process.exit(70)
  if (job.op === 'slab') {
    slabs.set(job.slab, Buffer.from(job.sab))
    return
  }
  if (job.op === 'drop') {
    slabs.delete(job.slab)
    return
  }
  if (job.op === 'seal') {
    // plaintext at plainAt in the slab, sealed to nonce ‖ ciphertext ‖ tag at outAt; one message answers every item
    const slab = slabs.get(job.slab)
    const answers = []
    for (const it of job.items) {
      if (!slab) {
        answers.push({ id: it.id, error: `slab ${job.slab} is not registered` })
        continue
      }
      const iv = randomFillSync(Buffer.allocUnsafe(IV_BYTES))
      const c = createCipheriv('aes-256-gcm', it.key, iv)
      c.setAAD(it.aad)
      const body = c.update(slab.subarray(it.plainAt, it.plainAt + it.len))
      c.final()
      into(slab, it.outAt, iv)
      into(slab, it.outAt + IV_BYTES, body)
      into(slab, it.outAt + IV_BYTES + body.length, c.getAuthTag())
      answers.push({ id: it.id, length: IV_BYTES + body.length + TAG_BYTES })
    }
    parentPort.postMessage({ answers })
    return
  }
  if (job.op !== 'open') {
    parentPort.postMessage({ id: job.items?.[0]?.id ?? job.id, error: `unknown operation ${job.op}` })
    return
  }
  // a run: sealed chunks lying one after another in the log, read at once, opened one by one
  const slab = slabs.get(job.slab)
  let source = job.sealed
  let got = source?.length ?? 0
  if (!source) {
    if (scratch.length < job.bytes) scratch = Buffer.allocUnsafe(job.bytes)
    try {
      got = 0
      while (got < job.bytes) {
        const n = readSync(job.fd, scratch, got, job.bytes - got, job.from + got)
        if (n === 0) break
        got += n
      }
    } catch (err) {
      for (const it of job.items) parentPort.postMessage({ id: it.id, error: err instanceof Error ? err.message : String(err) })
      return
    }
    source = scratch
  }
  const answers = []
  for (const it of job.items) {
    if (!slab) answers.push({ id: it.id, error: `slab ${job.slab} is not registered` })
    else if (it.at + it.len > got) answers.push({ id: it.id, fault: 'short' })
    else {
      const n = openInto(source.subarray(it.at, it.at + it.len), it.key, it.aad, slab, it.slotAt)
      answers.push(n < 0 ? { id: it.id, fault: 'auth' } : { id: it.id, length: n })
    }
  }
  parentPort.postMessage({ answers })
})
