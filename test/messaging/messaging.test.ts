/**
 * Messaging end to end on one access node, in both backends: record before acknowledge,
 * de-duplication, stamping, receipts, persistent sessions, catch-up by offset, back ends over
 * HTTP, and Aedes #994 (QoS 0 presence overtaking QoS 1 inbox traffic).
 */
import assert from 'node:assert/strict'
import type { MqttClient } from 'mqtt'
import type { Envelope, Receipt } from '../../services/core/envelope.js'
import type { MessageStatus } from '../../services/messaging/store.js'
import type { PresenceDoc } from '../../services/presence/types.js'
import { http } from '../harness/http.js'
import { MODES, withHerald } from '../harness/modes.js'
import { connectClient, Inbox } from '../harness/mqtt.js'
import { eventually } from '../harness/wait.js'

const send = (c: MqttClient, to: string, id: string, body: unknown = { text: id }, extra: object = {}) =>
  c.publishAsync(`users/${to}/inbox`, JSON.stringify({ id, body, ...extra }), { qos: 1 })

for (const mode of MODES) {
  describe(`messaging (${mode} store)`, function () {
    this.timeout(60_000)
    const fx = withHerald(mode)

    const inboxOf = async (userId: string, deviceId: string, opts = {}) => {
      const c = await fx.client(userId, deviceId, opts)
      const inbox = new Inbox<Envelope>(
        c,
        (t) => t === `users/${userId}/inbox` || t.startsWith(`users/${userId}/devices/`),
      )
      await c.subscribeAsync([`users/${userId}/inbox`, `users/${userId}/devices/${deviceId}`], { qos: 1 })
      return { c, inbox }
    }
    const service = () => fx.h.token('backend', { role: 'service' })

    it('stamps from and ts (a forged from is overwritten), records an offset, delivers live', async () => {
      const bob = await inboxOf('bob', 'phone')
      const alice = await fx.client('alice', 'phone')
      await send(alice, 'bob', 'm-1', { text: 'hi' }, { from: 'mallory', ts: 1 })
      const got = await bob.inbox.seen((e) => e.id === 'm-1')
      assert.equal(got.from, 'alice')
      assert.equal(got.to, 'bob')
      assert.ok(got.ts > 1_600_000_000_000)
      assert.match(got.offset ?? '', /^\d+-\d+$/)
      assert.deepEqual(got.body, { text: 'hi' })
      const history = await http(fx.h.httpUrl, '/v1/users/bob/messages', { token: await fx.h.token('bob') })
      assert.equal(history.status, 200)
      assert.deepEqual(
        (history.body as { messages: Envelope[] }).messages.map((m) => [m.id, m.from, m.offset]),
        [['m-1', 'alice', got.offset]],
      )
    })

    it('a retry right after the PUBACK and after a reconnect (new packet id) is acknowledged, not delivered twice', async () => {
      const bob = await inboxOf('bob', 'phone')
      const token = await fx.h.token('alice')
      const alice = await connectClient(fx.h.mqttUrl, 'alice', 'phone', { token })
      await send(alice, 'bob', 'once')
      await send(alice, 'bob', 'once') // the same message again, a new packet id
      alice.end(true)
      const again = await fx.client('alice', 'phone', { token })
      await send(again, 'bob', 'once')
      await send(again, 'bob', 'after')
      await bob.inbox.seen((e) => e.id === 'after')
      assert.deepEqual(
        bob.inbox.received.map((e) => e.id),
        ['once', 'after'],
      )
      const page = await http(fx.h.httpUrl, '/v1/users/bob/messages', { token: await service() })
      assert.equal((page.body as { messages: Envelope[] }).messages.length, 2)
    })

    it('an offline persistent session gets what it missed when it returns; catch-up by offset gets the rest', async () => {
      const first = await inboxOf('bob', 'phone', { clean: false })
      await fx.goOffline(first.c, 'bob')
      const alice = await fx.client('alice', 'phone')
      for (const id of ['o-1', 'o-2', 'o-3']) await send(alice, 'bob', id)
      // all three in bob's queue first, or o-3 may be routed live to the resumed session ahead
      // of the queue's o-1 and o-2
      await fx.queued('bob/phone', 3)
      // the same device comes back with its session: the queued messages arrive
      let inbox!: Inbox<Envelope>
      await fx.client('bob', 'phone', {
        clean: false,
        setup: (c) => {
          inbox = new Inbox<Envelope>(c, (t) => t === 'users/bob/inbox')
        },
      })
      await inbox.seen((e) => e.id === 'o-3')
      assert.deepEqual(
        inbox.received.map((e) => e.id),
        ['o-1', 'o-2', 'o-3'],
      )
      // a new device catches up by offset over MQTT: everything after o-1, in order
      const tablet = await fx.client('bob', 'tablet')
      const replies = new Inbox<{ id: string; ok: boolean; messages: Envelope[]; next: string }>(
        tablet,
        (t) => t === 'users/bob/rpc/reply/tablet',
      )
      await tablet.subscribeAsync('users/bob/rpc/reply/tablet', { qos: 1 })
      await tablet.publishAsync(
        'users/bob/rpc/history',
        JSON.stringify({ id: 'r1', after: inbox.received[0]!.offset }),
        {
          qos: 1,
        },
      )
      const reply = await replies.seen((r) => r.id === 'r1')
      assert.equal(reply.ok, true)
      assert.deepEqual(
        reply.messages.map((m) => m.id),
        ['o-2', 'o-3'],
      )
      assert.equal(reply.next, inbox.received[2]!.offset)
      // the same over HTTP, a page at a time
      const token = await fx.h.token('bob')
      const page1 = await http(fx.h.httpUrl, '/v1/users/bob/messages?after=0&limit=2', { token })
      const body1 = page1.body as { messages: Envelope[]; next: string }
      assert.deepEqual(
        body1.messages.map((m) => m.id),
        ['o-1', 'o-2'],
      )
      const page2 = await http(fx.h.httpUrl, `/v1/users/bob/messages?after=${body1.next}&limit=2`, { token })
      assert.deepEqual(
        (page2.body as { messages: Envelope[] }).messages.map((m) => m.id),
        ['o-3'],
      )
      assert.equal((await http(fx.h.httpUrl, '/v1/users/alice/messages', { token })).status, 403)
    })

    it('receipts: stamped with by and device, forwarded to the sender; forged ones refused; status per device', async () => {
      const alice = await fx.client('alice', 'phone')
      const aliceReceipts = new Inbox<Receipt>(alice, (t) => t === 'users/alice/receipts')
      await alice.subscribeAsync('users/alice/receipts', { qos: 1 })
      const bob = await inboxOf('bob', 'phone')
      await send(alice, 'bob', 'r-1')
      await bob.inbox.seen((e) => e.id === 'r-1')
      await bob.c.publishAsync(
        'users/alice/receipts',
        JSON.stringify({ id: 'r-1', status: 'delivered', by: 'mallory' }),
        {
          qos: 1,
        },
      )
      const delivered = await aliceReceipts.seen((r) => r.status === 'delivered')
      assert.equal(delivered.by, 'bob')
      assert.equal(delivered.deviceId, 'phone')
      // someone who did not receive r-1 cannot mark it
      const carol = await fx.client('carol', 'phone')
      const carolReceipts = new Inbox<Receipt>(carol, (t) => t === 'users/carol/receipts')
      await carol.subscribeAsync('users/carol/receipts', { qos: 1 })
      await carol.publishAsync('users/alice/receipts', JSON.stringify({ id: 'r-1', status: 'read' }), {
        qos: 1,
      })
      const refused = await carolReceipts.seen((r) => r.status === 'rejected')
      assert.match(refused.reason ?? '', /^bad-receipt/)
      await bob.c.publishAsync('users/alice/receipts', JSON.stringify({ id: 'r-1', status: 'read' }), {
        qos: 1,
      })
      await aliceReceipts.seen((r) => r.status === 'read')
      assert.ok(!aliceReceipts.received.some((r) => r.by === 'carol'))
      const status = await http(fx.h.httpUrl, '/v1/messages/r-1?from=alice', {
        token: await fx.h.token('alice'),
      })
      assert.equal(status.status, 200)
      const st = status.body as MessageStatus
      assert.equal(st.status, 'read')
      assert.equal(st.to, 'bob')
      assert.equal(st.devices.phone?.status, 'read')
      assert.equal(
        (await http(fx.h.httpUrl, '/v1/messages/r-1?from=alice', { token: await fx.h.token('carol') }))
          .status,
        403,
      )
    })

    it('a batch send to several users: each recipient may send receipts, the sender gets them all, the status reports each recipient', async () => {
      const backend = await fx.client('backend', 'svc1', { token: await service() })
      const receipts = new Inbox<Receipt>(backend, (t) => t === 'users/backend/receipts')
      await backend.subscribeAsync('users/backend/receipts', { qos: 1 })
      const alice = await inboxOf('alice', 'phone')
      const bob = await inboxOf('bob', 'phone')
      const token = await service()
      const batch = await http(fx.h.httpUrl, '/v1/messages', {
        token,
        body: { to: ['alice', 'bob'], id: 'announce-1', body: 'hi all' },
      })
      assert.equal(batch.status, 202)
      const offsets = Object.fromEntries(
        (batch.body as { results: Array<{ to: string; offset: string }> }).results.map((r) => [
          r.to,
          r.offset,
        ]),
      )
      for (const r of [alice, bob]) {
        await r.inbox.seen((e) => e.id === 'announce-1')
        await r.c.publishAsync(
          'users/backend/receipts',
          JSON.stringify({ id: 'announce-1', status: 'read' }),
          {
            qos: 1,
          },
        )
      }
      await receipts.seen((r) => r.status === 'read' && r.by === 'alice')
      await receipts.seen((r) => r.status === 'read' && r.by === 'bob')
      const status = await http(fx.h.httpUrl, '/v1/messages/announce-1?from=backend', { token })
      assert.equal(status.status, 200)
      const st = status.body as MessageStatus
      assert.deepEqual(
        Object.fromEntries(
          Object.entries(st.recipients).map(([to, r]) => [to, [r.offset, r.status, r.devices.phone?.status]]),
        ),
        { alice: [offsets.alice, 'read', 'read'], bob: [offsets.bob, 'read', 'read'] },
      )
      // the top-level fields are one recipient's (the last recorded), as for a message to one user
      assert.equal(st.to, 'bob')
      assert.equal(st.offset, offsets.bob)
    })

    it('back ends: POST answers 202 {id, offset} once recorded; batches; a device push reaches that device only', async () => {
      const phone = await inboxOf('dan', 'phone')
      const tablet = await inboxOf('dan', 'tablet')
      const eve = await inboxOf('eve', 'laptop')
      const token = await service()
      const one = await http(fx.h.httpUrl, '/v1/users/dan/messages', {
        token,
        body: { id: 'h-1', type: 'note', body: 'hello' },
      })
      assert.equal(one.status, 202)
      const sent = one.body as { id: string; offset: string }
      assert.equal(sent.id, 'h-1')
      const got = await phone.inbox.seen((e) => e.id === 'h-1')
      assert.equal(got.from, 'backend')
      assert.equal(got.offset, sent.offset)
      assert.equal(got.type, 'note')
      // repeating the POST is idempotent
      const repeat = await http(fx.h.httpUrl, '/v1/users/dan/messages', {
        token,
        body: { id: 'h-1', body: 'hello' },
      })
      assert.equal((repeat.body as { offset: string }).offset, sent.offset)
      const batch = await http(fx.h.httpUrl, '/v1/messages', {
        token,
        body: { to: ['dan', 'eve'], body: 'to all' },
      })
      assert.equal(batch.status, 202)
      const batchId = (batch.body as { id: string }).id
      await eve.inbox.seen((e) => e.id === batchId)
      await phone.inbox.seen((e) => e.id === batchId)
      const push = await http(fx.h.httpUrl, '/v1/users/dan/messages', {
        token,
        body: { id: 'p-1', body: 'ping', deviceId: 'tablet' },
      })
      assert.equal(push.status, 202)
      const pushed = await tablet.inbox.seen((e) => e.id === 'p-1')
      assert.equal(pushed.deviceId, 'tablet')
      await send(await fx.client('zed', 'x'), 'dan', 'marker')
      await phone.inbox.seen((e) => e.id === 'marker')
      assert.ok(!phone.inbox.received.some((e) => e.id === 'p-1'), 'the phone never saw the tablet push')
      const phoneHistory = await http(fx.h.httpUrl, '/v1/users/dan/messages?deviceId=phone', { token })
      assert.ok(!(phoneHistory.body as { messages: Envelope[] }).messages.some((m) => m.id === 'p-1'))
      // refusals
      const user = await fx.h.token('dan')
      assert.equal(
        (await http(fx.h.httpUrl, '/v1/users/dan/messages', { token: user, body: { body: 1 } })).status,
        403,
      )
      assert.equal(
        (await http(fx.h.httpUrl, '/v1/users/dan/messages', { token, body: { nobody: 1 } })).status,
        400,
      )
      const big = { body: 'x'.repeat(70_000) }
      assert.equal((await http(fx.h.httpUrl, '/v1/users/dan/messages', { token, body: big })).status, 413)
      const many = { to: Array.from({ length: 1001 }, (_v, i) => `u${i}`), body: 1 }
      assert.equal((await http(fx.h.httpUrl, '/v1/messages', { token, body: many })).status, 413)
    })

    it('Aedes #994: a watcher gets every inbox message live while presence updates (QoS 0) flow to it', async () => {
      const users = Array.from({ length: 5 }, (_v, i) => `churn${i}`)
      // a persistent session, as the SDK uses for inbox delivery: its QoS 1 traffic takes the
      // slower path through the session store, where QoS 0 presence documents overtake it
      const w = await fx.client('watcher', 'w1', { clean: false })
      const inbox = new Inbox<Envelope>(w, (t) => t === 'users/watcher/inbox')
      const docs = new Inbox<PresenceDoc>(w, (t) => t.startsWith('presence/'))
      await w.subscribeAsync(['users/watcher/inbox', ...users.map((u) => `presence/${u}`)], { qos: 1 })
      const sender = await fx.client('sender', 'phone')
      const total = 200
      const churn = (async () => {
        for (let round = 0; round < 8; round++) {
          const cs = await Promise.all(users.map((u) => connectClient(fx.h.mqttUrl, u, 'dev')))
          for (const c of cs) c.end(true)
        }
      })()
      for (let i = 0; i < total; i++) await send(sender, 'watcher', `w-${i}`)
      await churn
      await inbox.seen((e) => e.id === `w-${total - 1}`)
      await eventually(() => (new Set(inbox.received.map((e) => e.id)).size === total ? true : undefined), {
        timeoutMs: 10_000,
        what: `${total} inbox messages live`,
      })
      assert.ok(docs.received.length > 0, 'presence updates were flowing to the same client')
    })
  })
}
