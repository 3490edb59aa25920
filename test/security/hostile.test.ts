/**
 * Hostile bytes against one access node: a seeded fuzzer (10,000 packets by default;
 * HERALD_FUZZ_PACKETS and HERALD_FUZZ_SEED to change), half-open CONNECTs, a slow reader, a
 * 256 MB packet header and WebSocket frames over the limit. Throughout, a well-behaved client
 * on the same node keeps round-tripping and is never disconnected, each offender is
 * disconnected and logged, and memory stays bounded.
 */
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import type { MqttClient } from 'mqtt'
import mqttPacket, { type Packet } from 'mqtt-packet'
import WebSocket from 'ws'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { connectClient, connectPacket, rawSocket } from '../harness/mqtt.js'
import { roundTrips } from '../harness/truth.js'
import { Fuzzer } from './fuzz.js'

const PACKETS = Number(process.env.HERALD_FUZZ_PACKETS ?? 10_000)
const SEED = Number(process.env.HERALD_FUZZ_SEED ?? 20261122)
/** Memory the node may grow by during the whole run (Herald and the test share this process). */
const RSS_BOUND = 300 * 1024 * 1024

/** Resolves when the server closes the socket; destroys it ourselves after `boundMs`. */
function closed(s: Socket, boundMs: number): Promise<'server' | 'bound'> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve('server')
    const timer = setTimeout(() => {
      s.destroy()
      resolve('bound')
    }, boundMs)
    s.once('close', () => {
      clearTimeout(timer)
      resolve('server')
    })
  })
}

describe('hostile input on one access node', function () {
  this.timeout(180_000)
  let h: TestHerald
  let good: MqttClient
  let goodClosed = 0
  let rssStart = 0
  let rssPeak = 0
  const sample = () => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
  }

  before(async () => {
    h = await startTestHerald({ connectTimeoutMs: 1000, drainTimeoutMs: 1000, historyMaxLen: 100 })
    good = await connectClient(h.mqttUrl, 'good', 'phone')
    good.on('close', () => {
      goodClosed += 1
    })
    rssStart = process.memoryUsage().rss
  })
  after(async () => {
    good?.end(true)
    await h?.close()
  })
  afterEach(async () => {
    sample()
    assert.ok(await roundTrips(good, 'good'), 'the well-behaved client still round-trips')
    assert.equal(goodClosed, 0, 'the well-behaved client was never disconnected')
    assert.ok(rssPeak - rssStart < RSS_BOUND, `RSS grew ${((rssPeak - rssStart) / 2 ** 20).toFixed(0)} MB`)
  })

  it(`survives ${PACKETS} fuzzed packets (seed ${SEED}) and disconnects the offenders`, async () => {
    const fuzz = new Fuzzer(SEED)
    const token = await h.token('fuzz')
    const connect = (i: number): Buffer => connectPacket(`fuzz/s${i}`, token)
    let sent = 0
    let sessions = 0
    let cutByServer = 0
    const PER_SESSION = 40
    const PARALLEL = 25
    while (sent < PACKETS) {
      const batch: Array<Promise<'server' | 'bound'>> = []
      for (let p = 0; p < PARALLEL && sent < PACKETS; p++) {
        const n = Math.min(PER_SESSION, PACKETS - sent)
        sent += n
        const i = sessions++
        // most sessions authenticate first so the fuzz reaches the post-CONNECT handlers
        const head = fuzz.int(10) < 7 ? [connect(i)] : []
        const chunks = [...head, ...Array.from({ length: n }, () => fuzz.mutated())]
        batch.push(
          rawSocket(h.mqttUrl).then((s) => {
            s.on('error', () => {})
            for (const c of chunks) if (!s.destroyed) s.write(c)
            if (!s.destroyed) s.end()
            return closed(s, 5000)
          }),
        )
      }
      for (const how of await Promise.all(batch)) if (how === 'server') cutByServer += 1
      sample()
      assert.ok(await roundTrips(good, 'good'), `the good client round-trips after ${sent} packets`)
    }
    assert.ok(cutByServer > sessions * 0.9, `the server closed ${cutByServer} of ${sessions} sessions`)
    const refused = h.logs.lines.filter(
      (l) =>
        l.msg === 'client error' ||
        l.msg === 'connection refused by packet guard' ||
        l.msg === 'connection refused before CONNECT completed' ||
        l.msg === 'connect refused',
    )
    assert.ok(refused.length > sessions / 4, `offenders are logged (${refused.length} lines)`)
    // a fresh, well-behaved client can still connect
    const fresh = await connectClient(h.mqttUrl, 'fresh', 'phone')
    assert.ok(await roundTrips(fresh, 'fresh'))
    fresh.end(true)
  })

  it('half-open CONNECTs that never finish are closed after the connect timeout and logged', async () => {
    const sockets = await Promise.all(Array.from({ length: 200 }, () => rawSocket(h.mqttUrl)))
    for (const s of sockets) {
      s.on('error', () => {})
      s.write(Buffer.from([0x10, 0x20, 0x00, 0x04, 0x4d])) // a CONNECT header, then nothing
    }
    const how = await Promise.all(sockets.map((s) => closed(s, 15_000)))
    assert.deepEqual(
      how.filter((x) => x === 'bound'),
      [],
    )
    await h.logs.waitFor((l) => l.msg === 'connection refused before CONNECT completed')
  })

  it('a 256 MB packet header after CONNECT is refused at once, without buffering it', async () => {
    const s = await rawSocket(h.mqttUrl)
    s.on('error', () => {})
    s.write(connectPacket('big/phone', await h.token('big')))
    s.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])) // PUBLISH declaring 268,435,455 bytes
    s.write(Buffer.alloc(64 * 1024, 0x61))
    assert.equal(await closed(s, 10_000), 'server')
    await h.logs.waitFor((l) => l.msg === 'connection refused by packet guard')
  })

  it('a slow reader is disconnected after the drain timeout; the sender is not held up', async () => {
    const s = await rawSocket(h.mqttUrl)
    s.on('error', () => {})
    const acked = new Promise<void>((resolve) => {
      const parser = mqttPacket.parser({ protocolVersion: 4 })
      parser.on('packet', (p: Packet) => {
        if (p.cmd === 'suback') resolve()
      })
      s.on('data', (d: Buffer) => parser.parse(d))
    })
    s.write(connectPacket('slow/phone', await h.token('slow'), 600))
    s.write(
      mqttPacket.generate({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic: 'users/slow/inbox', qos: 0 }],
      } as Packet),
    )
    await acked
    // stops reading: the kernel buffers fill, then Aedes's writes stop draining (a paused
    // socket does not see the server's close either, so the server side is what we watch)
    s.pause()
    s.removeAllListeners('data')
    const cut = () =>
      h.logs.find(
        (l) =>
          l.msg === 'slow reader disconnected: it did not read what it was sent' &&
          l.clientId === 'slow/phone',
      )
    let serverClosed = false
    const sender = await connectClient(h.mqttUrl, 'ops', 'flood', {
      token: await h.token('ops', { role: 'service' }),
    })
    const body = 'x'.repeat(60 * 1024)
    let sent = 0
    for (;;) {
      serverClosed = cut() !== undefined
      if (serverClosed || sent >= 2000) break
      await Promise.all(
        Array.from({ length: 20 }, () =>
          sender.publishAsync('users/slow/inbox', JSON.stringify({ id: `s${sent++}`, body }), { qos: 1 }),
        ),
      )
      sample()
    }
    assert.ok(serverClosed, `disconnected by the server after ${sent} messages`)
    s.destroy()
    assert.ok(await roundTrips(sender, 'ops'), 'the sender was not held up')
    sender.end(true)
    const lines = h.logs.lines.filter((l) => JSON.stringify(l).includes('slow/phone')).length
    assert.ok(lines < 10, `one failing connection is a few log lines, not one per write (${lines})`)
  })

  it('a WebSocket frame over the packet limit closes that connection (1009) and is logged', async () => {
    const ws = new WebSocket(h.wsUrl, 'mqtt')
    await new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    const code = new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)))
    ws.on('error', () => {})
    ws.send(Buffer.alloc(h.herald.config.maxPacketBytes + 1024))
    assert.equal(await code, 1009)
    await h.logs.waitFor((l) => l.msg === 'connection refused: WebSocket frame over the packet limit')
  })
})
