import { pino } from 'pino'
import { createRedis } from '../../services/core/redis.js'
import { RedisPresenceStore } from '../../services/presence/redis-store.js'
import { sharedRedis } from '../harness/shared-redis.js'
import { presenceStoreContract } from './contract.js'

let run = 0

presenceStoreContract('redis', async () => {
  const server = await sharedRedis()
  const redis = createRedis(server.url, { name: 'store-test', logger: pino({ level: 'silent' }) })
  const prefix = `t${process.pid}-${++run}:`
  const store = new RedisPresenceStore({ redis, prefix })
  return {
    store,
    cleanup: async () => {
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    },
  }
})
