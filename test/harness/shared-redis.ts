/**
 * One redis-server shared by every test of a mocha run that only needs "a Redis" (each test
 * uses its own key prefix). Tests that kill or restart Redis start their own RedisServer.
 */
import type { Redis } from 'ioredis'
import { pino } from 'pino'
import { createRedis } from '../../services/core/redis.js'
import { RedisServer } from './redis.js'

let shared: Promise<RedisServer> | undefined

export function sharedRedis(): Promise<RedisServer> {
  shared ??= RedisServer.start()
  return shared
}

export async function stopSharedRedis(): Promise<void> {
  if (!shared) return
  const server = await shared
  shared = undefined
  await server.destroy()
}

export interface PrefixedRedis {
  /** The shared server's URL (for further connections of the test's own). */
  url: string
  redis: Redis
  /** Unique to this call: `<stem><pid>-<n>:`. */
  prefix: string
  /** Deletes every key under the prefix, then disconnects. */
  cleanup(): Promise<void>
}

let prefixes = 0

/** A connection to the shared redis-server and a key prefix no other test of the run uses. */
export async function prefixedRedis(stem: string, name = stem): Promise<PrefixedRedis> {
  const server = await sharedRedis()
  const redis = createRedis(server.url, { name, logger: pino({ level: 'silent' }) })
  const prefix = `${stem}${process.pid}-${++prefixes}:`
  return {
    url: server.url,
    redis,
    prefix,
    cleanup: async () => {
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    },
  }
}
