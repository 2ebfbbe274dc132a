import { randomInt } from 'node:crypto'
import { createServer } from 'node:net'

/** The kernel's ephemeral ports start here (`net.ipv4.ip_local_port_range`, 32768 by default). */
const EPHEMERAL_FROM = 32_768

/**
 * A port for a server a test stops and starts again (a broker, a PostgreSQL cluster):
 * below the ephemeral range, where no client socket's local port can take it. A port from
 * `listen(0)` lies inside that range: while its server is down, a client reconnecting to
 * 127.0.0.1 can be given that very port as its own and connect to itself, and the server
 * then cannot bind it when it comes back. Free on `host` when this returns.
 */
export async function serverPort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const port = randomInt(20_000, EPHEMERAL_FROM)
    if (await isFree(port, host)) return port
  }
  throw new Error(`no free port from 20000 to ${EPHEMERAL_FROM - 1} on ${host} after 20 tries`)
}

function isFree(port: number, host: string): Promise<boolean> {
  return new Promise(done => {
    const s = createServer()
    s.once('error', () => done(false))
    s.listen(port, host, () => s.close(() => done(true)))
  })
}
