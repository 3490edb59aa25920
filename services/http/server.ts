/** The HTTP listener every Herald process runs: health, readiness and metrics always; the API where the presence service runs. */
import { createServer, type Server } from 'node:http'
import { listen, stopAccepting } from '../../broker/transports/listen.js'
import type { PortSetting } from '../core/config.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import type { Router } from './router.js'

export function healthRoutes(
  router: Router,
  deps: { metrics: Metrics; ready: () => boolean | Promise<boolean> },
): void {
  router.add('GET', '/healthz', () => ({ status: 200, body: { status: 'ok' } }))
  router.add('GET', '/readyz', async () => {
    // a stalled Redis answers nothing: not ready after 2 s, not a request that hangs
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS)
    })
    const ready = await Promise.race([Promise.resolve(deps.ready()).catch(() => false), late])
    clearTimeout(timer)
    return { status: ready ? 200 : 503, body: { status: ready ? 'ready' : 'not-ready' } }
  })
  router.add('GET', '/metrics', async () => ({
    status: 200,
    text: await deps.metrics.registry.metrics(),
    contentType: deps.metrics.registry.contentType,
  }))
}

const READY_TIMEOUT_MS = 2000

/** True at most once per `ms`: for a log line that would otherwise come once per request. */
function atMostEvery(ms: number): () => boolean {
  let last = Number.NEGATIVE_INFINITY
  return () => {
    const now = Date.now()
    if (now - last < ms) return false
    last = now
    return true
  }
}

export interface HttpListener {
  server: Server
  port: number
  close(): Promise<void>
}

export async function listenHttp(opts: {
  router: Router
  host: string
  port: PortSetting
  logger: Logger
}): Promise<HttpListener> {
  const log = opts.logger.child({ component: 'http' })
  // refusals that come in floods are logged once per 10 s each, not once per request
  const limitedLog = atMostEvery(10_000)
  const unavailableLog = atMostEvery(10_000)
  const server = createServer((req, res) => {
    req.on('herald:error', (err: Error) =>
      log.error({ err, method: req.method, url: req.url }, 'request failed'),
    )
    req.on('herald:limited', () => {
      if (limitedLog())
        log.warn({ method: req.method, url: req.url }, 'a user past HERALD_HTTP_USER_PER_SEC: answering 429')
    })
    req.on('herald:unavailable', (err: Error) => {
      if (unavailableLog())
        log.warn({ err: err.message, method: req.method, url: req.url }, 'storage unavailable: answering 503')
    })
    void opts.router.handle(req, res)
  })
  server.keepAliveTimeout = 5000
  const port = await listen(server, opts.port, opts.host)
  return {
    server,
    port,
    close: async () => {
      server.closeAllConnections()
      await stopAccepting(server)
    },
  }
}
