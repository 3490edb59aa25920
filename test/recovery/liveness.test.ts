/**
 * Node liveness is judged by the node's silence, never by the presence service's own delay:
 * while the service is busy with a long batch (a cold re-sync of 100k connections took longer
 * than 3 heartbeats here), the node's heartbeats wait unread in its log, and the node must not
 * be declared dead — that retired it, made it rejoin under a new epoch and re-send the same
 * snapshot, forever. A node that really stops writing is still declared dead.
 * Real tracker, service, memory log and store; a hand-driven clock; one store call held open.
 */
import assert from 'node:assert/strict'
import { MemoryPresenceStore } from '../../services/presence/memory-store.js'
import type { StoreOp } from '../../services/presence/store.js'
import type { PresenceDoc } from '../../services/presence/types.js'
import { HB, serviceRig } from '../harness/service-rig.js'

/** The memory store, with `apply` held until `release()` while `hold()` is on. */
class HeldStore extends MemoryPresenceStore {
  private applyGate: Promise<void> | undefined
  private openGate: (() => void) | undefined
  applyEntered: Promise<void> = Promise.resolve()
  private enterApply: (() => void) | undefined

  holdApply(): void {
    this.applyGate = new Promise((r) => {
      this.openGate = r
    })
    this.applyEntered = new Promise((r) => {
      this.enterApply = r
    })
  }

  releaseApply(): void {
    this.applyGate = undefined
    this.openGate?.()
  }

  override async apply(ops: StoreOp[]) {
    if (this.applyGate) {
      this.enterApply?.()
      await this.applyGate
    }
    return super.apply(ops)
  }
}

describe('presence service: node liveness', () => {
  it('a node whose heartbeats wait unread behind a long batch is alive; a silent one is dead', async () => {
    let now = 1_000_000
    const store = new HeldStore({ takeoverGraceMs: 3000 })
    const docs: PresenceDoc[] = []
    const { tracker, service, open } = serviceRig({ store, clock: () => now, presence: (d) => docs.push(d) })
    await service.start()
    open('ada')
    await service.drain(5000)
    assert.equal((await store.get('ada')).online, true)

    // the service gets stuck on a batch; meanwhile the node keeps beating, unread
    store.holdApply()
    open('bo')
    await store.applyEntered
    for (let i = 0; i < 5; i++) {
      now += HB
      tracker.heartbeat()
    }
    const ticking = service.tick()
    await new Promise((r) => setImmediate(r)) // the tick's liveness checks have run
    assert.equal(service.nodeViews().get('n1')?.dead, false, 'not dead while its log is unread')
    store.releaseApply()
    await ticking
    await service.drain(5000)
    assert.equal(service.nodeViews().get('n1')?.dead, false)
    assert.equal((await store.get('bo')).online, true)
    assert.ok(!docs.some((d) => !d.online), 'no offline edge')

    // the node really falls silent: dead after 3 heartbeats, its users offline (node-lost)
    now += 3 * HB + 1
    await service.tick()
    assert.equal(service.nodeViews().get('n1')?.dead, true)
    await service.drain(5000)
    assert.equal((await store.get('ada')).online, false)
    assert.equal((await store.get('ada')).reason, 'node-lost')
    await service.stop()
  })
})
