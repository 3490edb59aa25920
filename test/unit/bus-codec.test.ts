/**
 * The cluster bus's wire format (services/runtime/bus-codec.ts): packets come out as they went
 * in, packets the compact format does not take go as stock mqemitter-redis sends them, and a
 * bus with the codec reads what a stock mqemitter-redis instance publishes (real Redis).
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { pino } from 'pino'
import { createRedis } from '../../services/core/redis.js'
import {
  compactBusCodec,
  decodeBusMessage,
  encodeBusMessage,
  type Msgpack,
  type BusPacket as Packet,
} from '../../services/runtime/bus-codec.js'
import { sharedRedis } from '../harness/shared-redis.js'

const require = createRequire(import.meta.url)
const mqemitterRedis = require('mqemitter-redis') as (opts: object) => Emitter
// msgpack-lite as mqemitter-redis loads it: what a stock node sends and reads
const msgpack = createRequire(require.resolve('mqemitter-redis'))('msgpack-lite') as Msgpack

interface Emitter {
  on(topic: string, fn: (packet: Packet, cb: () => void) => void, done?: () => void): void
  emit(packet: Packet, cb?: (err?: Error) => void): void
  close(cb: () => void): void
}

const envelope = {
  cmd: 'publish',
  brokerId: 'node-a',
  brokerCounter: 123456,
  topic: 'users/bob/inbox',
  payload: Buffer.from(JSON.stringify({ id: 'm-1', from: 'alice', to: 'bob', body: 'héllo ✓' })),
  qos: 1,
  retain: false,
  dup: false,
}

describe('cluster bus codec', () => {
  it('packets of strings, numbers and booleans round-trip with their payload bytes, a Buffer, a string or none', () => {
    for (const msg of [
      envelope,
      { ...envelope, payload: Buffer.alloc(0) },
      { ...envelope, payload: Buffer.alloc(70_000, 7) },
      { ...envelope, topic: '$SYS/a/new/clients', payload: 'u1/phone ✓' },
      { cmd: 'publish', topic: '$SYS/herald/control/all', qos: 0, retain: false, nl: true },
    ]) {
      const wire = encodeBusMessage('id-1', msg)
      assert.equal(wire[0], 0x01, 'the compact format')
      const { id, msg: back } = decodeBusMessage(wire)
      assert.equal(id, 'id-1')
      assert.deepEqual(back, msg)
    }
  })

  it('a field JSON would not carry exactly (MQTT 5 properties, a Buffer, NaN) goes in stock format, read back the same', () => {
    for (const msg of [
      { ...envelope, properties: { correlationData: Buffer.from([1, 2, 3]) } },
      { ...envelope, brokerCounter: Number.NaN },
      { ...envelope, payload: new Uint8Array([1, 2]) },
    ]) {
      const wire = encodeBusMessage('id-2', msg)
      assert.deepEqual(wire, msgpack.encode({ id: 'id-2', msg }), 'as mqemitter-redis encodes it')
      assert.deepEqual(decodeBusMessage(wire), msgpack.decode(wire))
    }
  })

  it('a bus with the codec reads what a stock mqemitter-redis publishes, and its own; garbage is refused and logged', async () => {
    const server = await sharedRedis()
    const logger = pino({ level: 'silent' })
    const conns = ['sub', 'pub', 'stock-sub', 'stock-pub'].map((n) =>
      createRedis(server.url, { name: `bc-${n}`, logger }),
    )
    const [subConn, pubConn, stockSub, stockPub] = conns
    const compact = mqemitterRedis({ subConn, pubConn })
    const stock = mqemitterRedis({ subConn: stockSub, pubConn: stockPub })
    const refused: string[] = []
    try {
      assert.equal(
        compactBusCodec(compact, (err) => refused.push(err.message)),
        true,
      )
      const topic = `bc${process.pid}/inbox`
      const got: Packet[] = []
      let wake: () => void = () => {}
      await new Promise<void>((resolve) =>
        compact.on(
          `${topic}/#`,
          (packet, cb) => {
            got.push(packet)
            wake()
            cb()
          },
          resolve,
        ),
      )
      const next = () => new Promise<void>((resolve) => (wake = resolve))
      let arrived = next()
      stock.emit({ ...envelope, topic: `${topic}/stock` })
      await arrived
      arrived = next()
      compact.emit({ ...envelope, topic: `${topic}/own` })
      await arrived
      assert.deepEqual(
        got.map((p) => [p.topic, String(p.payload)]),
        [
          [`${topic}/stock`, String(envelope.payload)],
          [`${topic}/own`, String(envelope.payload)],
        ],
      )
      // bytes neither format reads: refused with a log line, and the bus goes on
      arrived = next()
      await stockPub!.publish(`${topic}/bad`, Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0x7b]))
      compact.emit({ ...envelope, topic: `${topic}/after` })
      await arrived
      assert.equal(got.at(-1)?.topic, `${topic}/after`)
      // a later format, and msgpack that is not a wrapped packet
      arrived = next()
      await stockPub!.publish(`${topic}/later`, Buffer.from([0x02, 0, 0, 0, 2, 0x7b, 0x7d]))
      await stockPub!.publish(`${topic}/odd`, msgpack.encode({ id: 'x', msg: 7 }))
      await stockPub!.publish(
        `${topic}/topicless`,
        encodeBusMessage('y', { payload: 'p' } as unknown as Packet),
      )
      compact.emit({ ...envelope, topic: `${topic}/last` })
      await arrived
      assert.equal(got.at(-1)?.topic, `${topic}/last`)
      assert.equal(refused.length, 4, refused.join('; '))
      assert.match(refused[1]!, /unknown format \(first byte 2\)/)
    } finally {
      await new Promise<void>((r) => compact.close(r))
      await new Promise<void>((r) => stock.close(r))
    }
  })
})
