/**
 * A small JSON router on node:http: routes are (method, path pattern, handler); handlers return
 * a status and a body, or throw HttpError. Errors are `{ "error": { "code", "message" } }`.
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../core/envelope.js'
import { storageUnavailable } from '../core/redis.js'

export class HttpError extends Error {
  override name = 'HttpError'
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 413 | 429 | 500 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export interface Reply {
  status: number
  body?: unknown
  /** Raw text instead of JSON (metrics, the web page). */
  text?: string
  contentType?: string
  headers?: Record<string, string>
}

export interface RouteContext {
  req: IncomingMessage
  params: Record<string, string>
  query: URLSearchParams
  /** Parsed JSON body (POST/PUT/DELETE), `undefined` when there is none. */
  body: unknown
}

export type Handler = (ctx: RouteContext) => Promise<Reply> | Reply

interface Route {
  method: string
  pattern: RegExp
  keys: string[]
  handler: Handler
}

const MAX_BODY = 1024 * 1024

export class Router {
  private readonly routes: Route[] = []

  /** `path` uses `:name` segments, e.g. `/v1/presence/:userId`. */
  add(method: string, path: string, handler: Handler): this {
    const keys: string[] = []
    const source = path.replace(/:([a-zA-Z]+)/g, (_m, key: string) => {
      keys.push(key)
      return '([^/]+)'
    })
    this.routes.push({ method, pattern: new RegExp(`^${source}$`), keys, handler })
    return this
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: Reply
    try {
      reply = await this.dispatch(req)
    } catch (err) {
      if (err instanceof HttpError) {
        reply = { status: err.status, body: { error: { code: err.code, message: err.message } } }
        if (err.status === 429) {
          reply.headers = { 'retry-after': '1' }
          req.emit('herald:limited', err)
        }
      } else if (storageUnavailable(err)) {
        // Redis away or refusing writes: nothing was recorded; the caller should retry
        reply = {
          status: 503,
          headers: { 'retry-after': '1' },
          body: { error: { code: 'unavailable', message: 'storage unavailable; retry shortly' } },
        }
        req.emit('herald:unavailable', err)
      } else {
        reply = { status: 500, body: { error: { code: 'internal', message: 'internal error' } } }
        req.emit('herald:error', err)
      }
    }
    if (reply.text !== undefined) {
      res.writeHead(reply.status, {
        ...reply.headers,
        'content-type': reply.contentType ?? 'text/plain; charset=utf-8',
      })
      res.end(reply.text)
      return
    }
    const payload = reply.body === undefined ? '' : JSON.stringify(reply.body)
    res.writeHead(reply.status, {
      ...reply.headers,
      'content-type': 'application/json',
      'cache-control': 'no-store',
    })
    res.end(payload)
  }

  private async dispatch(req: IncomingMessage): Promise<Reply> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    let pathMatched = false
    for (const route of this.routes) {
      const m = route.pattern.exec(url.pathname)
      if (!m) continue
      pathMatched = true
      if (route.method !== req.method) continue
      const params: Record<string, string> = {}
      route.keys.forEach((k, i) => {
        params[k] = decodePathPart(m[i + 1]!)
      })
      const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readJson(req)
      return route.handler({ req, params, query: url.searchParams, body })
    }
    if (pathMatched) throw new HttpError(405, 'method-not-allowed', `${req.method} not allowed here`)
    throw new HttpError(404, 'not-found', `no route for ${url.pathname}`)
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new HttpError(413, 'too-large', `body over ${MAX_BODY} bytes`)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return undefined
  const text = Buffer.concat(chunks).toString('utf8')
  // a message body is stored and sent on as JSON again: see MAX_JSON_DEPTH
  if (nestsDeeperThan(text, MAX_JSON_DEPTH))
    throw new HttpError(400, 'too-deep', `body nests deeper than ${MAX_JSON_DEPTH} levels`)
  try {
    return JSON.parse(text)
  } catch {
    throw new HttpError(400, 'invalid-json', 'body is not valid JSON')
  }
}

/** A path parameter, percent-decoded; a malformed escape (`%`, `%ZZ`) is the client's error. */
function decodePathPart(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new HttpError(400, 'bad-request', `malformed percent-encoding in the path: ${raw.slice(0, 64)}`)
  }
}
