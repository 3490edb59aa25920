/**
 * The memory store's offline-queue cap (boundedMemoryPersistence) over a real aedes-persistence:
 * the cap bounds what waits in the queue during each absence, not what was ever let in.
 */
import assert from 'node:assert/strict'
import aedesPersistenceModule from 'aedes-persistence'
import { boundedMemoryPersistence } from '../../broker/session-storage.js'
import { MemorySessionRegistry } from '../../broker/sessions.js'

interface QueuedPacket {
  topic: string
  brokerId: string
  brokerCounter: number
  messageId?: number
}
interface Persistence {
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: QueuedPacket): Promise<void>
  outgoingStream(client: { id: string }): AsyncIterable<QueuedPacket>
  outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<void>
  outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<unknown>
}

const aedesPersistence = aedesPersistenceModule as unknown as () => Persistence

function rig(max: number) {
  const registry = new MemorySessionRegistry()
  const p = boundedMemoryPersistence(aedesPersistence(), registry, max).persistence as Persistence
  let counter = 0
  return {
    registry,
    /** What a publish to these sessions does: one enqueue of a new packet. */
    send: (topic: string, ...clientIds: string[]) => {
      counter += 1
      return p.outgoingEnqueueCombi(
        clientIds.map((clientId) => ({ clientId })),
        { topic, brokerId: 'b', brokerCounter: counter },
      )
    },
    queue: async (clientId: string) => {
      const topics: string[] = []
      for await (const packet of p.outgoingStream({ id: clientId })) topics.push(packet.topic)
      return topics
    },
    /** What Aedes does for a device that came back: sends each queued packet, gets its PUBACK. */
    deliverAll: async (clientId: string) => {
      const packets: QueuedPacket[] = []
      for await (const packet of p.outgoingStream({ id: clientId })) packets.push(packet)
      for (const [i, packet] of packets.entries()) {
        await p.outgoingUpdate({ id: clientId }, { ...packet, messageId: i + 1 })
        await p.outgoingClearMessageId({ id: clientId }, { messageId: i + 1 })
      }
    },
  }
}

describe('bounded memory queues (boundedMemoryPersistence)', () => {
  it('each absence may queue up to the cap: a device that drained its queue starts from none', async () => {
    const r = rig(3)
    await r.registry.idle('bob/phone', 1)
    await r.send('a1-1', 'bob/phone')
    await r.send('a1-2', 'bob/phone')
    assert.deepEqual(await r.queue('bob/phone'), ['a1-1', 'a1-2'])
    // back, everything delivered, away again with no message in between
    await r.registry.active('bob/phone')
    await r.deliverAll('bob/phone')
    await r.registry.idle('bob/phone', 2)
    for (const topic of ['a2-1', 'a2-2', 'a2-3', 'a2-4']) await r.send(topic, 'bob/phone')
    assert.deepEqual(await r.queue('bob/phone'), ['a2-1', 'a2-2', 'a2-3'])
  })

  it('what a device left unacknowledged still counts against the cap of its next absence', async () => {
    const r = rig(3)
    await r.registry.idle('bob/phone', 1)
    await r.send('a1-1', 'bob/phone')
    await r.send('a1-2', 'bob/phone')
    // back and gone before acknowledging anything: both still wait
    await r.registry.active('bob/phone')
    await r.registry.idle('bob/phone', 2)
    await r.send('a2-1', 'bob/phone')
    await r.send('a2-2', 'bob/phone')
    assert.deepEqual(await r.queue('bob/phone'), ['a1-1', 'a1-2', 'a2-1'])
  })

  it('a connected session takes every packet, and enqueues keep their order while a queue is read', async () => {
    const r = rig(2)
    await r.registry.idle('bob/phone', 1)
    // not awaited one by one: the first reads bob's queue, the others must wait their turn
    await Promise.all([
      r.send('m-1', 'bob/phone', 'amy/phone'),
      r.send('m-2', 'amy/phone'),
      r.send('m-3', 'bob/phone', 'amy/phone'),
      r.send('m-4', 'bob/phone', 'amy/phone'),
    ])
    assert.deepEqual(await r.queue('bob/phone'), ['m-1', 'm-3'])
    assert.deepEqual(await r.queue('amy/phone'), ['m-1', 'm-2', 'm-3', 'm-4'], 'amy is connected')
  })
})
