/**
 * One contract for both RateStores (memory, and Redis over the suite's redis-server): the
 * limits of one event are counted in order, and the first that refuses stops the rest.
 */
import assert from 'node:assert/strict'
import { MemoryRates, type RateStore, RedisRates } from '../../services/cluster/rates.js'
import { prefixedRedis } from '../harness/shared-redis.js'

function ratesContract(name: string, make: () => Promise<{ rates: RateStore; cleanup(): Promise<void> }>) {
  describe(`RateStore contract: ${name}`, () => {
    let rates: RateStore
    let cleanup: () => Promise<void>
    beforeEach(async () => {
      ;({ rates, cleanup } = await make())
    })
    afterEach(() => cleanup())

    const device = { key: 'c:ann/phone', limit: 2, windowMs: 60_000, cooldownMs: 30_000 }
    const user = { key: 'u:ann', limit: 3, windowMs: 60_000, cooldownMs: 0 }

    it('counts every limit in order; past one, it names that limit and how long to wait', async () => {
      assert.equal(await rates.hit([device, user]), undefined)
      assert.equal(await rates.hit([device, user]), undefined)
      const refused = await rates.hit([device, user])
      assert.equal(refused?.index, 0, 'the device is past its limit')
      assert.ok(refused.waitMs > 29_000 && refused.waitMs <= 30_000, `cool-down ${refused.waitMs}`)
      // the refused event did not count for the user: one more of its devices still gets in
      const tablet = { ...device, key: 'c:ann/tablet' }
      assert.equal(await rates.hit([tablet, user]), undefined)
      const busy = await rates.hit([{ ...device, key: 'c:ann/laptop' }, user])
      assert.equal(busy?.index, 1, 'the user is past its limit')
      assert.ok(busy.waitMs > 0 && busy.waitMs <= 60_000)
    })

    it('a refusal by an earlier limit leaves the later ones uncounted', async () => {
      const strict = { key: 'c:bob/phone', limit: 1, windowMs: 60_000, cooldownMs: 0 }
      const loose = { key: 'u:bob', limit: 2, windowMs: 60_000, cooldownMs: 0 }
      assert.equal(await rates.hit([strict, loose]), undefined)
      for (let i = 0; i < 5; i++) assert.equal((await rates.hit([strict, loose]))?.index, 0)
      assert.equal(await rates.hit([loose]), undefined, 'bob counted once, not six times')
      assert.equal((await rates.hit([loose]))?.index, 0)
      assert.equal(await rates.hit([]), undefined)
    })
  })
}

ratesContract('memory', async () => ({ rates: new MemoryRates(), cleanup: async () => {} }))

ratesContract('redis', async () => {
  const { redis, prefix, cleanup } = await prefixedRedis('t-rates-', 'rates')
  return { rates: new RedisRates(redis, prefix), cleanup }
})
