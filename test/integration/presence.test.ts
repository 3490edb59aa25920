/**
 * Presence on one access node, end to end over real sockets, in both stores (memory and a real
 * redis-server). Truth comes from the clients; watchers see only user-level edges.
 */
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import type { MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { topics } from '../../services/core/topics.js'
import type { NodeEvent } from '../../services/events/types.js'
import { brokerPublisher } from '../../services/presence/publisher.js'
import type { PresenceDoc } from '../../services/presence/types.js'
import { http } from '../harness/http.js'
import { MODES, withHerald } from '../harness/modes.js'
import { connackCode, connectClient, connectPacket, dropSocket, Inbox, rawSocket } from '../harness/mqtt.js'
import { roundTrips } from '../harness/truth.js'
import { eventually } from '../harness/wait.js'

for (const mode of MODES) {
  describe(`presence on one access node (${mode} store)`, function () {
    this.timeout(30_000)
    const fx = withHerald(mode)
    const client = (userId: string, deviceId: string, opts = {}) => fx.client(userId, deviceId, opts)
    const presence = (userId: string) => fx.presence(userId)
    /** A watcher subscribed to presence/<userIds>, collecting documents. */
    let watchers = 0
    const watcher = async (...userIds: string[]) => {
      const w = await client('watcher', `w${++watchers}`)
      const inbox = new Inbox<PresenceDoc>(w, (t) => t.startsWith('presence/'))
      await w.subscribeAsync(
        userIds.map((u) => `presence/${u}`),
        { qos: 0 },
      )
      return inbox
    }

    it('online on connect: the HTTP API and the retained presence topic agree', async () => {
      const w = await watcher('alice')
      await client('alice', 'phone')
      const doc = await w.seen((d) => d.userId === 'alice' && d.online)
      assert.equal(doc.online, true)
      const view = await presence('alice')
      assert.equal(view.online, true)
      assert.equal(view.since, doc.since)
      assert.equal(view.connections, 1)
      assert.deepEqual(view.devices, ['phone'])
      assert.equal(view.connectionsDetail[0]?.transport, 'tcp')
      assert.equal(view.connectionsDetail[0]?.remoteAddress?.endsWith('127.0.0.1'), true)
      // a subscriber arriving later gets the retained document
      const late = await watcher('alice')
      const retained = await late.seen((d) => d.userId === 'alice')
      assert.equal(retained.online, true)
    })

    it('a new subscriber gets the document the store holds now, with the retain flag; Aedes persistence keeps no copy', async () => {
      const never = await watcher('carol')
      await client('alice', 'phone')
      await client('carol', 'phone')
      // a user never seen online has no document: carol's first is her online edge
      await never.seen((d) => d.userId === 'carol')
      assert.equal(never.received[0]?.online, true)
      const w = await watcher('alice')
      await w.seen((d) => d.userId === 'alice' && d.online)
      const broker = fx.h.herald.node!.broker as unknown as {
        persistence: { createRetainedStream(pattern: string): AsyncIterable<unknown> }
      }
      const copies: unknown[] = []
      for await (const packet of broker.persistence.createRetainedStream('presence/alice'))
        copies.push(packet)
      assert.equal(copies.length, 0)
      // a change the store holds whose edge never went out (a service killed between its write
      // and its publish): what a new subscriber gets is the store's
      const [change] = await fx.h.herald.backend.store.apply([
        { op: 'status', userId: 'alice', status: 'away', meta: { note: 'lunch' }, ts: Date.now() },
      ])
      assert.equal(change?.kind, 'status')
      const late = await client('watcher', 'late')
      const flags: boolean[] = []
      late.on('message', (topic, _payload, packet) => {
        if (topic === 'presence/alice') flags.push(packet.retain)
      })
      const docs = new Inbox<PresenceDoc>(late, (t) => t === 'presence/alice')
      await late.subscribeAsync('presence/alice', { qos: 0 })
      const doc = await docs.seen(() => true)
      assert.deepEqual(doc, { ...change!.doc })
      assert.equal(doc.status, 'away')
      assert.deepEqual(flags, [true])
      const view = await presence('alice')
      assert.equal(view.status, 'away')
      assert.equal(view.since, doc.since)
    })

    it('multi-device: dropping one of two devices keeps the user online with 1 connection and sends no edge', async () => {
      const w = await watcher('bob')
      const phone = await client('bob', 'phone')
      const laptop = await client('bob', 'laptop')
      await w.seen((d) => d.userId === 'bob' && d.online)
      await eventually(async () => (await presence('bob')).connections === 2, { what: 'two connections' })
      dropSocket(phone)
      const view = await eventually(
        async () => {
          const v = await presence('bob')
          return v.connections === 1 ? v : undefined
        },
        { what: 'one connection left' },
      )
      assert.equal(view.online, true)
      assert.deepEqual(view.devices, ['laptop'])
      laptop.end()
      const off = await w.seen((d) => d.userId === 'bob' && !d.online)
      assert.equal(off.reason, 'logout')
      // everything bob's watcher ever saw: one online edge, one offline edge, nothing between
      assert.deepEqual(
        w.received.filter((d) => d.userId === 'bob').map((d) => d.online),
        [true, false],
      )
    })

    it('logout, socket loss and keepalive timeout each give their reason and keep last-seen', async () => {
      const w = await watcher('carl', 'dana', 'erik')
      const carl = await client('carl', 'phone')
      await w.seen((d) => d.userId === 'carl' && d.online)
      carl.end() // DISCONNECT
      const logout = await w.seen((d) => d.userId === 'carl' && !d.online)
      assert.equal(logout.reason, 'logout')
      assert.ok(logout.lastSeen > 0)

      const dana = await client('dana', 'phone')
      await w.seen((d) => d.userId === 'dana' && d.online)
      dropSocket(dana)
      const lost = await w.seen((d) => d.userId === 'dana' && !d.online)
      assert.equal(lost.reason, 'connection-lost')

      // a client that goes silent: CONNECT with keepalive 1 s, then nothing (no PINGREQ)
      const keepalive = 1
      const socket = await rawConnect(fx.h.mqttUrl, 'erik/sensor', await fx.h.token('erik'), keepalive)
      const connackAt = Date.now()
      await w.seen((d) => d.userId === 'erik' && d.online)
      const silent = await w.seen((d) => d.userId === 'erik' && !d.online, 10_000)
      const detectedIn = Date.now() - connackAt
      assert.equal(silent.reason, 'keepalive-timeout')
      assert.ok(detectedIn <= keepalive * 1500 + 1000, `keepalive drop detected in ${detectedIn} ms`)
      socket.destroy()
      const view = await presence('erik')
      assert.equal(view.online, false)
      assert.ok(view.lastSeen >= connackAt - 1000)
    })

    it('same-node takeover: 15 rapid connects with one clientId leave one connection and no offline edge', async () => {
      const w = await watcher('fay')
      const token = await fx.h.token('fay')
      const attempts = await Promise.allSettled(
        Array.from({ length: 15 }, () => connectClient(fx.h.mqttUrl, 'fay', 'phone', { token })),
      )
      const connected = attempts.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []))
      try {
        await takeoverChecks(w, connected)
      } finally {
        for (const c of connected) c.end(true)
      }
    })

    /** The 15-connect takeover's checks: one live connection, and no offline edge until the logout. */
    async function takeoverChecks(w: Inbox<PresenceDoc>, connected: MqttClient[]) {
      assert.ok(connected.length > 0)
      // truth from the client side: exactly one of them still completes a round trip
      const live = await eventually(
        async () => {
          const alive = (await Promise.all(connected.map((c) => roundTrips(c, 'fay', 1000)))).filter(
            Boolean,
          ).length
          return alive === 1 ? alive : undefined
        },
        { what: 'exactly one live connection' },
      )
      assert.equal(live, 1)
      const view = await eventually(
        async () => {
          const v = await presence('fay')
          return v.connections === 1 ? v : undefined
        },
        { what: 'presence with one connection' },
      )
      assert.equal(view.online, true)
      const survivor = connected.find((c) => c.connected)!
      survivor.end()
      await w.seen((d) => d.userId === 'fay' && !d.online)
      assert.deepEqual(
        w.received.filter((d) => d.userId === 'fay').map((d) => d.online),
        [true, false],
        'the watcher saw one online edge and the final logout, no offline edge in between',
      )
    }

    it('refuses bad tokens, mismatched clientIds and bad identifiers, and logs each refusal', async () => {
      const alice = await fx.h.token('alice')
      const { mintToken } = await import('../../services/core/auth.js')
      const cases: Array<[string, Parameters<typeof connackCode>[1], number, string]> = [
        ['no password', { clientId: 'alice/phone' }, 4, 'missing-token'],
        [
          'garbage token',
          { clientId: 'alice/phone', username: 'alice', password: 'not-a-jwt' },
          4,
          'token-malformed',
        ],
        [
          'foreign secret',
          {
            clientId: 'alice/phone',
            username: 'alice',
            password: await mintToken('another-secret-0123456789', 'alice'),
          },
          4,
          'token-bad-signature',
        ],
        [
          'expired',
          { clientId: 'alice/phone', username: 'alice', password: await fx.h.token('alice', { ttl: -10 }) },
          4,
          'token-expired',
        ],
        [
          'clientId without device',
          { clientId: 'alice', username: 'alice', password: alice },
          2,
          'bad-client-id',
        ],
        [
          'bad identifier',
          { clientId: 'al$ce/phone', username: 'alice', password: alice },
          2,
          'bad-client-id',
        ],
        [
          'someone else',
          { clientId: 'bob/phone', username: 'alice', password: alice },
          5,
          'client-id-mismatch',
        ],
        [
          'username mismatch',
          { clientId: 'alice/phone', username: 'bob', password: alice },
          4,
          'username-mismatch',
        ],
      ]
      for (const [name, opts, code, reason] of cases) {
        assert.equal(await connackCode(fx.h.mqttUrl, opts), code, name)
        await fx.h.logs.waitFor((l) => l.msg === 'connect refused' && l.reason === reason)
      }
      assert.equal((await presence('alice')).online, false)
      // the token never reaches a log line
      assert.ok(!fx.h.logs.lines.some((l) => JSON.stringify(l).includes(alice)))
    })

    it('garbage bytes, an oversized packet and a CONNECT that never comes are refused and logged; a good client keeps working', async () => {
      const good = await client('gwen', 'phone')
      assert.ok(await roundTrips(good, 'gwen'))

      const garbage = await rawSocket(fx.h.mqttUrl)
      garbage.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
      await socketClosed(garbage)
      assert.ok(await roundTrips(good, 'gwen'))

      const huge = await rawSocket(fx.h.mqttUrl)
      huge.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])) // CONNECT declaring ~256 MB
      await socketClosed(huge)
      await fx.h.logs.waitFor((l) => l.msg === 'connection refused by packet guard')
      assert.ok(await roundTrips(good, 'gwen'))

      const silent = await rawSocket(fx.h.mqttUrl) // never sends CONNECT (connectTimeoutMs = 1000)
      await socketClosed(silent, 5000)
      await fx.h.logs.waitFor((l) => l.msg === 'connection refused before CONNECT completed')
      assert.ok(await roundTrips(good, 'gwen'))
      assert.equal((await presence('gwen')).connections, 1)
    })

    it('a refused publish is acknowledged, answered with a rejected receipt, and the sender stays connected', async () => {
      const alice = await client('alice', 'phone')
      const receipts = new Inbox<{ id: string; status: string; reason?: string }>(
        alice,
        (t) => t === 'users/alice/receipts',
      )
      await alice.subscribeAsync('users/alice/receipts', { qos: 1 })
      const rejected = (code: string) =>
        receipts.seen((r) => r.status === 'rejected' && r.reason?.startsWith(code) === true)
      await alice.publishAsync('users/bob/inbox', 'not json', { qos: 1 }) // resolves on PUBACK
      await rejected('invalid-json')
      await alice.publishAsync('users/bob/inbox', JSON.stringify({ body: 'no id' }), { qos: 1 })
      await rejected('missing-id')
      await alice.publishAsync('presence/bob', JSON.stringify({ online: true }), { qos: 1 })
      await rejected('not-allowed')
      await alice.publishAsync('users/alice/status', JSON.stringify({ status: 'x'.repeat(40) }), { qos: 1 })
      await rejected('bad-status')
      await alice.publishAsync('users/bob/inbox', JSON.stringify({ id: 'm1', body: 'x'.repeat(70_000) }), {
        qos: 1,
      })
      await rejected('too-large')
      assert.equal(receipts.received.length, 5)
      assert.ok(await roundTrips(alice, 'alice'))
      assert.ok(fx.h.logs.find((l) => l.reason === 'invalid-json'))
    })

    it('JSON nested deeper than 64 levels is refused (a publish, a will, a request body) and costs nobody else anything', async () => {
      const deep = (levels: number) => `{"id":"d1","body":${'['.repeat(levels)}${']'.repeat(levels)}}`
      // 30,000 levels parse, then overflowed the stack wherever Herald wrote them out again
      const alice = await client('alice', 'phone', {
        will: { topic: 'users/bob/inbox', payload: Buffer.from(deep(30_000)), qos: 1, retain: false },
      })
      const refusedWill = await fx.h.logs.waitFor((l) => l.msg === 'will refused; not kept')
      assert.equal(refusedWill.reason, 'too-deep')
      const receipts = new Inbox<{ id: string; status: string; reason?: string }>(
        alice,
        (t) => t === 'users/alice/receipts',
      )
      await alice.subscribeAsync('users/alice/receipts', { qos: 1 })
      await alice.publishAsync('users/bob/inbox', deep(30_000), { qos: 1 }) // resolves on PUBACK
      await receipts.seen((r) => r.status === 'rejected' && r.reason?.startsWith('too-deep') === true)
      // 64 levels are a message like any other
      await alice.publishAsync('users/bob/inbox', deep(63), { qos: 1 })
      assert.equal(receipts.received.length, 1)
      const res = await http(fx.h.httpUrl, '/v1/users/bob/messages', {
        method: 'POST',
        token: await fx.h.token('ops', { role: 'service' }),
        raw: `{"body":${'['.repeat(30_000)}${']'.repeat(30_000)}}`,
      })
      assert.equal(res.status, 400)
      assert.equal((res.body as { error: { code: string } }).error.code, 'too-deep')
      // the node and its log writer are alive, and alice with them
      assert.ok(await roundTrips(alice, 'alice'))
      assert.equal((await presence('alice')).online, true)
      const bob = await client('bob', 'phone')
      assert.ok(await roundTrips(bob, 'bob'))
    })

    it('a client gone right after its CONNECT (before the CONNACK) is never shown online', async () => {
      const token = (u: string) => fx.h.token(u)
      const gone = Array.from({ length: 20 }, (_, i) => `gone${i}`)
      for (const userId of gone) {
        const socket = await rawSocket(fx.h.mqttUrl)
        socket.write(connectPacket(`${userId}/phone`, await token(userId)))
        socket.destroy()
      }
      // connected after them: their connects (had they been opened) come first in the log
      await client('mark', 'phone')
      await eventually(async () => (await presence('mark')).online, { what: 'mark online' })
      // (in one process a CONNECT may be accepted before its socket's end is seen; it is then
      // offline again at once, as any connection that ends)
      for (const userId of gone) assert.equal((await presence(userId)).online, false, userId)
      assert.deepEqual(
        [...fx.h.herald.node!.tracker.all()].map((c) => c.userId),
        ['mark'],
      )
    })

    it('a path with malformed percent-encoding is a 400, not an internal error', async () => {
      const token = await fx.h.token('ops', { role: 'service' })
      for (const path of ['/v1/presence/alice%', '/v1/messages/%ZZ?from=bob', '/v1/users/%/messages']) {
        const res = await http(fx.h.httpUrl, path, { token })
        assert.equal(res.status, 400, path)
        assert.equal((res.body as { error: { code: string } }).error.code, 'bad-request', path)
      }
      assert.equal(
        fx.h.logs.find((l) => l.level >= 50),
        undefined,
        'nothing logged as an error',
      )
    })

    it('subscriptions outside the ACL are refused with SUBACK 0x80', async () => {
      const alice = await client('alice', 'phone')
      // mqtt.js reports a SUBACK with a failure code as an error carrying the packet
      const granted = await alice
        .subscribeAsync(['users/bob/inbox', 'presence/+', '$SYS/#', '#', 'users/alice/inbox'], { qos: 1 })
        .then(
          () => assert.fail('expected refusals'),
          (err: { packet?: { granted: number[] } }) =>
            ['users/bob/inbox', 'presence/+', '$SYS/#', '#', 'users/alice/inbox'].map((topic, i) => ({
              topic,
              qos: err.packet?.granted[i],
            })),
        )
      assert.deepEqual(
        granted.map((g) => [g.topic, g.qos]),
        [
          ['users/bob/inbox', 128],
          ['presence/+', 128],
          ['$SYS/#', 128],
          ['#', 128],
          ['users/alice/inbox', 1],
        ],
      )
      assert.ok(await roundTrips(alice, 'alice'))
    })

    it('status updates reach watchers and are cleared when the user goes offline', async () => {
      const w = await watcher('hana')
      const hana = await client('hana', 'laptop')
      await w.seen((d) => d.userId === 'hana' && d.online)
      await hana.publishAsync(
        'users/hana/status',
        JSON.stringify({ status: 'away', meta: { note: 'lunch' } }),
        { qos: 1 },
      )
      const away = await w.seen((d) => d.userId === 'hana' && d.status === 'away')
      assert.deepEqual(away.meta, { note: 'lunch' })
      assert.equal((await presence('hana')).status, 'away')
      hana.end()
      const off = await w.seen((d) => d.userId === 'hana' && !d.online)
      assert.equal(off.status, undefined)
    })

    it('MQTT over WebSocket works and is reported as transport ws', async () => {
      const w = await watcher('ivan')
      await client('ivan', 'tab1', { url: fx.h.wsUrl })
      await w.seen((d) => d.userId === 'ivan' && d.online)
      const view = await eventually(async () => {
        const v = await presence('ivan')
        return v.connectionsDetail.some((c) => c.transport === 'ws') ? v : undefined
      })
      assert.ok(view.devices.includes('tab1'))
    })

    it("documents in bulk (one bus message) reach each user's watchers as a publish of their own would; a malformed batch is refused and logged", async () => {
      const w = await client('watcher', `w${++watchers}`)
      const got: Array<{ topic: string; doc: PresenceDoc; retain: boolean }> = []
      let arrived: () => void = () => {}
      w.on('message', (topic, payload, packet) => {
        if (!topic.startsWith('presence/bulk')) return
        got.push({ topic, doc: JSON.parse(payload.toString()) as PresenceDoc, retain: packet.retain })
        arrived()
      })
      await w.subscribeAsync(['presence/bulk1', 'presence/bulk2'], { qos: 0 })
      const broker = fx.h.herald.node!.broker
      const docs: PresenceDoc[] = [
        { userId: 'bulk1', online: true, since: 1, lastSeen: 1 },
        { userId: 'bulk2', online: false, since: 2, lastSeen: 2, reason: 'logout' },
        { userId: 'bulk1', online: false, since: 3, lastSeen: 3, reason: 'connection-lost' },
      ]
      const raw = (payload: string) =>
        broker.publish(
          {
            cmd: 'publish',
            topic: topics.presenceBatch,
            payload: Buffer.from(payload),
            qos: 0,
            retain: false,
            dup: false,
          },
          () => {},
        )
      raw('not json')
      raw(JSON.stringify(['bulk1', { not: 'a string' }, 'bulk1/x', '{}']))
      const publisher = brokerPublisher(broker)
      const delivered = async (publish: () => void) => {
        const from = got.length
        const all = new Promise<void>((resolve) => {
          arrived = () => got.length >= from + docs.length && resolve()
        })
        publish()
        await all
        return got.slice(from)
      }
      const single = await delivered(() => {
        for (const doc of docs) publisher.presence(doc)
      })
      const bulk = await delivered(() => publisher.presenceMany!(docs))
      // in order, as each publish of its own gave it (flags included), nothing of the malformed
      assert.deepEqual(bulk, single)
      assert.deepEqual(
        bulk.map((d) => [d.topic, d.doc]),
        docs.map((doc) => [`presence/${doc.userId}`, doc]),
      )
      await fx.h.logs.waitFor((l) => l.msg === 'unreadable presence batch')
      const refused = await fx.h.logs.waitFor(
        (l) => l.msg === 'presence batch entries without a user or document',
      )
      assert.equal(refused.refused, 2)
    })

    it('lifecycle events: a service subscribed to $SYS/<nodeId>/presence/+ gets each connect and disconnect once; none are published while nobody subscribes', async () => {
      const node = fx.h.herald.node!
      const prefix = `$SYS/${node.nodeId}/presence/`
      // every lifecycle event this node publishes (on the bus too, in Redis mode)
      const published: NodeEvent[] = []
      node.broker.on('publish', (packet) => {
        if (packet.topic.startsWith(prefix)) published.push(JSON.parse(String(packet.payload)) as NodeEvent)
      })
      const ofNora = (ev: NodeEvent) =>
        (ev.k === 'conn' ? ev.c.userId : ev.k === 'disc' ? ev.userId : '') === 'nora'
      // nobody subscribes: nora's connect and disconnect are logged, not published
      const first = await client('nora', 'phone')
      await eventually(async () => (await presence('nora')).online, { what: 'nora online' })
      first.end(true)
      await eventually(async () => !(await presence('nora')).online, { what: 'nora offline' })
      assert.deepEqual(published.filter(ofNora), [])

      const svc = await client('ops', 'tap', { token: await fx.h.token('ops', { role: 'service' }) })
      const events = new Inbox<NodeEvent>(svc, (t) => t.startsWith(prefix))
      assert.deepEqual(
        (await svc.subscribeAsync([`${prefix}+`], { qos: 0 })).map((g) => g.qos),
        [0],
      )
      const c = await client('nora', 'laptop')
      const conn = await events.seen((ev) => ev.k === 'conn' && ev.c.userId === 'nora')
      c.end() // a DISCONNECT: logout
      const disc = await events.seen((ev) => ev.k === 'disc' && ev.userId === 'nora')
      assert.ok(conn.k === 'conn' && disc.k === 'disc' && disc.token === conn.c.token && disc.s > conn.s)
      assert.equal(disc.reason, 'logout')
      assert.equal(events.received.filter(ofNora).length, 2, 'the connect and the disconnect, once each')

      // the last subscriber gone, they stop
      await svc.unsubscribeAsync(`${prefix}+`)
      const before = published.length
      await client('nora', 'tablet')
      await eventually(async () => (await presence('nora')).connections === 1, { what: 'nora on her tablet' })
      assert.equal(published.length, before)
    })

    it('lifecycle topics: services and admins may subscribe to $SYS/<nodeId|+>/presence/<kind|+|#> only; users to none', async () => {
      // SUBACK return codes in order; mqtt.js reports one with a failure code as an error
      const grants = async (c: MqttClient, filters: string[]) =>
        c.subscribeAsync(filters, { qos: 0 }).then(
          (g) => g.map((x) => x.qos),
          (err: { packet?: { granted: number[] } }) => err.packet?.granted ?? [],
        )
      const user = await client('alice', 'phone')
      assert.deepEqual(await grants(user, ['$SYS/+/presence/+', '$SYS/n1/presence/conn']), [128, 128])
      const admin = await client('root', 'tap', { token: await fx.h.token('root', { role: 'admin' }) })
      assert.deepEqual(
        await grants(admin, [
          '$SYS/+/presence/#',
          '$SYS/n1/presence/disc',
          '$SYS/#',
          '$SYS/herald/claims',
          '$SYS/+/+/+',
          '$SYS/+/presence/nope',
          '$SYS/+/presence/conn/more',
        ]),
        [0, 0, 128, 128, 128, 128, 128],
      )
    })

    it('graceful shutdown records node-shutdown', async () => {
      await client('june', 'phone')
      await eventually(async () => (await presence('june')).online, { what: 'june online' })
      const store = fx.h.herald.backend.store
      if (mode === 'memory') {
        await fx.h.close()
        const view = await store.get('june')
        assert.equal(view.online, false)
        assert.equal(view.reason, 'node-shutdown')
      } else {
        await fx.h.close()
        const { Redis } = await import('ioredis')
        const { RedisPresenceStore } = await import('../../services/presence/redis-store.js')
        const r = new Redis(fx.redis!.url)
        const view = await new RedisPresenceStore({ redis: r, prefix: 'herald:' }).get('june')
        r.disconnect()
        assert.equal(view.online, false)
        assert.equal(view.reason, 'node-shutdown')
      }
      await fx.restart() // afterEach closes it again
    })
  })
}

function socketClosed(socket: Socket, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve()
    const timer = setTimeout(() => reject(new Error('server did not close the socket in time')), timeoutMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** CONNECT by hand (no automatic PINGREQ); resolves after CONNACK 0. */
async function rawConnect(url: string, clientId: string, token: string, keepalive: number): Promise<Socket> {
  const socket = await rawSocket(url)
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const connack = new Promise<void>((resolve, reject) => {
    parser.on('packet', (p) => {
      if (p.cmd === 'connack' && p.returnCode === 0) resolve()
      else reject(new Error(`unexpected ${p.cmd}`))
    })
  })
  socket.on('data', (b) => parser.parse(b))
  socket.write(connectPacket(clientId, token, keepalive))
  await connack
  return socket
}
