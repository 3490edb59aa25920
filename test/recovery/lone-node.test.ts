/**
 * A lone node's offline edges are certain when they are applied (its log is the whole truth,
 * in order): published in the batch that reports them, never held for a later mark. With a
 * second live node the same edge is held until every node's log is read past it.
 * Real trackers and presence service over a bus pumped by hand (no faults), the memory store,
 * a hand-driven clock.
 */
import assert from 'node:assert/strict'
import type { Client } from 'aedes'
import type { ConnectionTracker } from '../../broker/tracker.js'
import { handBus, openClient } from '../harness/service-rig.js'

async function rig(nodeIds: string[]) {
  const hand = await handBus()
  const nodes = new Map(nodeIds.map((id) => [id, hand.node(id)]))
  for (const n of nodes.values()) n.heartbeat()
  await hand.bus.deliver()
  return {
    ...hand,
    nodes,
    offline: () => hand.docs.filter((d) => !d.online),
    logout(tracker: ConnectionTracker, client: Client) {
      ;(client as unknown as { _disconnected: boolean })._disconnected = true
      tracker.closed(client)
    },
  }
}

describe('offline edges of a lone node', () => {
  it('are published in the batch that reports them, not held', async () => {
    const r = await rig(['n1'])
    const n1 = r.nodes.get('n1')!
    const ada = openClient(n1, 'ada', 'phone')
    await r.bus.deliver()
    r.advance(10)
    r.logout(n1, ada) // the last entry of n1's log: nothing of n1 reads past it
    await r.bus.deliver()
    assert.deepEqual(
      r.offline().map((d) => [d.userId, d.reason]),
      [['ada', 'logout']],
    )
    assert.equal(r.marksAsked(), 0)
    assert.equal((await r.store.duePending(Number.MAX_SAFE_INTEGER)).length, 0)
    const view = await r.store.get('ada')
    assert.equal(view.online, false)
  })

  it('are held when the batch brings another node back (a new incarnation read after them)', async () => {
    const r = await rig(['n1', 'n2'])
    const n1 = r.nodes.get('n1')!
    const ada = openClient(n1, 'ada', 'phone')
    r.nodes.get('n2')!.append({ k: 'bye', n: 'n2', e: 1, s: r.nodes.get('n2')!.lastSeq, ts: 1 })
    await r.bus.deliver()
    // n1 is the only live node now; n2 comes back (epoch 2) and ada connects there first
    r.advance(10)
    const n2 = r.node('n2', 2)
    openClient(n2, 'ada', 'tablet')
    r.advance(10)
    r.logout(n1, ada)
    await r.bus.deliverNodeFirst('n1') // n1's logout ahead of n2's earlier entries
    r.advance(10)
    n1.heartbeat()
    n2.heartbeat()
    await r.bus.deliver()
    assert.deepEqual(r.offline(), [], 'ada was online on n2 before her phone logged out')
    assert.equal((await r.store.get('ada')).online, true)
  })

  it('are held while another node is live, until every log is read past them', async () => {
    const r = await rig(['n1', 'n2'])
    const n1 = r.nodes.get('n1')!
    const ada = openClient(n1, 'ada', 'phone')
    await r.bus.deliver()
    r.advance(10)
    r.logout(n1, ada)
    await r.bus.deliver()
    assert.deepEqual(r.offline(), [], 'held: n2 may still hold an earlier connection of ada')
    assert.equal(r.marksAsked(), 1)
    r.advance(10)
    r.nodes.get('n2')!.heartbeat() // n2's answer to the mark: its log is read past the edge
    await r.bus.deliver()
    assert.deepEqual(r.offline(), [], "held: n1's own next entry is not read yet")
    n1.heartbeat()
    await r.bus.deliver()
    assert.deepEqual(
      r.offline().map((d) => [d.userId, d.reason]),
      [['ada', 'logout']],
    )
  })

  it('are not held for a node that had shut down before the service started (its log is still there)', async () => {
    const hand = await handBus()
    // a previous service saw n2 shut down: the store holds it retired; its log remains
    await hand.store.noteHeartbeat('n2', 1, 0, 1)
    await hand.store.retireNode('n2', 2, 'node-shutdown', 2)
    const later = await handBus({ store: hand.store })
    await later.service.discovered('n2') // as the reader finds its log
    const n1 = later.node('n1')
    const ada = openClient(n1, 'ada', 'phone')
    await later.bus.deliver()
    later.advance(10)
    ;(ada as unknown as { _disconnected: boolean })._disconnected = true
    n1.closed(ada)
    await later.bus.deliver()
    assert.deepEqual(
      later.docs.filter((d) => !d.online).map((d) => [d.userId, d.reason]),
      [['ada', 'logout']],
      'n1 is the only node that can hold ada',
    )
  })
})
