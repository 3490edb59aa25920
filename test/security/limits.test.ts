/**
 * Limits and token lifecycle (docs/security.md), in both stores, under the default profile
 * (tests otherwise run relaxed): flapping devices, busy users, connections and subscriptions
 * per client, publish rate, the per-IP connect rate and expiring tokens. Each refusal is
 * answered the documented way, logged with its reason and counted; nobody else is disturbed.
 */
import assert from 'node:assert/strict'
import { connect as netConnect } from 'node:net'
import { mintToken } from '../../services/core/auth.js'
import type { HeraldConfig } from '../../services/core/config.js'
import { startTestHerald, TEST_SECRET, type TestHerald } from '../harness/herald.js'
import { http } from '../harness/http.js'
import { MODES, withHerald } from '../harness/modes.js'
import { closedByServer, connackCode, Inbox } from '../harness/mqtt.js'
import { RedisServer } from '../harness/redis.js'
import { roundTrips } from '../harness/truth.js'
import { eventually } from '../harness/wait.js'

const DEFAULTS: Partial<HeraldConfig> = { limits: 'default' }

async function tryConnect(url: string, userId: string, deviceId: string): Promise<number> {
  return connackCode(url, {
    clientId: `${userId}/${deviceId}`,
    username: userId,
    password: await mintToken(TEST_SECRET, userId),
  })
}

async function metric(h: TestHerald, stage: string, reason: string): Promise<number> {
  const res = await http(h.httpUrl, '/metrics')
  const text = String(res.body)
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('herald_refusals_total{') &&
        l.includes(`stage="${stage}"`) &&
        l.includes(`reason="${reason}"`),
    )
  return line ? Number(line.split(' ').at(-1)) : 0
}

for (const mode of MODES) {
  describe(`limits and token lifecycle (${mode} store)`, function () {
    this.timeout(30_000)
    const fx = withHerald(mode, { ...DEFAULTS, flapCooldownMs: 1500 })

    it('a device connecting more than 3 times in 10 s is refused for a cool-down; its other devices are not', async () => {
      for (let i = 0; i < 3; i++) assert.equal(await tryConnect(fx.h.mqttUrl, 'flo', 'phone'), 0)
      assert.equal(await tryConnect(fx.h.mqttUrl, 'flo', 'phone'), 5)
      await fx.h.logs.waitFor((l) => l.msg === 'connect refused' && l.reason === 'flapping')
      assert.ok((await metric(fx.h, 'connect', 'flapping')) >= 1)
      assert.equal(await tryConnect(fx.h.mqttUrl, 'flo', 'laptop'), 0)
      // the cool-down ends (1.5 s here) and the device starts afresh
      await eventually(async () => (await tryConnect(fx.h.mqttUrl, 'flo', 'phone')) === 0 || undefined, {
        what: 'the cool-down to end',
      })
    })

    it('four tabs of one user opening at once are all accepted', async () => {
      const codes = await Promise.all(
        ['t1', 't2', 't3', 't4'].map((tab) => tryConnect(fx.h.mqttUrl, 'tabby', tab)),
      )
      assert.deepEqual(codes, [0, 0, 0, 0])
    })

    it('subscriptions past the per-client limit get SUBACK 0x80; unsubscribing makes room', async () => {
      await fx.restart({ ...DEFAULTS, maxSubscriptions: 2 })
      const c = await fx.client('sub', 'phone')
      await c.subscribeAsync(['users/sub/inbox', 'users/sub/receipts'], { qos: 1 })
      await c.subscribeAsync('users/sub/inbox', { qos: 1 }) // the same topic again is no new one
      const refused = await c.subscribeAsync('presence/sub', { qos: 0 }).then(
        () => undefined,
        (err: { packet?: { granted: number[] } }) => err.packet?.granted[0],
      )
      assert.equal(refused, 128)
      await fx.h.logs.waitFor((l) => l.msg === 'subscribe refused: too many subscriptions')
      await c.unsubscribeAsync('users/sub/receipts')
      const granted = await c.subscribeAsync('presence/sub', { qos: 0 })
      assert.equal(granted[0]?.qos, 0)
      assert.ok(await roundTrips(c, 'sub'))
    })

    it('publishes past the per-session rate are acknowledged and answered with rate-limited receipts naming their ids', async () => {
      await fx.restart({ ...DEFAULTS, publishPerSec: 5 })
      const alice = await fx.client('alice', 'phone')
      const bob = await fx.client('bob', 'phone')
      const receipts = new Inbox<{ id: string; status: string; reason?: string }>(alice, (t) =>
        t.endsWith('/receipts'),
      )
      const inbox = new Inbox<{ id: string }>(bob, (t) => t.endsWith('/inbox'))
      await alice.subscribeAsync('users/alice/receipts', { qos: 1 })
      await bob.subscribeAsync('users/bob/inbox', { qos: 1 })
      const ids = Array.from({ length: 30 }, (_v, i) => `r${i}`)
      // every publish is acknowledged (publishAsync resolves on PUBACK)
      await Promise.all(
        ids.map((id) => alice.publishAsync('users/bob/inbox', JSON.stringify({ id, body: id }), { qos: 1 })),
      )
      const limited = await eventually(
        () => {
          const got = receipts.received.filter(
            (r) => r.status === 'rejected' && r.reason?.startsWith('rate-limited'),
          )
          return got.length >= 30 - 12 ? got : undefined
        },
        { what: 'rate-limited receipts' },
      )
      const delivered = await eventually(
        () => (inbox.received.length + limited.length === 30 ? inbox.received : undefined),
        {
          what: 'every message delivered or refused',
        },
      )
      assert.ok(delivered.length >= 10, `the burst of 10 passes (got ${delivered.length})`)
      assert.deepEqual(
        [...delivered.map((m) => m.id), ...limited.map((r) => r.id)].sort(),
        [...ids].sort(),
        'each message is either delivered or refused by id, never both, never neither',
      )
      assert.ok(alice.connected)
      assert.ok((await metric(fx.h, 'limit', 'rate-limited')) >= limited.length)
    })

    it('a connection whose token expires is closed after the grace and goes offline as kicked', async () => {
      await fx.restart({ ...DEFAULTS, tokenGraceMs: 500 })
      const c = await fx.client('eve', 'phone', { token: await mintToken(TEST_SECRET, 'eve', { ttl: 2 }) })
      const other = await fx.client('frank', 'phone')
      await closedByServer(c, 10_000)
      await fx.h.logs.waitFor(
        (l) => l.msg === 'token expired; connection closed' && l.clientId === 'eve/phone',
      )
      const view = await eventually(async () => {
        const v = await fx.presence('eve')
        return v.online ? undefined : v
      })
      assert.equal(view.reason, 'kicked')
      assert.ok(other.connected, 'a connection with a valid token stays')
    })

    it('more than the per-user connection cap is refused; a takeover of one of its own devices is not', async () => {
      await fx.restart({ ...DEFAULTS, maxConnectionsPerUser: 2 })
      await fx.client('cap', 'a')
      await fx.client('cap', 'b')
      assert.equal(await tryConnect(fx.h.mqttUrl, 'cap', 'c'), 5)
      await fx.h.logs.waitFor((l) => l.msg === 'connect refused' && l.reason === 'too-many-connections')
      assert.equal(await tryConnect(fx.h.mqttUrl, 'cap', 'a'), 0)
    })

    it('a history page is bounded in bytes, and history requests cost their sender: one at a time, paced', async () => {
      // 40 messages of 60 KB: a page of limit 500 would be 2.4 MB (500 of 64 KiB: 32 MB to parse
      // and send, per request of a few bytes; 100 a second were within the publish rate)
      const hoarder = await fx.client('hoarder', 'phone')
      const body = 'x'.repeat(60_000)
      for (let i = 0; i < 40; i++)
        await hoarder.publishAsync('users/hoarder/inbox', JSON.stringify({ id: `h${i}`, body }), { qos: 1 })
      const token = await fx.h.token('hoarder')
      const page = (
        await http(fx.h.httpUrl, '/v1/users/hoarder/messages?limit=500', {
          token,
        })
      ).body as { messages: Array<{ id: string }>; next: string }
      assert.ok(page.messages.length >= 1 && page.messages.length <= 18, `${page.messages.length} in a page`)
      const rest = (
        await http(fx.h.httpUrl, `/v1/users/hoarder/messages?limit=500&after=${page.next}`, { token })
      ).body as { messages: Array<{ id: string }> }
      assert.equal(rest.messages[0]?.id, `h${page.messages.length}`, 'the next page goes on where it ended')
      // over MQTT: a burst of 20 requests reads one page; the others are answered busy at once
      const replies = new Inbox<{ id: string; ok: boolean; messages?: unknown[]; error?: string }>(
        hoarder,
        (t) => t === 'users/hoarder/rpc/reply/phone',
      )
      await hoarder.subscribeAsync('users/hoarder/rpc/reply/phone', { qos: 1 })
      for (let i = 0; i < 20; i++)
        hoarder.publish('users/hoarder/rpc/history', JSON.stringify({ id: `q${i}`, limit: 500 }), { qos: 0 })
      await eventually(() => replies.received.length === 20 || undefined, { what: '20 replies' })
      const ok = replies.received.filter((r) => r.ok)
      assert.equal(ok.length, 1, 'one page read')
      assert.ok((ok[0]!.messages?.length ?? 0) <= 18)
      assert.ok(replies.received.filter((r) => !r.ok).every((r) => r.error?.startsWith('busy')))
      assert.ok((await metric(fx.h, 'limit', 'history-busy')) >= 19)
      await fx.h.logs.waitFor((l) => l.msg === 'history request refused: one at a time per connection')
    })

    it('a burst of new sockets from one address past the per-IP rate is cut before any byte is read', async () => {
      await fx.restart({ ...DEFAULTS, ipConnectsPerSec: 5 })
      const port = Number(new URL(fx.h.mqttUrl).port)
      const closed = await Promise.all(
        Array.from(
          { length: 30 },
          () =>
            new Promise<boolean>((resolve) => {
              const s = netConnect(port, '127.0.0.1')
              s.on('error', () => {})
              const timer = setTimeout(() => {
                s.destroy()
                resolve(false)
              }, 500)
              s.once('close', () => {
                clearTimeout(timer)
                resolve(true)
              })
            }),
        ),
      )
      const cut = closed.filter(Boolean).length
      assert.ok(cut >= 30 - 10 - 3, `most of the burst is cut (cut ${cut} of 30)`)
      await fx.h.logs.waitFor(
        (l) => l.msg === 'connection refused: too many new connections from this address',
      )
      assert.ok((await metric(fx.h, 'accept', 'ip-connect-rate')) >= 1)
      // the bucket refills: the address may connect again
      await eventually(async () => (await tryConnect(fx.h.mqttUrl, 'ip', 'phone')) === 0 || undefined, {
        what: 'the address to be let in again',
      })
    })
  })
}

describe('connect limits shared by every node (Redis)', function () {
  this.timeout(30_000)
  let redis: RedisServer
  let a: TestHerald
  let b: TestHerald
  before(async () => {
    redis = await RedisServer.start()
    const common = { ...DEFAULTS, redisUrl: redis.url }
    a = await startTestHerald({ ...common, nodeId: 'lim-a' }, 'node')
    b = await startTestHerald({ ...common, nodeId: 'lim-b' }, 'node')
  })
  after(async () => {
    await a?.close()
    await b?.close()
    await redis?.destroy()
  })

  it('a device flapping between two nodes is counted once: its 4th connect is refused on either', async () => {
    assert.equal(await tryConnect(a.mqttUrl, 'zed', 'phone'), 0)
    assert.equal(await tryConnect(b.mqttUrl, 'zed', 'phone'), 0)
    assert.equal(await tryConnect(a.mqttUrl, 'zed', 'phone'), 0)
    assert.equal(await tryConnect(b.mqttUrl, 'zed', 'phone'), 5)
    assert.equal(await tryConnect(a.mqttUrl, 'zed', 'phone'), 5)
    await b.logs.waitFor((l) => l.msg === 'connect refused' && l.reason === 'flapping')
  })

  it('a user opening connections faster than the per-user limit is refused on every node', async () => {
    await a.close()
    a = await startTestHerald({ ...DEFAULTS, redisUrl: redis.url, nodeId: 'lim-a', userConnects: 4 }, 'node')
    const codes: number[] = []
    for (let i = 0; i < 6; i++) codes.push(await tryConnect(i % 2 ? b.mqttUrl : a.mqttUrl, 'busy', `d${i}`))
    assert.deepEqual(codes.slice(0, 4), [0, 0, 0, 0])
    assert.deepEqual(codes.slice(4), [5, 5])
  })
})
