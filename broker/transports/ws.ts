/**
 * MQTT over WebSocket at /mqtt (websocket-stream on ws 8, forced through package.json
 * `overrides`), and over secure WebSocket (wss) when given a certificate. `maxPayload` bounds a
 * single frame the same way the packet guard bounds a packet.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import websocket from 'websocket-stream'
import type { PortSetting } from '../../services/core/config.js'
import { listen, stopAccepting } from './listen.js'
import type { Accept, Listener, TlsFiles } from './types.js'

export const WS_PATH = '/mqtt'

export async function listenWs(opts: {
  host: string
  port: PortSetting
  maxPayload: number
  accept: Accept
  tls?: TlsFiles
  /** A connection closed for a frame over `maxPayload` (ws answers it with close code 1009). */
  onOversize?: (remoteAddress: string) => void
}): Promise<Listener> {
  const transport = opts.tls ? 'wss' : 'ws'
  const upgradeRequired = (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' })
    res.end(`MQTT over WebSocket: connect with a WebSocket client to ${WS_PATH}\n`)
  }
  const server = opts.tls
    ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key, handshakeTimeout: 10_000 }, upgradeRequired)
    : createServer(upgradeRequired)
  if (opts.tls) server.on('tlsClientError', () => {})
  server.on('connection', (socket) => socket.setNoDelay(true))
  const wss = websocket.createServer({
    server,
    path: WS_PATH,
    maxPayload: opts.maxPayload,
    perMessageDeflate: false,
  })
  wss.on('stream', (stream: Duplex & { socket?: NodeJS.EventEmitter }, req) => {
    const remoteAddress = req.socket.remoteAddress ?? ''
    stream.socket?.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') opts.onOversize?.(remoteAddress)
    })
    opts.accept(stream, { transport, remoteAddress })
  })
  const port = await listen(server, opts.port, opts.host)
  return {
    transport,
    port,
    close: async () => {
      wss.close()
      await stopAccepting(server)
    },
  }
}
