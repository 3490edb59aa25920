/**
 * A user's costly HTTP API requests (history pages, presence queries) are paced (HERALD_HTTP_USER_PER_SEC, burst twice that): past it a
 * 429 with Retry-After and a log line, for that user only; back ends are not limited.
 */
import assert from 'node:assert/strict'
import { startTestHerald, type TestHerald } from '../harness/herald.js'

describe('HTTP API: per-user request rate', function () {
  this.timeout(30_000)
  let h: TestHerald | undefined
  after(async () => {
    await h?.close()
  })

  it('a user past the rate of costly requests (history pages, presence queries) gets 429 rate-limited with Retry-After; other users and services are served', async () => {
    h = await startTestHerald({ httpUserPerSec: 2 })
    const get = async (token: string) => {
      const res = await fetch(`${h!.httpUrl}/v1/users/alice/messages`, {
        headers: { authorization: `Bearer ${token}` },
      })
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() }
    }
    const alice = await h.token('alice')
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) statuses.push((await get(alice)).status)
    // a burst of twice the rate, then refusals (the bucket refills 2 per second)
    assert.deepEqual(statuses.slice(0, 4), [200, 200, 200, 200])
    const refused = await get(alice)
    assert.equal(refused.status, 429)
    assert.equal(refused.retryAfter, '1')
    assert.equal((refused.body as { error: { code: string } }).error.code, 'rate-limited')
    assert.ok(h.logs.find((l) => /answering 429/.test(l.msg)))
    // a cheap read is not paced: the SDK looks up the status of every message it sends
    const status = await fetch(`${h.httpUrl}/v1/messages/nope?from=alice`, {
      headers: { authorization: `Bearer ${alice}` },
    })
    assert.equal(status.status, 404)
    // bob is not alice; a back end is not limited at all
    const bob = await fetch(`${h.httpUrl}/v1/presence/alice`, {
      headers: { authorization: `Bearer ${await h.token('bob')}` },
    })
    assert.equal(bob.status, 200)
    const ops = await h.token('ops', { role: 'service' })
    for (let i = 0; i < 10; i++) assert.equal((await get(ops)).status, 200)
  })
})
