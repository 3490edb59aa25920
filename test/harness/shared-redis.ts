/**
 * One redis-server shared by every test of a mocha run that only needs "a Redis" (each test
 * uses its own key prefix). Tests that kill or restart Redis start their own RedisServer.
 */
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
