/**
 * A server process holding `VIRTUAL_N` in-memory connections (virtual.ts), for `herald bench
 * ... --virtual`. `VIRTUAL_SERVER` picks what takes them:
 *   herald  Herald in this process (`VIRTUAL_MODE` node or all, configured by the usual
 *           HERALD_* variables), connections handed to its access node as a transport would;
 *   aedes   bare Aedes (BASELINE_REDIS_URL: with the same Redis plugins as Herald);
 *   none    nothing: a CONNACK and a sink, the cost of the pairs and client stubs alone.
 * Tokens are minted one connection at a time (VIRTUAL_SECRET), users `<VIRTUAL_PREFIX><i>`.
 * Prints JSON lines: `virtual server ready` (with rssKiB, after a GC) and `virtual clients
 * connected` (connected, failed, ms, rssBeforeKiB, rssAfterKiB, after a GC), then idles until
 * SIGTERM. Run with --expose-gc so both readings follow a full collection.
 */
import type { Duplex } from 'node:stream'
import { mintToken } from '../../services/core/auth.js'
import { loadConfig } from '../../services/core/config.js'
import { createLogger } from '../../services/core/logger.js'
import { Herald } from '../../services/runtime/herald.js'
import { bareAedes } from './bare-aedes.js'
import { nullServer, openVirtual } from './virtual.js'

const env = process.env
const server = env.VIRTUAL_SERVER ?? 'herald'
const n = Number(env.VIRTUAL_N ?? 1000)
const prefix = env.VIRTUAL_PREFIX ?? 'v'
const secret = env.VIRTUAL_SECRET ?? env.HERALD_AUTH_SECRET ?? ''
const keepalive = Number(env.VIRTUAL_KEEPALIVE ?? 3600)
const concurrency = Number(env.VIRTUAL_CONCURRENCY ?? 200)

const say = (msg: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ msg, pid: process.pid, time: Date.now(), ...fields })}\n`)

function rssKiB(): number {
  ;(globalThis as { gc?: () => void }).gc?.()
  return Math.round(process.memoryUsage.rss() / 1024)
}

async function start(): Promise<{ accept: (s: Duplex) => void; close: () => Promise<void> }> {
  if (server === 'none') return { accept: nullServer, close: async () => {} }
  if (server === 'aedes') {
    const broker = await bareAedes(env.BASELINE_REDIS_URL)
    return {
      accept: (s) => broker.handle(s),
      close: () => new Promise((resolve) => broker.close(() => resolve())),
    }
  }
  const config = loadConfig({ nodeIdRequiredWithRedis: true })
  const logger = createLogger(config.logLevel)
  const herald = await Herald.start({ config, logger, mode: env.VIRTUAL_MODE === 'all' ? 'all' : 'node' })
  const node = herald.node
  if (!node) throw new Error('virtual clients need an access node (VIRTUAL_MODE node or all)')
  logger.info({ ports: herald.ports }, 'herald ready')
  return {
    accept: (s) => node.accept(s, { transport: 'tcp', remoteAddress: '127.0.0.2' }),
    close: () => herald.close(),
  }
}

/** The JS heap in use, read right after rssKiB()'s collection. */
const heapKiB = () => Math.round(process.memoryUsage().heapUsed / 1024)

const target = await start()
const before = rssKiB()
const heapBefore = heapKiB()
say('virtual server ready', { server, rssKiB: before })
const clients: Duplex[] = []
const opened = await openVirtual({
  n,
  concurrency,
  keepalive,
  accept: target.accept,
  into: clients,
  spec: async (i) => {
    const userId = `${prefix}${i}`
    return {
      clientId: `${userId}/d`,
      username: userId,
      password: server === 'herald' ? await mintToken(secret, userId, { ttl: '6h' }) : 'unused',
    }
  },
})
// memory after the burst settles (timers, queues, the event log's writes)
await new Promise((r) => setTimeout(r, 2000))
say('virtual clients connected', {
  server,
  connected: opened.connected,
  failed: opened.failed,
  ms: Math.round(opened.elapsedMs),
  rssBeforeKiB: before,
  rssAfterKiB: rssKiB(),
  heapBeforeKiB: heapBefore,
  heapAfterKiB: heapKiB(),
})
process.on('SIGTERM', () => {
  target.close().finally(() => process.exit(0))
})
