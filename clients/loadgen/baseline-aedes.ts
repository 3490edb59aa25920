/**
 * Bare Aedes, the baseline of `herald bench` (bare-aedes.ts), with the same transports as
 * Herald (TCP with noDelay, WebSocket at /mqtt); with BASELINE_REDIS_URL, the same Redis plugins.
 * Prints `{"ready": {"mqtt": <port>, "ws": <port>}}` when listening.
 */
import { createServer as createHttpServer } from 'node:http'
import { createServer } from 'node:net'
import websocket from 'websocket-stream'
import { bareAedes } from './bare-aedes.js'

const broker = await bareAedes(process.env.BASELINE_REDIS_URL)

const tcp = createServer({ noDelay: true }, (socket) => {
  socket.setNoDelay(true)
  broker.handle(socket)
})
const http = createHttpServer()
websocket
  .createServer({ server: http, path: '/mqtt', perMessageDeflate: false })
  .on('stream', (s) => broker.handle(s))
const listen = (server: ReturnType<typeof createServer> | ReturnType<typeof createHttpServer>) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address()
      resolve(typeof addr === 'object' && addr ? addr.port : 0)
    }),
  )
const ports = { mqtt: await listen(tcp), ws: await listen(http) }
process.stdout.write(`${JSON.stringify({ ready: ports })}\n`)
process.on('SIGTERM', () => broker.close(() => process.exit(0)))
