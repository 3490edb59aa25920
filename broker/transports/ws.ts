/**
 * MQTT over WebSocket at /mqtt (websocket-stream on ws 8, forced through package.json
 * `overrides`). `maxPayload` bounds a single frame the same way the packet guard bounds a packet.
 */
import { createServer } from 'node:http'
import type { Duplex } from 'node:stream'
import websocket from 'websocket-stream'
import type { PortSetting } from '../../services/core/config.js'
import { listen, stopAccepting } from './listen.js'
import type { Accept, Listener } from './types.js'

export const WS_PATH = '/mqtt'

export async function listenWs(opts: {
  host: string
  port: PortSetting
  maxPayload: number
  accept: Accept
}): Promise<Listener> {
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' })
    res.end(`MQTT over WebSocket: connect with a WebSocket client to ${WS_PATH}\n`)
  })
  server.on('connection', (socket) => socket.setNoDelay(true))
  const wss = websocket.createServer({
    server,
    path: WS_PATH,
    maxPayload: opts.maxPayload,
    perMessageDeflate: false,
  })
  wss.on('stream', (stream: Duplex, req) => {
    opts.accept(stream, { transport: 'ws', remoteAddress: req.socket.remoteAddress ?? '' })
  })
  const port = await listen(server, opts.port, opts.host)
  return {
    transport: 'ws',
    port,
    close: async () => {
      wss.close()
      await stopAccepting(server)
    },
  }
}
