/**
 * A store that refuses writes (Redis over maxmemory with noeviction, a failed save with
 * stop-writes-on-bgsave-error) or is away silences every node at once: their heartbeats cannot
 * be written to their logs. That silence is the store's, not the nodes': no live node may be
 * declared dead by it — that swept every user of every node offline (node-lost) once Redis took
 * writes again, then back online after each node's rejoin and re-sync. A node that stays silent
 * after the store is back is still declared dead, 3 heartbeats later.
 * Real tracker, service, memory log and store; a hand-driven clock.
 */
import assert from 'node:assert/strict'
import { MemoryPresenceStore } from '../../services/presence/memory-store.js'
import type { PresenceDoc } from '../../services/presence/types.js'
import { HB, serviceRig } from '../harness/service-rig.js'

/** The memory store, refusing writes while `refusing` is on (as Redis under maxmemory). */
class RefusingStore extends MemoryPresenceStore {
  refusing = false
  async writable(): Promise<boolean> {
    return !this.refusing
  }
}

describe('presence service: a store that refuses writes', () => {
  it('declares no node dead while it refuses, nor within 3 heartbeats after; a node silent past that is dead', async () => {
    let now = 1_000_000
    const store = new RefusingStore({ takeoverGraceMs: 3000 })
    const docs: PresenceDoc[] = []
    const { tracker, service, open } = serviceRig({ store, clock: () => now, presence: (d) => docs.push(d) })
    await service.start()
    open('ada')
    await service.drain(5000)
    assert.equal((await store.get('ada')).online, true)

    // Redis refuses writes for 10 heartbeats: the node's heartbeats never reach its log
    store.refusing = true
    for (let i = 0; i < 10; i++) {
      now += HB
      await service.tick()
    }
    assert.equal(service.nodeViews().get('n1')?.dead, false, 'not dead while the store refuses writes')

    // writes are taken again; the node's queued heartbeat is written a moment later
    store.refusing = false
    now += HB
    await service.tick()
    assert.equal(service.nodeViews().get('n1')?.dead, false, 'not dead right after the store is back')
    tracker.heartbeat()
    await service.drain(5000)
    await service.tick()
    assert.equal(service.nodeViews().get('n1')?.dead, false)
    assert.ok(!docs.some((d) => !d.online), 'no offline edge')

    // the node really falls silent: dead after 3 heartbeats, its users offline (node-lost)
    now += 3 * HB + 1
    await service.tick()
    assert.equal(service.nodeViews().get('n1')?.dead, true)
    await service.drain(5000)
    assert.equal((await store.get('ada')).reason, 'node-lost')
    await service.stop()
  })
})
