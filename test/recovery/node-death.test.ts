/**
 * A dead node's users, with another node live: one pass when that node's log can be read past
 * the death in time, the held path when it cannot — and in both, a user whose reconnection on
 * the live node was still unread when the death was declared never shows offline.
 * Real trackers and presence service over a bus pumped by hand (no faults), the memory store,
 * a hand-driven clock.
 */
import assert from 'node:assert/strict'
import type { Client } from 'aedes'
import { pino } from 'pino'
import { ConnectionTracker } from '../../broker/tracker.js'
import { Metrics } from '../../services/core/metrics.js'
import { MemoryPresenceStore } from '../../services/presence/memory-store.js'
import { PresenceService } from '../../services/presence/service.js'
import type { PresenceDoc } from '../../services/presence/types.js'
import { FaultyLog, prng } from '../harness/faulty-log.js'

const HB = 1000
const silent = pino({ level: 'silent' })

async function twoNodes() {
  let now = 1_000_000
  const bus = new FaultyLog(prng(1), { drop: 0, duplicate: 0, delay: 0 })
  bus.faults = false
  const docs: PresenceDoc[] = []
  let marksAsked = 0
  const node = (nodeId: string) => {
    const t = new ConnectionTracker({
      nodeId,
      epoch: 1,
      sink: bus.sink(),
      logger: silent,
      heartbeatMs: HB,
      clock: () => now,
    })
    t.start()
    t.stop() // heartbeats by hand
    return t
  }
  const n1 = node('n1')
  const n2 = node('n2')
  const store = new MemoryPresenceStore({ takeoverGraceMs: 3000 })
  const service = new PresenceService({
    store,
    source: bus.source(),
    publisher: {
      presence: (doc) => docs.push(doc),
      control: (_nodeId, cmd) => {
        if (cmd.cmd === 'mark') marksAsked += 1
      },
    },
    logger: silent,
    metrics: new Metrics(),
    epoch: 1,
    heartbeatMs: HB,
    holdMs: 3 * HB + 3000,
    autoTick: false,
    clock: () => now,
  })
  await service.start()
  const open = (t: ConnectionTracker, userId: string, deviceId: string) => {
    const client = { id: `${userId}/${deviceId}`, conn: { destroyed: false } } as unknown as Client
    t.open(
      client,
      { userId, role: 'user', iat: 0, exp: undefined },
      { userId, deviceId, clientId: client.id },
      { transport: 'tcp', remoteAddress: '127.0.0.1' },
    )
  }
  return {
    n1,
    n2,
    store,
    service,
    bus,
    docs,
    open,
    marksAsked: () => marksAsked,
    advance: (ms: number) => {
      now += ms
    },
    offline: () => docs.filter((d) => !d.online).map((d) => d.userId),
  }
}

/** n1 holds ada, bo and cy; n2 holds dee; then n1 falls silent while n2 keeps beating. */
async function n1Silent(rig: Awaited<ReturnType<typeof twoNodes>>) {
  for (const u of ['ada', 'bo', 'cy']) rig.open(rig.n1, u, 'phone')
  rig.open(rig.n2, 'dee', 'phone')
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
  rig.open(rig.n2, 'ada', 'laptop')
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
    await rig.bus.deliver()
    await rig.service.drain(5000)
    assert.deepEqual(rig.offline().sort(), ['bo', 'cy'])
    assert.ok(rig.docs.filter((d) => !d.online).every((d) => d.reason === 'node-lost'))
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
    await rig.bus.deliver()
    await rig.service.drain(5000)
    assert.deepEqual(rig.offline().sort(), ['bo', 'cy'])
    assert.ok(rig.docs.filter((d) => !d.online).every((d) => d.reason === 'node-lost'))
    assert.equal((await rig.store.get('ada')).online, true)
    await rig.service.stop()
  })
})
