/**
 * A re-sync asks the node to hold its records: the node sends its count and digest first, and
 * the records only when the presence service's store differs. A warm re-sync of a node with
 * 100k connections then ships one event instead of 25 MB through the log. A verdict lost on
 * the bus (control commands are at most once) must not leave the node's re-sync stuck.
 * Real tracker, service, memory log and store; a hand-driven clock.
 */
import assert from 'node:assert/strict'
import type { ControlCommand } from '../../services/events/types.js'
import { MemoryPresenceStore } from '../../services/presence/memory-store.js'
import type { PresenceDoc } from '../../services/presence/types.js'
import { HB, handBus, openClient, type ServiceRig, serviceRig } from '../harness/service-rig.js'

describe('presence service: held snapshots', () => {
  let now = 1_000_000
  const clock = () => now

  /** A rig whose node answers resync requests and verdicts, recording what it was told. */
  function rig(store: MemoryPresenceStore, drop: (cmd: ControlCommand) => boolean = () => false) {
    const verdicts: boolean[] = []
    const docs: PresenceDoc[] = []
    let r!: ServiceRig
    r = serviceRig({
      store,
      clock,
      presence: (d) => docs.push(d),
      control: (cmd) => {
        if (drop(cmd)) return
        if (cmd.cmd === 'resync') r.tracker.publishSnapshot(cmd.req, 2, { hold: cmd.hold })
        if (cmd.cmd === 'snapshot') {
          verdicts.push(cmd.send)
          r.tracker.releaseSnapshot(cmd.req, cmd.send)
        }
      },
    })
    return { ...r, verdicts, docs }
  }

  /** The store loses a connection behind the service's back (what a digest check catches). */
  async function drift(store: MemoryPresenceStore, userId: string) {
    const [lost] = (await store.get(userId)).connectionsDetail
    await store.apply([
      {
        op: 'disconnect',
        nodeId: 'n1',
        epoch: 1,
        token: lost!.connectionId,
        userId,
        reason: 'connection-lost',
        ts: now,
      },
    ])
    assert.equal((await store.get(userId)).online, false)
  }

  it('records go only when the store differs: a warm re-sync drops them unsent, drift gets them', async () => {
    const store = new MemoryPresenceStore({ takeoverGraceMs: 3000 })
    const { tracker, service, open, verdicts, docs } = rig(store)
    for (const u of ['ada', 'bo', 'cy']) open(u)
    await service.start()
    await service.drain(5000)
    assert.deepEqual(
      (await store.getMany(['ada', 'bo', 'cy'])).map((v) => v.connections),
      [1, 1, 1],
    )

    const edges = docs.length
    await service.discovered('n1') // a re-sync of the same online set (warm)
    await service.drain(5000)
    assert.deepEqual(verdicts, [false], 'warm: the records were dropped unsent')
    assert.equal(tracker.heldSnapshot, undefined, 'nothing left held on the node')
    assert.equal(docs.length, edges, 'no edge from a re-sync that changed nothing')
    assert.equal(service.nodeViews().get('n1')?.mode, 'live')

    await drift(store, 'bo')
    await service.discovered('n1')
    await service.drain(5000)
    assert.deepEqual(verdicts, [false, true], 'the store differed: the records were asked for')
    assert.equal((await store.get('bo')).connections, 1, 'the records repaired the store')
    assert.equal(service.nodeViews().get('n1')?.mode, 'live')
    await service.stop()
  })

  it('a verdict lost on the way: the stalled re-sync is asked for again and completes', async () => {
    const store = new MemoryPresenceStore({ takeoverGraceMs: 3000 })
    let lose = 0
    const { service, open, verdicts } = rig(store, (cmd) => cmd.cmd === 'snapshot' && lose-- > 0)
    open('dee')
    await service.start()
    await service.drain(5000)
    await drift(store, 'dee')
    lose = 1
    await service.discovered('n1')
    await service.drain(5000)
    assert.equal(service.nodeViews().get('n1')?.mode, 'snapshot', 'begun, its records never asked for')
    assert.equal((await store.get('dee')).online, false)

    now += 2 * HB - 1 // within patience (2 s here): still waiting
    await service.tick()
    assert.equal(service.nodeViews().get('n1')?.mode, 'snapshot')
    now += 2 // past it: asked again
    await service.tick()
    await service.drain(5000)
    assert.deepEqual(verdicts, [true], 'the second verdict arrived')
    assert.equal(service.nodeViews().get('n1')?.mode, 'live')
    assert.equal((await store.get('dee')).connections, 1)
    await service.stop()
  })

  it('the node holds one snapshot: a newer request replaces it, a new epoch forgets it', () => {
    const store = new MemoryPresenceStore({ takeoverGraceMs: 3000 })
    const { tracker, open } = rig(store)
    open('eve')
    tracker.publishSnapshot('1.1', 2, { hold: true })
    tracker.publishSnapshot('1.2', 2, { hold: true })
    assert.equal(tracker.releaseSnapshot('1.1', true), false, 'replaced by 1.2')
    assert.equal(tracker.heldSnapshot, '1.2')
    tracker.reepoch(2)
    assert.equal(tracker.releaseSnapshot('1.2', true), false, 'its tokens were of epoch 1')
    assert.equal(tracker.heldSnapshot, undefined)
  })

  it('a status change read while a re-sync is awaited is applied after it: the snapshot carries none', async () => {
    const store = new MemoryPresenceStore({ takeoverGraceMs: 3000 })
    const docs: PresenceDoc[] = []
    const asked: ControlCommand[] = []
    const r = serviceRig({
      store,
      clock,
      presence: (d) => docs.push(d),
      // the node answers when the test says (what a busy node or a slow bus does)
      control: (cmd) => {
        if (cmd.cmd === 'resync') asked.push(cmd)
        if (cmd.cmd === 'snapshot') r.tracker.releaseSnapshot(cmd.req, cmd.send)
      },
    })
    const answer = async () => {
      const req = asked.shift()
      assert.ok(req?.cmd === 'resync')
      r.tracker.publishSnapshot(req.req, 2, { hold: req.hold })
      await r.service.drain(5000)
    }
    const ada = r.open('ada')
    await r.service.start()
    await r.service.drain(5000)
    await r.service.discovered('n1') // a re-sync is asked for
    // while it is awaited: bo connects (skipped: the records will have him), ada sets a status
    r.open('bo')
    r.tracker.status(r.tracker.get(ada)!, 'busy', { note: 'call' })
    await r.service.drain(5000)
    await answer() // the store lacks bo: the records replace the node's
    assert.equal((await store.get('bo')).online, true)
    let view = await store.get('ada')
    assert.equal(view.online, true)
    assert.deepEqual([view.status, view.meta], ['busy', { note: 'call' }])
    assert.equal(docs.at(-1)?.status, 'busy', 'watchers were told')

    await r.service.discovered('n1') // again; the store agrees this time
    r.tracker.status(r.tracker.get(ada)!, 'away', undefined)
    r.tracker.status(r.tracker.get(ada)!, 'dnd', undefined) // the last one wins
    await r.service.drain(5000)
    await answer()
    view = await store.get('ada')
    assert.equal(view.status, 'dnd')
    assert.equal(r.service.nodeViews().get('n1')?.mode, 'live')
  })

  it("a new incarnation read in the same batch as its re-sync: the old one's connections go node-lost, not swept", async () => {
    const hand = await handBus()
    const old = hand.node('n1', 1)
    old.heartbeat()
    openClient(old, 'ada', 'phone')
    await hand.bus.deliver()
    assert.equal((await hand.store.get('ada')).online, true)
    await hand.service.discovered('n1') // a re-sync is asked for (no answer yet)
    const req = hand.resyncs.at(-1)
    assert.ok(req)
    // the node restarted meanwhile, and its hello is not read (the service read from the log's
    // end): the first entry of the new incarnation is its answer, all of it in one batch
    const fresh = hand.node('n1', 2)
    ;(hand.bus as unknown as { queue: unknown[] }).queue.length = 0
    fresh.publishSnapshot(req.req, 100)
    await hand.bus.deliver()
    hand.advance(10)
    fresh.heartbeat() // the new incarnation is read past the end: held edges are released
    await hand.bus.deliver()
    const ada = await hand.store.get('ada')
    assert.equal(ada.online, false)
    assert.equal(ada.reason, 'node-lost', 'its node died: not a connection lost while the node lived')
  })
})
