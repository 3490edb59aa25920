/**
 * A will whose publish fails (the store refuses the record: memory mode's history bound, Redis
 * at maxmemory) is not dropped: it stays kept and is published once the store takes it again.
 */
import assert from 'node:assert/strict'
import type { Envelope } from '../../services/core/envelope.js'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { http } from '../harness/http.js'
import { connectClient, dropSocket } from '../harness/mqtt.js'
import { eventually } from '../harness/wait.js'

describe('a will the message store refuses', function () {
  this.timeout(30_000)
  let h: TestHerald | undefined
  afterEach(async () => {
    await h?.close()
    h = undefined
  })

  it('is published once the store takes messages again, not dropped', async () => {
    h = await startTestHerald({ historyMaxBytes: 64 * 1024, historyMaxAgeMs: 2000 })
    const service = await h.token('backend', { role: 'service' })
    const willer = await connectClient(h.mqttUrl, 'wendy', 'dev', {
      will: {
        topic: 'users/rita/inbox',
        payload: Buffer.from(JSON.stringify({ id: 'bye', body: 'gone' })),
        qos: 1,
        retain: false,
      },
    })
    willer.on('error', () => {})
    // the histories are full: users who never come back hold all 64 KiB
    let n = 0
    for (const size of [20_000, 1000, 10]) {
      for (;;) {
        const body = { text: 'x'.repeat(size) }
        const r = await http(h.httpUrl, `/v1/users/u${n}/messages`, {
          token: service,
          body: { id: `m-${n}`, body },
        })
        n++
        if (r.status === 503) break
        assert.equal(r.status, 202)
      }
    }
    dropSocket(willer)
    willer.end(true)
    await eventually(
      async () => (h!.logs.find((l) => l.msg === 'could not publish a will') ? true : undefined),
      {
        what: 'the will refused by the full store',
      },
    )
    const ids = async () => {
      const r = await http(h!.httpUrl, '/v1/users/rita/messages', { token: service })
      return (r.body as { messages: Envelope[] }).messages.map((m) => m.id)
    }
    // the old messages age out in 2 s: the will goes then
    await eventually(async () => ((await ids()).some((id) => id.startsWith('bye')) ? true : undefined), {
      what: "the will in rita's history",
      timeoutMs: 15_000,
    })
    assert.equal((await ids()).filter((id) => id.startsWith('bye')).length, 1)
  })
})
