/**
 * MQTT over TCP, and over TLS (mqtts) when given a certificate. Nagle is off: Node's default
 * adds ~40 ms to every QoS 1 round trip.
 */
import { createServer, type Socket } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import type { PortSetting } from '../../services/core/config.js'
import { listen, stopAccepting } from './listen.js'
import type { Accept, Listener, TlsFiles } from './types.js'

export async function listenTcp(opts: {
  host: string
  port: PortSetting
  accept: Accept
  tls?: TlsFiles
}): Promise<Listener> {
  const transport = opts.tls ? 'tls' : 'tcp'
  const onSocket = (socket: Socket | TLSSocket) => {
    socket.setNoDelay(true)
    opts.accept(socket, { transport, remoteAddress: socket.remoteAddress ?? '' })
  }
  const server = opts.tls
    ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key, handshakeTimeout: 10_000 }, onSocket)
    : createServer({ noDelay: true }, onSocket)
  if (opts.tls) {
    // a failed handshake never reaches Aedes; it must not reach the process either
    server.on('tlsClientError', () => {})
  }
  const port = await listen(server, opts.port, opts.host)
  return { transport, port, close: () => stopAccepting(server) }
}
