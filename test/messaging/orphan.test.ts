/**
 * A message recorded after its sender's connection closed (Redis paused while the record step
 * waited, the client gave up): Aedes writes no PUBACK to a closed client and so routes nothing,
 * and the client's retry of the same id after reconnecting is a repeat — acknowledged, routed
 * nowhere. The message must still reach the recipient's sessions, once.
 */
import assert from 'node:assert/strict'
import type { MqttClient } from 'mqtt'
import type { Envelope } from '../../services/core/envelope.js'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { http } from '../harness/http.js'
import { connectClient, dropSocket, Inbox } from '../harness/mqtt.js'
import { RedisServer } from '../harness/redis.js'
import { eventually } from '../harness/wait.js'

describe('messaging: a message recorded after its sender left (Redis paused)', function () {
  this.timeout(60_000)
  let redis: RedisServer
  let h: TestHerald
  const clients: MqttClient[] = []

  before(async () => {
    // a redis-server of its own: this test freezes it
    redis = await RedisServer.start()
    h = await startTestHerald({ redisUrl: redis.url, nodeId: 'n1' })
  })
  after(async () => {
    for (const c of clients) c.end(true)
    await h?.close()
    await redis?.destroy()
  })

  it('is routed to the connected recipient once; the retry after the reconnect is not delivered again', async () => {
    const bob = await connectClient(h.mqttUrl, 'bob', 'phone', { clean: false })
    clients.push(bob)
    const inbox = new Inbox<Envelope>(bob, (t) => t === 'users/bob/inbox')
    await bob.subscribeAsync('users/bob/inbox', { qos: 1 })
    const alice = await connectClient(h.mqttUrl, 'alice', 'phone')
    clients.push(alice)

    process.kill(redis.pid!, 'SIGSTOP')
    try {
      // the record step waits for Redis; the sender goes away before its PUBACK
      alice.publish('users/bob/inbox', JSON.stringify({ id: 'orphan', body: {} }), { qos: 1 })
      await new Promise((r) => setTimeout(r, 300))
      dropSocket(alice)
      await new Promise((r) => setTimeout(r, 300))
    } finally {
      process.kill(redis.pid!, 'SIGCONT')
    }
    const service = await h.token('backend', { role: 'service' })
    await eventually(
      async () => {
        const page = await http(h.httpUrl, '/v1/users/bob/messages', { token: service })
        return (page.body as { messages: Envelope[] }).messages.some((m) => m.id === 'orphan') || undefined
      },
      { what: 'the message recorded once Redis runs again' },
    )

    // what mqtt.js does by itself: re-send the unacknowledged message after reconnecting
    const again = await connectClient(h.mqttUrl, 'alice', 'phone')
    clients.push(again)
    await again.publishAsync('users/bob/inbox', JSON.stringify({ id: 'orphan', body: {} }), { qos: 1 })
    await again.publishAsync('users/bob/inbox', JSON.stringify({ id: 'after', body: {} }), { qos: 1 })
    await inbox.seen((e) => e.id === 'after')
    await new Promise((r) => setTimeout(r, 300))
    assert.deepEqual(
      inbox.received.map((e) => e.id).sort(),
      ['after', 'orphan'],
      'the recorded message reaches the recipient, once',
    )
  })
})
