import assert from 'node:assert/strict'
import { MemoryMessageStore } from '../../services/messaging/memory-store.js'
import { RedisMessageStore } from '../../services/messaging/redis-store.js'
import type { MessageStoreLimits } from '../../services/messaging/store.js'
import { prefixedRedis } from '../harness/shared-redis.js'
import { messageStoreContract } from './contract.js'

messageStoreContract('memory', async (limits) => ({
  store: new MemoryMessageStore(limits),
  cleanup: async () => {},
}))

/** A Redis message store on the suite's shared redis-server, under a prefix of its own. */
async function redisFixture(limits?: MessageStoreLimits) {
  const fixture = await prefixedRedis('mt', 'msg-test')
  return { ...fixture, store: new RedisMessageStore(fixture.redis, fixture.prefix, limits) }
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

  it('a retry of a message recorded by an earlier version (a status hash without r: fields) is still a repeat', async () => {
    const { store, redis, prefix, cleanup } = await redisFixture()
    try {
      // what an earlier version left: the status hash with the recipient and the offset only
      // (its de-duplication key of its own beside it is not read any more)
      const status = `${prefix}m:{alice}:s:old-1`
      await redis.hset(status, 'to', 'bob', 'offset', '1700000000000-0', 'ts', 1700000000000)
      await redis.pexpire(status, 60_000)
      const again = await store.record({ id: 'old-1', from: 'alice', to: 'bob', ts: Date.now(), body: 'x' })
      assert.deepEqual(again, { offset: '1700000000000-0', duplicate: true })
      assert.equal((await store.history('bob', { limit: 10 })).messages.length, 0)
      const other = await store.record({ id: 'old-1', from: 'alice', to: 'carol', ts: Date.now(), body: 'x' })
      assert.equal(other.duplicate, false, 'the same id to another recipient is another message')
    } finally {
      await cleanup()
    }
  })

  it('a status an earlier version wrote (recipient in `to` only, device statuses as d:<deviceId>) still takes receipts and reports them', async () => {
    const { store, redis, prefix, cleanup } = await redisFixture()
    try {
      const status = `${prefix}m:{alice}:s:old-2`
      await redis.hset(status, 'to', 'bob', 'offset', '1700000000000-0', 'ts', 1700000000000)
      await redis.hset(status, 'd:phone', 'read|1700000000100')
      await redis.pexpire(status, 60_000)
      const base = { from: 'alice', id: 'old-2', by: 'bob', ts: Date.now() }
      assert.equal(await store.receipt({ ...base, deviceId: 'phone', status: 'delivered' }), 'unchanged')
      assert.equal(await store.receipt({ ...base, deviceId: 'laptop', status: 'delivered' }), 'recorded')
      assert.equal(
        await store.receipt({ ...base, by: 'carol', deviceId: 'phone', status: 'read' }),
        'not-recipient',
      )
      const st = await store.status('alice', 'old-2')
      assert.deepEqual(st?.devices, {
        phone: { status: 'read', ts: 1700000000100 },
        laptop: { status: 'delivered', ts: base.ts },
      })
      assert.deepEqual(Object.keys(st?.recipients ?? {}), ['bob'])
      assert.equal(st?.recipients.bob?.offset, '1700000000000-0')
    } finally {
      await cleanup()
    }
  })

  it('trims a history by age at most once a period, and reads skip what is older', async () => {
    const { store, redis, prefix, cleanup } = await redisFixture({
      historyMaxLen: 1000,
      historyMaxAgeMs: 3600_000,
      dedupWindowMs: 3600_000,
    })
    try {
      // an entry two hours old, as a history left untrimmed would hold it
      const old = Date.now() - 7200_000
      await redis.xadd(
        `${prefix}m:{bob}:h`,
        `${old}-0`,
        'e',
        JSON.stringify({ id: 'ancient', from: 'alice', to: 'bob', ts: old, body: 'x' }),
      )
      const mk = (id: string) => ({ id, from: 'alice', to: 'bob', ts: Date.now(), body: id })
      await store.record(mk('n1'))
      const h = await store.history('bob', { limit: 10 })
      assert.deepEqual(
        h.messages.map((m) => m.id),
        ['n1'],
        'the entry past the age limit is not served',
      )
      const fromOld = await store.history('bob', { after: `${old - 1}-0`, limit: 10 })
      assert.deepEqual(
        fromOld.messages.map((m) => m.id),
        ['n1'],
        'not even after an offset older than the limit',
      )
      const before = (await redis.info('commandstats')).match(/cmdstat_xtrim:calls=(\d+)/)?.[1] ?? '0'
      for (let i = 2; i <= 5; i++) await store.record(mk(`n${i}`))
      const after = (await redis.info('commandstats')).match(/cmdstat_xtrim:calls=(\d+)/)?.[1] ?? '0'
      assert.equal(after, before, 'bob was trimmed by age in this period already')
      await store.record({ ...mk('c1'), to: 'carol' })
      const later = (await redis.info('commandstats')).match(/cmdstat_xtrim:calls=(\d+)/)?.[1] ?? '0'
      assert.equal(Number(later), Number(after) + 1, "carol's history is trimmed on her first message")
    } finally {
      await cleanup()
    }
  })
})
