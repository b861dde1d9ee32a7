/**
 * Why `kafka/clients.ts` still guards `Connection.prototype.emit` with @platformatic/kafka 2.x
 * (issue 19: keep only the workarounds the new version still needs, each with a test). Its
 * connection pool listens for a pooled connection's 'error' once; a connection that errs twice
 * (seen when a cluster node died during the SASL handshake under load) then emits an 'error' with
 * no listener, which throws and killed the process. A local TCP listener stands in for the broker:
 * the pool only needs a socket to hold.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { type Connection, ConnectionPool } from '@platformatic/kafka'
import '../../src/kafka/clients.ts'

async function pooledConnection(t: { after: (fn: () => unknown) => void }): Promise<Connection> {
  const sockets: Socket[] = []
  const server = createServer((socket) => void sockets.push(socket)).listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const port = (server.address() as { port: number }).port
  const pool = new ConnectionPool('evf-test-guard')
  t.after(() => {
    pool.close(() => undefined)
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  return new Promise((resolve, reject) =>
    pool.get({ host: '127.0.0.1', port }, (error, connection) =>
      error || !connection ? reject(error) : resolve(connection),
    ),
  )
}

describe('the Connection error guard (kafka/clients.ts)', () => {
  it('is still needed: the 2.x pool listens for a connection’s error once', async (t) => {
    const connection = await pooledConnection(t)
    assert.equal(connection.listenerCount('error'), 1, 'the pool’s one listener')
    connection.emit('error', new Error('first'))
    assert.equal(connection.listenerCount('error'), 0, 'a once listener: gone after the first error')
    // Without the guard, a second error is EventEmitter's 'error' with no listener: it throws.
    assert.throws(() => EventEmitter.prototype.emit.call(connection, 'error', new Error('second')), /second/)
  })

  it('drops a second error instead of throwing it, which killed the process', async (t) => {
    const connection = await pooledConnection(t)
    connection.emit('error', new Error('first'))
    assert.doesNotThrow(() => connection.emit('error', new Error('second, during the handshake')))
  })
})
