/**
 * Storage that cannot serve is a clear refusal over HTTP, not a 500: Redis refusing writes
 * (maxmemory under noeviction) answers 503 `unavailable` with Retry-After and one log line, and
 * a stalled Redis (SIGSTOP) makes /readyz answer 503 instead of hanging. A redis-server of its
 * own: this test starves and freezes it.
 */
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { RedisServer } from '../harness/redis.js'

describe('HTTP while storage is unavailable (Redis mode)', function () {
  this.timeout(60_000)
  let redis: RedisServer
  let admin: Redis
  let h: TestHerald

  before(async () => {
    redis = await RedisServer.start()
    admin = new Redis(redis.url)
    h = await startTestHerald({ redisUrl: redis.url, nodeId: 'n1' })
  })
  after(async () => {
    await h?.close()
    admin?.disconnect()
    await redis?.destroy()
  })

  const post = async (id: string) => {
    const res = await fetch(`${h.httpUrl}/v1/users/bob/messages`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await h.token('backend', { role: 'service' })}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ id, body: { text: id } }),
    })
    return {
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      body: (await res.json()) as unknown,
    }
  }

  it('a send while Redis refuses writes is 503 unavailable with Retry-After, logged once; accepted again after', async () => {
    await admin.config('SET', 'maxmemory-policy', 'noeviction')
    await admin.config('SET', 'maxmemory', '1')
    try {
      const refused = await post('m-oom')
      assert.equal(refused.status, 503)
      assert.equal(refused.retryAfter, '1')
      assert.equal((refused.body as { error: { code: string } }).error.code, 'unavailable')
      assert.equal((await post('m-oom-2')).status, 503)
      const lines = h.logs.lines.filter((l) => l.msg === 'storage unavailable: answering 503')
      assert.equal(lines.length, 1, 'one line per outage, not per request')
      assert.ok(!h.logs.find((l) => l.msg === 'request failed'), 'not logged as a failed request')
    } finally {
      await admin.config('SET', 'maxmemory', '0')
    }
    assert.equal((await post('m-oom')).status, 202)
  })

  it('/readyz answers 503 while Redis is stalled, 200 once it runs again', async () => {
    const ready = async () => (await fetch(`${h.httpUrl}/readyz`)).status
    assert.equal(await ready(), 200)
    process.kill(redis.pid!, 'SIGSTOP')
    try {
      assert.equal(await ready(), 503)
    } finally {
      process.kill(redis.pid!, 'SIGCONT')
    }
    assert.equal(await ready(), 200)
  })
})
