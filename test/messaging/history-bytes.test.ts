/**
 * Memory mode bounds what all histories hold together (HERALD_HISTORY_MAX_BYTES): past it a new
 * message is refused as Redis refuses a write at maxmemory — 503 over HTTP, nothing recorded —
 * and accepted again once older messages age out, also those of users nobody writes to again.
 */
import assert from 'node:assert/strict'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { http } from '../harness/http.js'
import { eventually } from '../harness/wait.js'

describe('memory mode: the histories are bounded in bytes', function () {
  this.timeout(30_000)
  let h: TestHerald | undefined
  afterEach(async () => {
    await h?.close()
    h = undefined
  })

  it('a message past HERALD_HISTORY_MAX_BYTES is 503 unavailable; accepted again once the old ones aged out', async () => {
    h = await startTestHerald({ historyMaxBytes: 64 * 1024, historyMaxAgeMs: 1000 })
    const token = await h.token('backend', { role: 'service' })
    const body = { text: 'x'.repeat(20_000) }
    const send = (to: string, id: string) =>
      http(h!.httpUrl, `/v1/users/${to}/messages`, { token, body: { id, body } })
    // three users who never come back hold ~60 KB
    for (const to of ['u1', 'u2', 'u3']) assert.equal((await send(to, `m-${to}`)).status, 202)
    const refused = await send('u4', 'm-u4')
    assert.equal(refused.status, 503)
    assert.equal((refused.body as { error: { code: string } }).error.code, 'unavailable')
    const history = await http(h.httpUrl, '/v1/users/u4/messages', { token })
    assert.deepEqual((history.body as { messages: unknown[] }).messages, [], 'nothing recorded')
    // a second later u1..u3's messages are past the age limit: the same send goes through
    await eventually(async () => ((await send('u4', 'm-u4')).status === 202 ? true : undefined), {
      what: 'accepted once the old messages aged out',
      timeoutMs: 10_000,
    })
  })

  it('a flood of small messages counts too: their de-duplication keys outlive a history trimmed by length', async () => {
    h = await startTestHerald({ historyMaxBytes: 64 * 1024, historyMaxLen: 10 })
    const token = await h.token('backend', { role: 'service' })
    let accepted = 0
    for (; accepted < 2000; accepted++) {
      const r = await http(h.httpUrl, '/v1/users/u1/messages', {
        token,
        body: { id: `s-${accepted}`, body: 1 },
      })
      if (r.status === 503) break
      assert.equal(r.status, 202)
    }
    // the history holds 10 of them; what bounds the rest is ~320 bytes each in the window
    assert.ok(accepted > 50 && accepted < 2000, `refused after ${accepted}`)
  })
})
