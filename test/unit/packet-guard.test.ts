import assert from 'node:assert/strict'
import mqttPacket from 'mqtt-packet'
import { PacketScanner } from '../../broker/transports/packet-guard.js'

describe('packet-size guard (PacketScanner)', () => {
  const publish = (bytes: number) =>
    mqttPacket.generate({
      cmd: 'publish',
      topic: 't',
      payload: Buffer.alloc(bytes),
      qos: 0,
      retain: false,
      dup: false,
    })

  it('lets packets under the limit through, in any chunking', () => {
    const stream = Buffer.concat([publish(10), publish(300), publish(5000), publish(0)])
    for (const size of [1, 2, 3, 7, 64, stream.length]) {
      const scanner = new PacketScanner(6000)
      for (let i = 0; i < stream.length; i += size) {
        assert.deepEqual(scanner.feed(stream.subarray(i, i + size)), { ok: true }, `chunk size ${size}`)
      }
    }
  })

  it('refuses a packet whose header declares more than the limit, before its body arrives', () => {
    const scanner = new PacketScanner(1024)
    assert.equal(scanner.feed(publish(100)).ok, true)
    const verdict = scanner.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])) // ~256 MB declared
    assert.equal(verdict.ok, false)
    assert.match((verdict as { reason: string }).reason, /exceeds the 1024-byte limit/)
  })

  it('refuses a Remaining Length longer than 4 bytes', () => {
    const scanner = new PacketScanner(Number.MAX_SAFE_INTEGER)
    const verdict = scanner.feed(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))
    assert.deepEqual(verdict, { ok: false, reason: 'malformed Remaining Length' })
  })
})
