/**
 * The cluster bus and Aedes's Redis persistence encode with msgpack-lite; Herald makes its
 * encoder start in pooled buffers (services/runtime/msgpack-buffers.ts). The bytes must not
 * change — nodes with and without it share the bus and the stored packets — and no output may
 * be overwritten by a later encode that shares its pool slab.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { pooledMsgpackBuffers } from '../../services/runtime/msgpack-buffers.js'

const require = createRequire(createRequire(import.meta.url).resolve('mqemitter-redis'))
const msgpack = require('msgpack-lite') as { encode(v: unknown): Buffer; decode(b: Buffer): unknown }

const presence = {
  cmd: 'publish',
  brokerId: 'presence-p1',
  brokerCounter: 123456,
  topic: 'presence/u1',
  payload: Buffer.from(
    JSON.stringify({ userId: 'u1', online: true, since: 1764590000000, lastSeen: 1764590000000 }),
  ),
  qos: 0,
  retain: true,
  dup: false,
  messageId: undefined,
}
const large = { ...presence, topic: 'users/u2/inbox', payload: Buffer.alloc(3000, 7), qos: 1, messageId: 42 }

// msgpack-lite 0.1.27 as it comes (recorded before the change)
const PRESENCE_HEX =
  '89a3636d64a77075626c697368a862726f6b65724964ab70726573656e63652d7031ad62726f6b6572436f756e746572ce0001e240a5746f706963ab70726573656e63652f7531a77061796c6f6164c44c7b22757365724964223a227531222c226f6e6c696e65223a747275652c2273696e6365223a313736343539303030303030302c226c6173745365656e223a313736343539303030303030307da3716f7300a672657461696ec3a3647570c2a96d6573736167654964c0'
const LARGE_SHA256 = '64920c9303cf80e9d11cdf719a4eedbd28ab64fb28a4755f32687ea5bab23ef0'

describe('msgpack-lite in pooled buffers', () => {
  before(() => {
    assert.equal(pooledMsgpackBuffers(), 2, "both plugins' copies (one, deduplicated) are pooled")
  })

  it('encodes the same bytes as msgpack-lite does unchanged, small and past the first buffer', () => {
    assert.equal(msgpack.encode(presence).toString('hex'), PRESENCE_HEX)
    const big = msgpack.encode(large)
    assert.equal(big.length, 3114)
    assert.equal(createHash('sha256').update(big).digest('hex'), LARGE_SHA256)
  })

  it('outputs stay intact while later encodes take the rest of the pool', () => {
    const outputs = Array.from({ length: 200 }, (_v, i) => ({
      packet: { ...presence, brokerCounter: i, topic: `presence/u${i}` },
      bytes: Buffer.alloc(0) as Buffer,
    }))
    for (const o of outputs) o.bytes = msgpack.encode(o.packet)
    for (const o of outputs) {
      const back = msgpack.decode(o.bytes) as typeof presence
      assert.equal(back.topic, o.packet.topic)
      assert.equal(back.brokerCounter, o.packet.brokerCounter)
      assert.deepEqual(back.payload, o.packet.payload)
    }
  })
})
