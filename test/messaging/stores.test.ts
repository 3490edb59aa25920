import { pino } from 'pino'
import { createRedis } from '../../services/core/redis.js'
import { MemoryMessageStore } from '../../services/messaging/memory-store.js'
import { RedisMessageStore } from '../../services/messaging/redis-store.js'
import { sharedRedis } from '../harness/shared-redis.js'
import { messageStoreContract } from './contract.js'

messageStoreContract('memory', async (limits) => ({
  store: new MemoryMessageStore(limits),
  cleanup: async () => {},
}))

let run = 0
messageStoreContract('redis', async (limits) => {
  const server = await sharedRedis()
  const redis = createRedis(server.url, { name: 'msg-test', logger: pino({ level: 'silent' }) })
  const prefix = `mt${process.pid}-${++run}:`
  return {
    store: new RedisMessageStore(redis, prefix, limits),
    cleanup: async () => {
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    },
  }
})
