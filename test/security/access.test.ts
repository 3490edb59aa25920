/**
 * Who sees and does what (CONTRACT.md "Topics", docs/security.md): the visibility policy (all,
 * none, a roster callback) over MQTT and HTTP, the publish ACL per role, and the TLS listeners.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { generate } from 'selfsigned'
import { brokerClients } from '../../broker/aedes-internals.js'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { http } from '../harness/http.js'
import { connectClient, Inbox } from '../harness/mqtt.js'
import { roundTrips } from '../harness/truth.js'

/** SUBACK return codes for topics, in order (0x80 = refused). */
async function granted(client: MqttClient, topics: string[]): Promise<number[]> {
  return client.subscribeAsync(topics, { qos: 0 }).then(
    (grants) => grants.map((g) => g.qos),
    (err: { packet?: { granted: number[] } }) => err.packet?.granted ?? [],
  )
}

describe('access: visibility, ACL and TLS', function () {
  this.timeout(30_000)
  let h: TestHerald | undefined
  const clients: MqttClient[] = []
  const client = async (userId: string, deviceId: string, opts = {}) => {
    const c = await connectClient(h!.mqttUrl, userId, deviceId, opts)
    clients.push(c)
    return c
  }
  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true)
    await h?.close()
    h = undefined
  })

  it('visibility none: a user sees only herself, over MQTT and HTTP; a service sees everyone', async () => {
    h = await startTestHerald({ visibility: 'none' })
    const alice = await client('alice', 'phone')
    assert.deepEqual(await granted(alice, ['presence/bob', 'presence/alice']), [128, 0])
    await h.logs.waitFor((l) => l.msg === 'subscribe refused' && l.reason === 'presence not visible')
    const asAlice = await h.token('alice')
    assert.equal((await http(h.httpUrl, '/v1/presence/bob', { token: asAlice })).status, 403)
    assert.equal((await http(h.httpUrl, '/v1/presence/alice', { token: asAlice })).status, 200)
    const svc = await h.token('ops', { role: 'service' })
    assert.equal((await http(h.httpUrl, '/v1/presence/bob', { token: svc })).status, 200)
  })

  it('a roster callback decides who sees whom, is cached, and fails closed when it is down', async () => {
    const friends = new Set(['alice>bob'])
    let asked = 0
    const roster: Server = createServer((req, res) => {
      asked += 1
      const url = new URL(req.url ?? '/', 'http://x')
      const visible = friends.has(`${url.searchParams.get('viewer')}>${url.searchParams.get('target')}`)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ visible }))
    })
    await new Promise<void>((resolve) => roster.listen(0, '127.0.0.1', resolve))
    const port = (roster.address() as AddressInfo).port
    try {
      h = await startTestHerald({ visibility: `http://127.0.0.1:${port}/roster`, visibilityCacheMs: 60_000 })
      const alice = await client('alice', 'phone')
      assert.deepEqual(await granted(alice, ['presence/bob', 'presence/carol']), [0, 128])
      const before = asked
      assert.deepEqual(await granted(alice, ['presence/bob']), [0])
      assert.equal(asked, before, 'the second answer came from the cache')
      const res = await http(h.httpUrl, '/v1/presence/query', {
        method: 'POST',
        token: await h.token('alice'),
        body: { userIds: ['bob', 'carol'] },
      })
      assert.deepEqual(Object.keys((res.body as { results: object }).results), ['bob'])
    } finally {
      await new Promise((resolve) => roster.close(resolve))
    }
    // the roster service is gone: nothing new becomes visible, and it is logged
    const dave = await client('dave', 'phone')
    assert.deepEqual(await granted(dave, ['presence/alice']), [128])
    await h.logs.waitFor((l) => l.msg === 'roster callback failed; not visible')
  })

  it('publish ACL: users may not publish presence, $SYS, other users’ status or devices, or retained messages; services may push to a device', async () => {
    h = await startTestHerald()
    const alice = await client('alice', 'phone')
    const receipts = new Inbox<{ status: string; reason?: string }>(
      alice,
      (t) => t === 'users/alice/receipts',
    )
    await alice.subscribeAsync('users/alice/receipts', { qos: 1 })
    const envelope = (id: string) => JSON.stringify({ id, body: 'hi' })
    const attempts: Array<[string, string, boolean, string]> = [
      ['presence/bob', JSON.stringify({ online: true }), false, 'not-allowed'],
      ['$SYS/herald/claims', '{}', false, 'not-allowed'],
      ['users/bob/status', JSON.stringify({ status: 'away' }), false, 'not-allowed'],
      ['users/bob/devices/phone', envelope('d1'), false, 'not-allowed'],
      ['users/bob/inbox', envelope('r1'), true, 'retain-not-allowed'],
    ]
    for (const [topic, payload, retain, code] of attempts) {
      await alice.publishAsync(topic, payload, { qos: 1, retain })
      await receipts.seen((r) => r.status === 'rejected' && r.reason?.startsWith(code) === true)
      receipts.received.length = 0
    }
    assert.ok(await roundTrips(alice, 'alice'))

    const bob = await client('bob', 'phone')
    const pushed = new Inbox<{ id: string; from: string }>(bob, (t) => t === 'users/bob/devices/phone')
    await bob.subscribeAsync('users/bob/devices/phone', { qos: 1 })
    const svc = await client('ops', 'backend', { token: await h.token('ops', { role: 'service' }) })
    await svc.publishAsync('users/bob/devices/phone', envelope('push1'), { qos: 1 })
    assert.equal((await pushed.seen((m) => m.id === 'push1')).from, 'ops')
  })

  it('subscribe ACL: users/<me>/devices/<d> is for device <d> only; another device of the same user may not subscribe to it, even through a wildcard', async () => {
    h = await startTestHerald()
    const phone = await client('alice', 'phone')
    const laptop = await client('alice', 'laptop')
    assert.deepEqual(
      await granted(laptop, [
        'users/alice/devices/phone',
        'users/alice/devices/+',
        'users/alice/#',
        'users/alice/+/+',
        'users/alice/devices/phone/#',
      ]),
      [128, 128, 128, 128, 128],
    )
    await h.logs.waitFor((l) => l.msg === 'subscribe refused' && /another device/.test(String(l.reason)))
    assert.deepEqual(
      await granted(laptop, [
        'users/alice/devices/laptop',
        'users/alice/inbox',
        'users/alice/+',
        'users/alice/+/laptop',
      ]),
      [0, 0, 0, 0],
    )
    const toPhone = new Inbox<{ id: string }>(phone, (t) => t === 'users/alice/devices/phone')
    const atLaptop = new Inbox<{ id: string }>(laptop, (t) => t.startsWith('users/alice/devices/'))
    await phone.subscribeAsync('users/alice/devices/phone', { qos: 1 })
    const svc = await client('ops', 'backend', { token: await h.token('ops', { role: 'service' }) })
    await svc.publishAsync('users/alice/devices/phone', JSON.stringify({ id: 'p1', body: 'for the phone' }), {
      qos: 1,
    })
    await svc.publishAsync(
      'users/alice/devices/laptop',
      JSON.stringify({ id: 'l1', body: 'for the laptop' }),
      { qos: 1 },
    )
    await toPhone.seen((m) => m.id === 'p1')
    await atLaptop.seen((m) => m.id === 'l1')
    // (two of its filters match its own device topic: Aedes delivers that one twice)
    assert.ok(
      atLaptop.received.every((m) => m.id === 'l1'),
      "the laptop got only its own device's messages",
    )
  })

  it('a publish the ACL refuses names the envelope id in its rejected receipt when the payload has one, and only then', async () => {
    h = await startTestHerald()
    const alice = await client('alice', 'phone')
    const receipts = new Inbox<{ id: string; status: string; reason?: string }>(
      alice,
      (t) => t === 'users/alice/receipts',
    )
    await alice.subscribeAsync('users/alice/receipts', { qos: 1 })
    const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`
    // topic, payload, retain, the receipt's code and id
    const attempts: Array<[string, string, boolean, string, string]> = [
      ['users/bob/devices/phone', JSON.stringify({ id: 'd1', body: 'hi' }), false, 'not-allowed', 'd1'],
      ['users/bob/inbox', JSON.stringify({ id: 'r1', body: 'hi' }), true, 'retain-not-allowed', 'r1'],
      ['users/bob/status', JSON.stringify({ id: 's1', status: 'away' }), false, 'not-allowed', 's1'],
      // no id to name: none, not an identifier, not an object, not JSON
      ['presence/bob', JSON.stringify({ online: true }), false, 'not-allowed', ''],
      ['users/bob/devices/phone', JSON.stringify({ id: 'a/b', body: 'hi' }), false, 'not-allowed', ''],
      ['users/bob/devices/phone', JSON.stringify({ id: 7, body: 'hi' }), false, 'not-allowed', ''],
      ['users/bob/devices/phone', JSON.stringify([{ id: 'x1' }]), false, 'not-allowed', ''],
      ['users/bob/devices/phone', '{"id":"x2",', false, 'not-allowed', ''],
      // what the validate stage would not read either: past the nesting or the size limit
      ['users/bob/devices/phone', `{"id":"x3","body":${nested(30_000)}}`, false, 'not-allowed', ''],
      [
        'users/bob/devices/phone',
        JSON.stringify({ id: 'x4', body: 'x'.repeat(70_000) }),
        false,
        'not-allowed',
        '',
      ],
    ]
    for (const [topic, payload, retain, code, id] of attempts) {
      await alice.publishAsync(topic, payload, { qos: 1, retain }) // resolves on PUBACK
      const receipt = await receipts.seen(
        (r) => r.status === 'rejected' && r.reason?.startsWith(code) === true,
      )
      assert.equal(receipt.id, id, `${topic} ${payload.slice(0, 40)}`)
      receipts.received.length = 0
    }
    assert.ok(await roundTrips(alice, 'alice'))
  })

  it('mqtts and wss listeners serve MQTT with the configured certificate and are reported as tls and wss', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'herald-tls-'))
    try {
      const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
        keyType: 'ec',
        extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
      })
      await writeFile(join(dir, 'cert.pem'), pems.cert)
      await writeFile(join(dir, 'key.pem'), pems.private, { mode: 0o600 })
      h = await startTestHerald({
        mqttsPort: 'auto',
        wssPort: 'auto',
        tlsCert: join(dir, 'cert.pem'),
        tlsKey: join(dir, 'key.pem'),
      })
      const ports = h.herald.ports
      const tls = { ca: pems.cert, rejectUnauthorized: true }
      const a = await connectClient(`mqtts://127.0.0.1:${ports.mqtts}`, 'alice', 'tls', tls)
      const b = await connectClient(`wss://127.0.0.1:${ports.wss}/mqtt`, 'alice', 'wss', tls)
      clients.push(a, b)
      assert.ok(await roundTrips(a, 'alice'))
      assert.ok(await roundTrips(b, 'alice'))
      const view = (
        await http(h.httpUrl, '/v1/presence/alice', { token: await h.token('ops', { role: 'service' }) })
      ).body as { connectionsDetail: Array<{ deviceId: string; transport: string }> }
      const transports = Object.fromEntries(view.connectionsDetail.map((c) => [c.deviceId, c.transport]))
      assert.deepEqual(transports, { tls: 'tls', wss: 'wss' })
      // a client that does not trust the certificate is refused by TLS itself
      await assert.rejects(connectClient(`mqtts://127.0.0.1:${ports.mqtts}`, 'alice', 'untrusting', {}))
      assert.ok(await roundTrips(a, 'alice'))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a live connection’s token is not kept: the CONNECT packet Aedes’s parser holds has no password, over TCP and WebSocket', async () => {
    h = await startTestHerald()
    const broker = h.herald.node!.broker
    const connectPacketHeld = (clientId: string) => {
      const held = brokerClients(broker)[clientId] as unknown as {
        _parser: { settings: { password?: unknown; username?: string } }
      }
      return held._parser.settings
    }
    await client('alice', 'phone')
    await client('alice', 'web', {
      protocol: 'ws',
      hostname: '127.0.0.1',
      port: h.herald.ports.ws,
      path: '/mqtt',
    })
    assert.equal(h.herald.node!.tracker.byId('alice/web')?.transport, 'ws')
    for (const id of ['alice/phone', 'alice/web']) {
      const settings = connectPacketHeld(id)
      assert.equal(settings.username, 'alice', `${id}: the packet is the CONNECT`)
      assert.equal(settings.password, undefined, `${id}: its token is gone`)
    }
    // the token still decided: a bad one is refused
    await assert.rejects(client('bob', 'phone', { token: 'not-a-jwt' }))
  })
})
