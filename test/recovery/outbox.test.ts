/**
 * A flood of presence documents (a cold re-sync, a dead node: 100k edges) is published in
 * order, a slice per event-loop turn, so the service keeps serving meanwhile; idle() waits for
 * the last one; what is published later comes after. Real tracker, memory log and store.
 */
import assert from 'node:assert/strict'
import type { NodeEvent } from '../../services/events/types.js'
import { MemoryPresenceStore } from '../../services/presence/memory-store.js'
import type { PresenceDoc } from '../../services/presence/types.js'
import { handBus, handTracker, openClient, type ServiceRig, serviceRig } from '../harness/service-rig.js'

describe('presence service: a flood of documents', () => {
  it('publishes 2,500 edges of one snapshot chunk in order across event-loop turns; idle() waits for the last', async () => {
    let now = 1_000_000
    const docs: PresenceDoc[] = []
    let turnsDuringFlood = 0
    const rig: ServiceRig = serviceRig({
      store: new MemoryPresenceStore({ takeoverGraceMs: 3000 }),
      clock: () => now,
      presence: (doc) => {
        // a macrotask queued at the first document runs before the last one is published
        if (docs.length === 0) setImmediate(() => (turnsDuringFlood = docs.length))
        docs.push(doc)
      },
      control: (cmd) => {
        // the whole online set in one chunk: one store call, 2,500 edges at once
        if (cmd.cmd === 'resync') rig.tracker.publishSnapshot(cmd.req, 5000)
        // an offline edge is held until the node's log is read past it: the node answers
        if (cmd.cmd === 'mark') {
          now += 1
          rig.tracker.heartbeat()
        }
      },
    })
    const { tracker, service } = rig
    const users = Array.from({ length: 2500 }, (_v, i) => `flood${i}`)
    const clients = users.map((userId) => rig.open(userId))
    // a service that finds the node already holding its connections: it asks for the set
    await service.discovered('n1')
    await service.start()
    await service.drain(10_000)
    assert.equal(docs.length, users.length, 'idle() resolved with every document published')
    assert.deepEqual(
      docs.map((d) => d.userId),
      users,
      'in the order of the edges',
    )
    assert.ok(docs.every((d) => d.online))
    assert.ok(
      turnsDuringFlood > 0 && turnsDuringFlood < users.length,
      `the event loop turned during the flood (after ${turnsDuringFlood} documents)`,
    )

    now += 10
    ;(clients[7] as unknown as { _disconnected: boolean })._disconnected = true
    tracker.closed(clients[7]!)
    await service.drain(10_000)
    const last = docs.at(-1)
    assert.equal(last?.userId, 'flood7')
    assert.equal(last?.online, false, 'a later edge comes after the flood')
    assert.equal(last?.reason, 'logout')
    await service.stop()
  })
})

describe('presence service: documents in bulk and older nodes', () => {
  it('publishes documents one by one while a live node has not said it reads them in bulk, in bulk once none is left', async () => {
    const hand = await handBus({ bulk: true })
    const n1 = hand.node('n1')
    n1.heartbeat()
    await hand.bus.deliver()
    const connect = async (users: string[]) => {
      for (const userId of users) openClient(n1, userId)
      await hand.bus.deliver()
    }
    await connect(['a1', 'a2', 'a3'])
    assert.deepEqual(hand.batches, [['a1', 'a2', 'a3']], 'every live node reads batches: one batch')

    // a node of an older version: its events are a new node's without the `bulk` it never says
    const sink = hand.bus.sink()
    const older = handTracker(
      'n0',
      {
        append: (ev) => {
          const { bulk: _never, ...said } = ev as NodeEvent & { bulk?: true }
          sink.append(said as NodeEvent)
        },
        flush: () => sink.flush(),
        close: () => sink.close(),
      },
      hand.clock,
    )
    older.heartbeat()
    await hand.bus.deliver()
    await connect(['b1', 'b2', 'b3'])
    assert.deepEqual(hand.batches, [['a1', 'a2', 'a3']], 'no batch while the older node is live')
    assert.deepEqual(
      hand.docs.map((d) => d.userId),
      ['a1', 'a2', 'a3', 'b1', 'b2', 'b3'],
      'each document published on its own, in order',
    )

    older.append({ k: 'bye', n: 'n0', e: 1, s: older.lastSeq, ts: hand.clock() })
    await hand.bus.deliver()
    await connect(['c1', 'c2'])
    assert.deepEqual(hand.batches.at(-1), ['c1', 'c2'], 'in bulk again once the older node is gone')
  })
})
