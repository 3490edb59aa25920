/**
 * A seeded, reproducible MQTT fuzzer: mqtt-packet generates well-formed packets of every type
 * with random fields, then mutations break them (bit flips, truncation, a corrupt Remaining
 * Length, random bytes, splices). The same seed gives the same bytes.
 */
import mqttPacket, { type Packet } from 'mqtt-packet'
import { prng } from '../harness/faulty-log.js'

export class Fuzzer {
  private readonly rand: () => number

  constructor(readonly seed: number) {
    this.rand = prng(seed)
  }

  int(max: number): number {
    return Math.floor(this.rand() * max)
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n)
    for (let i = 0; i < n; i++) out[i] = this.int(256)
    return out
  }

  topic(): string {
    return this.pick([
      'users/fuzz/inbox',
      'users/victim/inbox',
      'users/fuzz/status',
      'users/fuzz/rpc/history',
      'presence/victim',
      '$SYS/herald/claims',
      '#',
      'users/+/inbox',
      '',
      'a/'.repeat(this.int(40)),
      this.bytes(this.int(20)).toString('latin1'),
      'users/fuzz/receipts',
    ])
  }

  payload(): Buffer {
    return this.pick([
      () => Buffer.from(JSON.stringify({ id: `f${this.int(1e6)}`, body: 'x'.repeat(this.int(200)) })),
      () => Buffer.from('{"id":'),
      () => this.bytes(this.int(300)),
      () => Buffer.from(JSON.stringify({ status: 'away', meta: { deep: { deeper: [1, 2, 3] } } })),
      () => Buffer.alloc(0),
    ])()
  }

  /** A well-formed packet of a random type (after CONNECT the interesting ones are frequent). */
  packet(): Packet {
    const messageId = 1 + this.int(65535)
    const qos = this.pick([0, 1, 2] as const)
    switch (this.int(10)) {
      case 0:
        return {
          cmd: 'connect',
          protocolId: this.pick(['MQTT', 'MQIsdp', 'XXXX']),
          protocolVersion: this.pick([3, 4, 5, 9]),
          clean: this.rand() < 0.5,
          clientId: this.pick(['fuzz/dev', '', 'victim/phone', this.bytes(8).toString('hex')]),
          keepalive: this.int(65536),
          username: this.pick(['fuzz', undefined]),
          password: this.rand() < 0.5 ? this.bytes(this.int(64)) : undefined,
          will:
            this.rand() < 0.3
              ? { topic: this.topic(), payload: this.payload(), qos, retain: this.rand() < 0.5 }
              : undefined,
        } as Packet
      case 1:
      case 2:
      case 3:
        return {
          cmd: 'publish',
          topic: this.topic(),
          payload: this.payload(),
          qos,
          retain: this.rand() < 0.2,
          dup: this.rand() < 0.2,
          messageId: qos > 0 ? messageId : undefined,
        } as Packet
      case 4:
        return {
          cmd: 'subscribe',
          messageId,
          subscriptions: Array.from({ length: 1 + this.int(4) }, () => ({ topic: this.topic() || 'x', qos })),
        } as Packet
      case 5:
        return { cmd: 'unsubscribe', messageId, unsubscriptions: [this.topic() || 'x'] } as Packet
      case 6:
        return { cmd: this.pick(['puback', 'pubrec', 'pubrel', 'pubcomp'] as const), messageId } as Packet
      case 7:
        return { cmd: 'pingreq' } as Packet
      case 8:
        return {
          cmd: this.pick(['connack', 'suback', 'unsuback', 'pingresp'] as const),
          messageId,
          returnCode: 0,
          granted: [0],
        } as Packet
      default:
        return { cmd: 'disconnect' } as Packet
    }
  }

  encode(packet: Packet): Buffer {
    try {
      return mqttPacket.generate(packet)
    } catch {
      // mqtt-packet refuses some random field combinations: that is a malformed packet too
      return this.bytes(1 + this.int(16))
    }
  }

  /** A packet's bytes, broken one way or another (or left intact a quarter of the time). */
  mutated(): Buffer {
    const buf = Buffer.from(this.encode(this.packet()))
    switch (this.int(8)) {
      case 0:
      case 1: {
        for (let i = 0, n = 1 + this.int(4); i < n && buf.length > 0; i++) {
          const at = this.int(buf.length)
          buf[at] = buf[at]! ^ (1 << this.int(8))
        }
        return buf
      }
      case 2:
        return buf.subarray(0, this.int(buf.length))
      case 3: {
        // a Remaining Length that lies (longer or shorter than the body, or over 4 bytes)
        const lie = this.pick([
          Buffer.from([0xff, 0xff, 0xff, 0x7f]),
          Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01]),
          Buffer.from([this.int(128)]),
        ])
        return Buffer.concat([buf.subarray(0, 1), lie, buf.subarray(2)])
      }
      case 4: {
        const at = this.int(buf.length + 1)
        return Buffer.concat([buf.subarray(0, at), this.bytes(1 + this.int(32)), buf.subarray(at)])
      }
      case 5:
        return Buffer.concat([buf, this.encode(this.packet())]).subarray(0, this.int(buf.length * 2 + 1))
      default:
        return buf
    }
  }
}
