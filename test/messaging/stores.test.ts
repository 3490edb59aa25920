import assert from 'node:assert/strict'
import { pino } from 'pino'
import { createRedis } from '../../services/core/redis.js'
import { MemoryMessageStore } from '../../services/messaging/memory-store.js'
import { RedisMessageStore } from '../../services/messaging/redis-store.js'
import type { MessageStoreLimits } from '../../services/messaging/store.js'
import { sharedRedis } from '../harness/shared-redis.js'
import { messageStoreContract } from './contract.js'

messageStoreContract('memory', async (limits) => ({
  store: new MemoryMessageStore(limits),
  cleanup: async () => {},
}))

let run = 0
/** A Redis message store on the suite's shared redis-server, under a prefix of its own. */
async function redisFixture(limits?: MessageStoreLimits) {
  const server = await sharedRedis()
  const redis = createRedis(server.url, { name: 'msg-test', logger: pino({ level: 'silent' }) })
  const prefix = `mt${process.pid}-${++run}:`
  return {
    store: new RedisMessageStore(redis, prefix, limits),
    redis,
    prefix,
    cleanup: async () => {
      const keys = await redis.keys(`${prefix}*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    },
  }
}

messageStoreContract('redis', redisFixture)

describe('RedisMessageStore: records of one turn go as one script', () => {
  it('a message that cannot be recorded fails alone; the others of its turn are recorded', async () => {
    const { store, redis, prefix, cleanup } = await redisFixture()
    try {
      // bob's history key holds a string: XADD to it fails with WRONGTYPE
      await redis.set(`${prefix}m:{bob}:h`, 'not a stream')
      const mk = (to: string, id: string) => ({ id, from: 'alice', to, ts: Date.now(), body: id })
      const results = await Promise.allSettled([
        store.record(mk('carol', 'a')),
        store.record(mk('bob', 'b')),
        store.record(mk('carol', 'c')),
      ])
      assert.equal(results[0]!.status, 'fulfilled')
      assert.equal(results[2]!.status, 'fulfilled')
      assert.equal(results[1]!.status, 'rejected')
      assert.match(String((results[1] as PromiseRejectedResult).reason), /WRONGTYPE/)
      const h = await store.history('carol', { limit: 10 })
      assert.deepEqual(
        h.messages.map((m) => m.id),
        ['a', 'c'],
      )
      assert.equal(await redis.exists(`${prefix}m:{alice}:s:b`), 0, 'nothing of the failed one was kept')
    } finally {
      await cleanup()
    }
  })
})

describe('RedisMessageStore: de-duplication in the status hash', () => {
  it('a recording writes the history entry and the status hash, no key of its own for de-duplication', async () => {
    const { store, redis, prefix, cleanup } = await redisFixture()
    try {
      const { offset } = await store.record({ id: 'k1', from: 'alice', to: 'bob', ts: Date.now(), body: 'x' })
      assert.deepEqual((await redis.keys(`${prefix}*`)).sort(), [
        `${prefix}m:{alice}:s:k1`,
        `${prefix}m:{bob}:h`,
      ])
      assert.equal(await redis.hget(`${prefix}m:{alice}:s:k1`, 'r:bob'), offset)
      assert.ok((await redis.pttl(`${prefix}m:{alice}:s:k1`)) > 0, 'it expires with the window')
    } finally {
      await cleanup()
    }
  })

  it('a retry of a message recorded by an earlier version (its own de-duplication key) is still a repeat', async () => {
    const { store, redis, prefix, cleanup } = await redisFixture()
    try {
      // what an earlier version left: the recipient-side key holding the first recording's offset
      await redis.set(`${prefix}m:{bob}:d:alice:old-1`, '1700000000000-0', 'PX', 60_000)
      const again = await store.record({ id: 'old-1', from: 'alice', to: 'bob', ts: Date.now(), body: 'x' })
      assert.deepEqual(again, { offset: '1700000000000-0', duplicate: true })
      assert.equal((await store.history('bob', { limit: 10 })).messages.length, 0)
    } finally {
      await cleanup()
    }
  })
})
