/**
 * Persistent MQTT sessions are a bounded cache in front of the history stream: an offline
 * session queues at most HERALD_SESSION_MAX_QUEUE messages (the rest come by catch-up), and a
 * session idle longer than HERALD_SESSION_MAX_IDLE_MS is removed.
 */
import assert from 'node:assert/strict'
import type { MqttClient } from 'mqtt'
import mqttPacket, { type Packet } from 'mqtt-packet'
import type { Envelope } from '../../services/core/envelope.js'
import { MODES, withHerald } from '../harness/modes.js'
import { connectPacket, Inbox, rawSocket } from '../harness/mqtt.js'

for (const mode of MODES) {
  describe(`persistent session bounds (${mode} store)`, function () {
    this.timeout(30_000)
    const fx = withHerald(mode, { sessionMaxQueue: 5, sessionMaxIdleMs: 60_000 })

    const goOffline = (c: MqttClient) => fx.goOffline(c, 'bob')

    it('an offline session keeps at most the first N missed messages; catch-up by offset brings the rest', async () => {
      const first = await fx.client('bob', 'phone', { clean: false })
      await first.subscribeAsync('users/bob/inbox', { qos: 1 })
      await goOffline(first)
      const alice = await fx.client('alice', 'phone')
      for (let i = 1; i <= 12; i++)
        await alice.publishAsync('users/bob/inbox', JSON.stringify({ id: `q-${i}`, body: i }), { qos: 1 })
      // the janitor trims on its own schedule: all twelve in bob's queue before the sweep
      await fx.queued('bob/phone', 12)
      await fx.h.herald.node!.sweepSessions()
      let inbox!: Inbox<Envelope>
      const back = await fx.client('bob', 'phone', {
        clean: false,
        setup: (c) => {
          inbox = new Inbox<Envelope>(c, (t) => t === 'users/bob/inbox')
        },
      })
      await inbox.seen((e) => e.id === 'q-5')
      // the queue held the oldest five; a marker sent now arrives after them, nothing in between
      await alice.publishAsync('users/bob/inbox', JSON.stringify({ id: 'marker', body: 0 }), { qos: 1 })
      await inbox.seen((e) => e.id === 'marker')
      assert.deepEqual(
        inbox.received.map((e) => e.id),
        ['q-1', 'q-2', 'q-3', 'q-4', 'q-5', 'marker'],
      )
      const replies = new Inbox<{ id: string; messages: Envelope[] }>(
        back,
        (t) => t === 'users/bob/rpc/reply/phone',
      )
      await back.subscribeAsync('users/bob/rpc/reply/phone', { qos: 1 })
      await back.publishAsync(
        'users/bob/rpc/history',
        JSON.stringify({ id: 'c1', after: inbox.received[4]!.offset }),
        {
          qos: 1,
        },
      )
      const reply = await replies.seen((r) => r.id === 'c1')
      assert.deepEqual(
        reply.messages.map((m) => m.id),
        ['q-6', 'q-7', 'q-8', 'q-9', 'q-10', 'q-11', 'q-12', 'marker'],
      )
    })

    it('the cap applies to each absence: two absences under it are both delivered whole', async () => {
      // the memory store once counted what it let in across absences (reset only by a message
      // arriving while the session was connected): with a cap of 5, four messages in one absence
      // used up all but one place of the next
      const first = await fx.client('bob', 'phone', { clean: false })
      await first.subscribeAsync('users/bob/inbox', { qos: 1 })
      await goOffline(first)
      const alice = await fx.client('alice', 'phone')
      for (const absence of [1, 2]) {
        const ids = [1, 2, 3, 4].map((i) => `a${absence}-${i}`)
        for (const [i, id] of ids.entries())
          await alice.publishAsync('users/bob/inbox', JSON.stringify({ id, body: i }), { qos: 1 })
        await fx.queued('bob/phone', ids.length)
        let inbox!: Inbox<Envelope>
        const back = await fx.client('bob', 'phone', {
          clean: false,
          setup: (c) => {
            inbox = new Inbox<Envelope>(c, (t) => t === 'users/bob/inbox')
          },
        })
        // a message the queue did not keep never comes: on timeout the assertion shows what did
        await inbox.seen((e) => e.id === ids.at(-1), 5000).catch(() => {})
        assert.deepEqual(
          inbox.received.map((e) => e.id),
          ids,
          `absence ${absence}`,
        )
        await goOffline(back)
      }
    })

    // memory mode bounds the queue as it fills; Redis mode's janitor trims every idle session
    if (mode === 'redis')
      it('the janitor trims the queue of every idle session, however many are idle', async () => {
        const first = await fx.client('bob', 'phone', { clean: false })
        await first.subscribeAsync('users/bob/inbox', { qos: 1 })
        await goOffline(first)
        // 2,500 sessions that went idle before bob (within the idle limit), as many devices
        // would: a pass once trimmed only the 1,000 oldest, so bob's queue kept growing
        const { Redis } = await import('ioredis')
        const r = new Redis(fx.redis!.url)
        try {
          const key = `${fx.h.herald.config.redisPrefix}sessions:idle`
          const older: Array<string | number> = []
          for (let i = 0; i < 2500; i++) older.push(Date.now() - 30_000 + i, `u${i}/d`)
          await r.zadd(key, ...older)
          assert.ok((await r.zrank(key, 'bob/phone'))! >= 2500, 'bob went idle last')
          const alice = await fx.client('alice', 'phone')
          for (let i = 1; i <= 8; i++)
            await alice.publishAsync('users/bob/inbox', JSON.stringify({ id: `q-${i}`, body: i }), { qos: 1 })
          await fx.queued('bob/phone', 8)
          assert.equal(await fx.h.herald.node!.sweepSessions(), 0, 'none idle past the limit')
          assert.equal(await r.llen('outgoing:bob%2Fphone'), 5)
          assert.equal(await r.zcard(key), 2501, 'trimming removes no session')
        } finally {
          r.disconnect()
        }
      })

    it('a session resuming while messages flow to it gets its CONNACK first, every time ([MQTT-3.2.0-1])', async () => {
      const first = await fx.client('bob', 'phone', { clean: false })
      await first.subscribeAsync('users/bob/inbox', { qos: 1 })
      await goOffline(first)
      const alice = await fx.client('alice', 'phone')
      let flowing = true
      const flow = (async () => {
        for (let i = 0; flowing; i++) {
          await alice.publishAsync('users/bob/inbox', JSON.stringify({ id: `f-${i}`, body: i }), { qos: 1 })
        }
      })()
      const token = await fx.h.token('bob')
      const connect = connectPacket('bob/phone', token, 30, { clean: false })
      const firsts: string[] = []
      for (let round = 0; round < 25; round++) {
        const socket = await rawSocket(fx.h.mqttUrl)
        const parser = mqttPacket.parser({ protocolVersion: 4 })
        const firstPacket = new Promise<string>((resolve) =>
          parser.once('packet', (p: Packet) => resolve(p.cmd)),
        )
        socket.on('data', (b: Buffer) => parser.parse(b))
        socket.write(connect)
        firsts.push(await firstPacket)
        socket.destroy()
      }
      flowing = false
      await flow
      assert.deepEqual(
        firsts.filter((cmd) => cmd !== 'connack'),
        [],
        `first packets: ${firsts.join(' ')}`,
      )
    })

    it('a session idle longer than the limit is removed: no subscriptions, no queue', async () => {
      const first = await fx.client('bob', 'phone', { clean: false })
      await first.subscribeAsync('users/bob/inbox', { qos: 1 })
      await goOffline(first)
      const alice = await fx.client('alice', 'phone')
      await alice.publishAsync('users/bob/inbox', JSON.stringify({ id: 'lost-1', body: 1 }), { qos: 1 })
      assert.equal(await fx.h.herald.node!.sweepSessions(Date.now() + 30_000), 0, 'not idle long enough yet')
      assert.equal(await fx.h.herald.node!.sweepSessions(Date.now() + 61_000), 1)
      const back = await fx.client('bob', 'phone', { clean: false })
      const inbox = new Inbox<Envelope>(back, (t) => t === 'users/bob/inbox')
      await alice.publishAsync('users/bob/inbox', JSON.stringify({ id: 'after-expiry', body: 2 }), { qos: 1 })
      // the subscription went with the session: nothing arrives until bob subscribes again
      await back.subscribeAsync('users/bob/inbox', { qos: 1 })
      await alice.publishAsync('users/bob/inbox', JSON.stringify({ id: 'resubscribed', body: 3 }), { qos: 1 })
      await inbox.seen((e) => e.id === 'resubscribed')
      assert.deepEqual(
        inbox.received.map((e) => e.id),
        ['resubscribed'],
      )
      // the history still has everything
      const token = await fx.h.token('bob')
      const { http } = await import('../harness/http.js')
      const page = await http(fx.h.httpUrl, '/v1/users/bob/messages', { token })
      assert.deepEqual(
        (page.body as { messages: Envelope[] }).messages.map((m) => m.id),
        ['lost-1', 'after-expiry', 'resubscribed'],
      )
    })
  })
}
