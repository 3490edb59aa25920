/**
 * Bare Aedes, the baseline of `herald bench`: the same Aedes version, the same transports
 * (TCP with noDelay, WebSocket at /mqtt) and — with BASELINE_REDIS_URL — the same
 * mqemitter-redis and aedes-persistence-redis as Herald's Redis mode, on connections set up
 * as Herald sets up its own (auto-pipelining on, except on the subscriber); no hooks at all.
 * Prints `{"ready": {"mqtt": <port>, "ws": <port>}}` when listening.
 */
import { createServer as createHttpServer } from 'node:http'
import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import aedesPersistenceRedis from 'aedes-persistence-redis'
import { Redis } from 'ioredis'
import mqemitterRedis from 'mqemitter-redis'
import websocket from 'websocket-stream'

const redisUrl = process.env.BASELINE_REDIS_URL
const broker = await Aedes.createBroker(
  redisUrl
    ? {
        mq: mqemitterRedis({
          subConn: new Redis(redisUrl),
          pubConn: new Redis(redisUrl, { enableAutoPipelining: true }),
        }),
        persistence: aedesPersistenceRedis({ conn: new Redis(redisUrl, { enableAutoPipelining: true }) }),
      }
    : {},
)
;(broker as unknown as NodeJS.EventEmitter).on('error', () => {})

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
