/**
 * A user's status is last write wins per user (CONTRACT.md, users/<userId>/status), by the time
 * the node received the change (docs/contract.md amendment 13). Each node's log is ordered;
 * the service reads several, and a user's changes made on two nodes reach the store in the
 * order it reads them: a reader handing over one stream ahead of another (a restarted service
 * replaying each log from where the store was right), or a node's re-sync awaited, whose
 * status changes are applied after it. The older change must not win.
 * Real trackers and presence service over a bus pumped by hand (no faults), the memory store,
 * a hand-driven clock. (Both stores refuse an older change alike: test/store/contract.ts.)
 */
import assert from 'node:assert/strict'
import type { Client } from 'aedes'
import type { ConnectionTracker } from '../../broker/tracker.js'
import { handBus, handTracker, openClient } from '../harness/service-rig.js'

async function rig() {
  const hand = await handBus()
  const [n1, n2] = [hand.node('n1'), hand.node('n2')]
  n1.heartbeat()
  n2.heartbeat()
  await hand.bus.deliver()
  return {
    ...hand,
    n1,
    n2,
    /** The status documents published for a user, in order. */
    statuses: (userId: string) =>
      hand.docs.filter((d) => d.userId === userId && d.online).map((d) => d.status),
    set(tracker: ConnectionTracker, client: Client, status: string) {
      tracker.status(tracker.get(client)!, status, undefined)
    },
  }
}

describe('status: last write wins by the time the node received it', () => {
  it("two nodes' changes read in the wrong order: the newer one stays", async () => {
    const r = await rig()
    const [phone, laptop] = [openClient(r.n1, 'u3', 'phone'), openClient(r.n2, 'u3', 'laptop')]
    await r.bus.deliver()
    r.advance(10)
    r.set(r.n1, phone, 'away')
    r.advance(30)
    r.set(r.n2, laptop, 'busy')
    await r.bus.deliverNodeFirst('n2') // n2's change read ahead of n1's older one
    assert.equal((await r.store.get('u3')).status, 'busy')
    assert.deepEqual(r.statuses('u3'), [undefined, 'busy'], 'watchers never saw the older change win')
  })

  it("a change read while its node's re-sync was awaited does not undo another node's newer one", async () => {
    const r = await rig()
    const [phone, laptop] = [openClient(r.n1, 'u3', 'phone'), openClient(r.n2, 'u3', 'laptop')]
    await r.bus.deliver()
    await r.service.discovered('n1') // n1 is re-synced: its status changes wait for it
    r.advance(10)
    r.set(r.n1, phone, 'away')
    r.advance(30)
    r.set(r.n2, laptop, 'busy')
    await r.bus.deliver() // in the order made: n2's change is applied, n1's kept for after
    assert.equal((await r.store.get('u3')).status, 'busy')
    const req = r.resyncs.at(-1)!
    r.n1.publishSnapshot(req.req, 2, { hold: req.hold }) // the store agrees: n1's change now
    await r.bus.deliver()
    assert.equal(r.service.nodeViews().get('n1')?.mode, 'live')
    assert.equal((await r.store.get('u3')).status, 'busy')
    assert.deepEqual(r.statuses('u3'), [undefined, 'busy'])
  })

  it("a node whose clock steps back: its later change still wins (it stamps them in its log's order)", async () => {
    const r = await rig()
    let clock = 2_000_000
    const n3 = handTracker('n3', r.bus.sink(), () => clock)
    const tab = openClient(n3, 'u4', 'tab')
    await r.bus.deliver()
    r.set(n3, tab, 'away')
    clock -= 500 // NTP stepped the node's clock back
    r.set(n3, tab, 'busy')
    await r.bus.deliver()
    assert.equal((await r.store.get('u4')).status, 'busy')
  })
})
