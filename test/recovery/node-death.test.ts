/**
 * A dead node's users, with another node live: one pass when that node's log can be read past
 * the death in time, the held path when it cannot — and in both, a user whose reconnection on
 * the live node was still unread when the death was declared never shows offline.
 * Real trackers and presence service over a bus pumped by hand (no faults), the memory store,
 * a hand-driven clock.
 */
import assert from 'node:assert/strict'
import { HB, handBus, openClient } from '../harness/service-rig.js'

async function twoNodes() {
  const hand = await handBus()
  const offline = () => hand.docs.filter((d) => !d.online)
  const { bus, service } = hand
  return {
    ...hand,
    n1: hand.node('n1'),
    n2: hand.node('n2'),
    offline: () => offline().map((d) => d.userId),
    /** What watchers saw go offline, delivered and published: n1's users who stayed away. */
    async assertLost(userIds: string[]) {
      await bus.deliver()
      await service.drain(5000)
      assert.deepEqual(
        offline()
          .map((d) => d.userId)
          .sort(),
        userIds,
      )
      assert.ok(offline().every((d) => d.reason === 'node-lost'))
    },
  }
}

/** n1 holds ada, bo and cy; n2 holds dee; then n1 falls silent while n2 keeps beating. */
async function n1Silent(rig: Awaited<ReturnType<typeof twoNodes>>) {
  for (const u of ['ada', 'bo', 'cy']) openClient(rig.n1, u, 'phone')
  openClient(rig.n2, 'dee', 'phone')
  rig.n1.heartbeat()
  rig.n2.heartbeat()
  await rig.bus.deliver()
  assert.deepEqual(
    (await rig.store.getMany(['ada', 'bo', 'cy', 'dee'])).map((v) => v.online),
    [true, true, true, true],
  )
  for (let i = 0; i < 3; i++) {
    rig.advance(HB)
    rig.n2.heartbeat()
    await rig.bus.deliver()
    await rig.service.tick()
  }
  assert.equal(rig.service.nodeViews().get('n1')?.dead, false)
  // ada moves to n2; the connect waits unread in n2's log when n1 is declared dead
  openClient(rig.n2, 'ada', 'laptop')
  rig.advance(2)
  await rig.service.tick()
  assert.equal(rig.service.nodeViews().get('n1')?.dead, true)
  await rig.service.idle()
  assert.deepEqual(
    rig.offline(),
    [],
    'nothing goes offline before the live node has been read past the death',
  )
}

describe('presence service: a dead node while another lives', () => {
  it('once the live node has answered the mark, the sweep publishes the offline edges itself, nothing held', async () => {
    const rig = await twoNodes()
    await n1Silent(rig)
    assert.ok(rig.marksAsked() >= 1)
    // the sweep waits for n2's answer instead of holding every user of n1 for a second pass
    assert.deepEqual(await rig.store.duePending(Number.MAX_SAFE_INTEGER), [], 'nobody held')
    // n2 answers the mark (n1 is dead); the answer comes after ada's connect in n2's log
    rig.advance(1)
    rig.n2.heartbeat()
    await rig.assertLost(['bo', 'cy'])
    assert.deepEqual(await rig.store.duePending(Number.MAX_SAFE_INTEGER), [], 'no user held')
    const ada = await rig.store.get('ada')
    assert.equal(ada.online, true)
    assert.deepEqual(ada.devices, ['laptop'])
    await rig.service.stop()
  })

  it('a live node that does not answer within a heartbeat: the users are held, then settled once it is read', async () => {
    const rig = await twoNodes()
    await n1Silent(rig)
    await rig.bus.deliver() // ada's connect is read, but n2 wrote nothing since the death
    rig.advance(HB)
    await rig.service.tick()
    await rig.service.drain(5000)
    assert.deepEqual(rig.offline(), [], 'held, not published')
    assert.deepEqual((await rig.store.duePending(Number.MAX_SAFE_INTEGER)).sort(), ['bo', 'cy'])
    rig.advance(1)
    rig.n2.heartbeat()
    await rig.assertLost(['bo', 'cy'])
    assert.equal((await rig.store.get('ada')).online, true)
    await rig.service.stop()
  })
})
