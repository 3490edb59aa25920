/**
 * A flood of presence documents (a cold re-sync, a dead node: 100k edges) is published in
 * order, a slice per event-loop turn, so the service keeps serving meanwhile; idle() waits for
 * the last one; what is published later comes after. Real tracker, memory log and store.
 */
import assert from 'node:assert/strict'
import type { Client } from 'aedes'
import { pino } from 'pino'
import { ConnectionTracker } from '../../broker/tracker.js'
import { Metrics } from '../../services/core/metrics.js'
import { MemoryEventLog } from '../../services/events/memory-log.js'
import { MemoryPresenceStore } from '../../services/presence/memory-store.js'
import { PresenceService } from '../../services/presence/service.js'
import type { PresenceDoc } from '../../services/presence/types.js'

describe('presence service: a flood of documents', () => {
  it('publishes 2,500 edges of one snapshot chunk in order across event-loop turns; idle() waits for the last', async () => {
    let now = 1_000_000
    const silent = pino({ level: 'silent' })
    const log = new MemoryEventLog()
    const tracker = new ConnectionTracker({
      nodeId: 'n1',
      epoch: 1,
      sink: log.sink('n1'),
      logger: silent,
      heartbeatMs: 1000,
      clock: () => now,
    })
    tracker.start()
    tracker.stop()
    const docs: PresenceDoc[] = []
    let turnsDuringFlood = 0
    const service = new PresenceService({
      store: new MemoryPresenceStore({ takeoverGraceMs: 3000 }),
      source: log.source(),
      publisher: {
        presence: (doc) => {
          // a macrotask queued at the first document runs before the last one is published
          if (docs.length === 0) setImmediate(() => (turnsDuringFlood = docs.length))
          docs.push(doc)
        },
        control: (_nodeId, cmd) => {
          // the whole online set in one chunk: one store call, 2,500 edges at once
          if (cmd.cmd === 'resync') tracker.publishSnapshot(cmd.req, 5000)
          // an offline edge is held until the node's log is read past it: the node answers
          if (cmd.cmd === 'mark') {
            now += 1
            tracker.heartbeat()
          }
        },
      },
      logger: silent,
      metrics: new Metrics(),
      epoch: 1,
      heartbeatMs: 1000,
      holdMs: 6000,
      autoTick: false,
      clock: () => now,
    })
    const users = Array.from({ length: 2500 }, (_v, i) => `flood${i}`)
    const clients = users.map((userId) => {
      const client = { id: `${userId}/d`, conn: { destroyed: false } } as unknown as Client
      tracker.open(
        client,
        { userId, role: 'user', iat: 0, exp: undefined },
        { userId, deviceId: 'd', clientId: `${userId}/d` },
        { transport: 'tcp', remoteAddress: '127.0.0.1' },
      )
      return client
    })
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
