/**
 * Redis connections: one factory so every connection retries with capped exponential backoff,
 * names itself (CLIENT SETNAME) and logs its state changes once, without credentials.
 * Lua scripts are files named `<name>-<numKeys>.lua` (`<name>-n.lua`: as many keys as the
 * caller passes, their number first), loaded with `defineCommand` under a
 * version-suffixed name (BullMQ style).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from './logger.js'

export { Redis }

export interface RedisConnectOptions {
  /** Shown in CLIENT LIST and in log lines. */
  name: string
  logger: Logger
  /** Commands fail after this many reconnect attempts (null = wait for Redis forever). */
  maxRetriesPerRequest?: number | null
  lazyConnect?: boolean
  /**
   * Coalesce the commands of one event-loop tick into one socket write (default true): under
   * load a write per command costs more CPU than the commands. Off for a connection that
   * blocks (XREAD BLOCK): a command queued behind it would wait for the block to end.
   */
  autoPipelining?: boolean
}

export function createRedis(url: string, opts: RedisConnectOptions): Redis {
  const log = opts.logger.child({ component: 'redis', connection: opts.name })
  const options: RedisOptions = {
    connectionName: opts.name,
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? 3 : opts.maxRetriesPerRequest,
    lazyConnect: opts.lazyConnect ?? false,
    enableAutoPipelining: opts.autoPipelining ?? true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000) + Math.floor(Math.random() * 50),
  }
  const redis = new Redis(url, options)
  let down = false
  redis.on('error', (err: Error) => {
    if (!down) log.warn({ err: err.message }, 'redis connection error; retrying with backoff')
    down = true
  })
  redis.on('ready', () => {
    if (down) log.info('redis connection ready again')
    down = false
  })
  return redis
}

/**
 * Whether an error says the storage cannot serve now, not that the request was wrong: Redis
 * unreachable (the connection's retries ran out), restarting (LOADING), refusing writes (OOM
 * under noeviction, MISCONF after a failed save, READONLY, NOREPLICAS), failing over. A caller
 * answers it as "unavailable, retry" (HTTP 503), never as a bug.
 */
export function storageUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  if (err.name === 'MaxRetriesPerRequestError') return true
  if (/^(Connection is closed|Stream isn't writeable)/.test(err.message)) return true
  if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true
  // Redis's own error prefixes: a ReplyError, or the message a script returned per record
  return /^(OOM|MISCONF|READONLY|NOREPLICAS|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY)\b/.test(err.message)
}

export interface ScriptDef {
  /** Command name as defined on the connection, e.g. `heraldConnectV1`. */
  command: string
  /** Undefined for `<name>-n.lua`: a variable number of keys, passed first by the caller. */
  numberOfKeys: number | undefined
  lua: string
}

/** Reads every `<name>-<numKeys>.lua` of a folder. */
export function readScripts(dir: URL, version: number, prefix: string): ScriptDef[] {
  const path = fileURLToPath(dir)
  return readdirSync(path)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const m = /^([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*)-(\d+|n)\.lua$/.exec(file)
      if (!m) throw new Error(`script file name must be <name>-<numKeys>.lua or <name>-n.lua: ${file}`)
      const camel = m[1]!.replace(/-([a-z])/g, (_s, c: string) => c.toUpperCase())
      return {
        command: `${prefix}${camel[0]!.toUpperCase()}${camel.slice(1)}V${version}`,
        numberOfKeys: m[2] === 'n' ? undefined : Number(m[2]),
        lua: readFileSync(`${path}/${file}`, 'utf8'),
      }
    })
}

export function defineScripts(redis: Redis, scripts: ScriptDef[]) {
  for (const s of scripts) {
    redis.defineCommand(s.command, {
      numberOfKeys: s.numberOfKeys,
      lua: s.lua,
    })
  }
}

/**
 * The folder of a source asset (Lua scripts, static files) both from `dist/` and from source:
 * tsc does not copy non-TS files, so compiled code looks next to the source file.
 */
export function sourceAsset(moduleUrl: string, relative: string): URL {
  const url = new URL(relative, moduleUrl)
  const path = fileURLToPath(url)
  const at = path.lastIndexOf('/dist/')
  if (at < 0) return url
  return new URL(`file://${path.slice(0, at)}/${path.slice(at + '/dist/'.length)}`)
}
