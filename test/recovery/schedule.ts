/**
 * One seeded schedule of the fencing property test (fencing-schedules.test.ts).
 *
 * Fencing and gap repair against every bad ordering, not only the ones a lucky run produces:
 * 1,000 seeded random schedules of connects, takeovers (same node and across nodes),
 * disconnects and status changes on two access nodes, with the real ConnectionTracker and
 * PresenceService, and a bus that drops, duplicates, delays and reorders events between them.
 * Every schedule ends with the store equal to the truth, connection by connection, and no
 * watcher ever saw an offline edge for a user who never went offline.
 */
import type { Client } from 'aedes'
import type { ConnectionTracker, TrackedConn } from '../../broker/tracker.js'
import type { Principal } from '../../services/core/auth.js'
import { MemoryPresenceStore } from '../../services/presence/memory-store.js'
import type { PresenceDoc } from '../../services/presence/types.js'
import { FaultyLog, prng } from '../harness/faulty-log.js'
import { HB, handService, handTracker } from '../harness/service-rig.js'

const STEPS = 80
const NODES = ['n1', 'n2'] as const
const USERS = ['u0', 'u1', 'u2', 'u3', 'u4']
const DEVICES = ['d0', 'd1', 'd2']
/** The takeover grace (the service rig holds edges for 3 heartbeats + this). */
const GRACE = 3000

interface FakeClient {
  id: string
  conn: { destroyed: boolean }
  _disconnected: boolean
  node: string
}

export async function runSchedule(seed: number, trace?: (line: string) => void): Promise<string | undefined> {
  const random = prng(seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const bus = new FaultyLog(random, { drop: 0.05, duplicate: 0.05, delay: 0.1 })
  let now = 1_000_000
  const docs: PresenceDoc[] = []
  const trackers = new Map<string, ConnectionTracker>()
  for (const nodeId of NODES)
    trackers.set(
      nodeId,
      handTracker(nodeId, bus.sink(), () => now),
    )
  const store = new MemoryPresenceStore({ takeoverGraceMs: GRACE })
  const service = handService({
    store,
    source: bus.source(),
    publisher: {
      presence: (doc) => {
        trace?.(`  doc ${doc.userId} online=${doc.online} ${doc.reason ?? ''}`)
        docs.push(doc)
      },
      control: (nodeId, cmd) => {
        if (cmd.cmd === 'resync') trackers.get(nodeId)?.publishSnapshot(cmd.req, 3, { hold: cmd.hold })
        if (cmd.cmd === 'snapshot') trackers.get(nodeId)?.releaseSnapshot(cmd.req, cmd.send)
        if (cmd.cmd === 'mark') for (const t of trackers.values()) t.heartbeat()
      },
    },
    clock: () => now,
  })
  await service.start()

  const live: FakeClient[] = []
  const wentOffline = new Set<string>()
  const liveOf = (userId: string) => live.filter((c) => c.id.startsWith(`${userId}/`))
  const end = (c: FakeClient, how: 'logout' | 'lost' | 'takeover', by?: string) => {
    const tracker = trackers.get(c.node)!
    if (how === 'logout') c._disconnected = true
    if (how === 'takeover') tracker.markEnding(c as unknown as Client, 'takeover', by)
    trace?.(`end ${c.id}@${c.node} ${how} seq→${tracker.lastSeq + 1}`)
    tracker.closed(c as unknown as Client)
    live.splice(live.indexOf(c), 1)
    const userId = c.id.split('/')[0]!
    if (how !== 'takeover' && liveOf(userId).length === 0) wentOffline.add(userId)
  }
  const principal = (userId: string): Principal => ({ userId, role: 'user', iat: 0, exp: undefined })

  for (let step = 0; step < STEPS; step++) {
    now += 10
    const r = random()
    if (r < 0.35) {
      const userId = pick(USERS)
      const deviceId = pick(DEVICES)
      const nodeId = pick(NODES)
      const client: FakeClient = {
        id: `${userId}/${deviceId}`,
        conn: { destroyed: false },
        _disconnected: false,
        node: nodeId,
      }
      const previous = live.filter((c) => c.id === client.id)
      trackers.get(nodeId)!.open(
        client as unknown as Client,
        principal(userId),
        { userId, deviceId, clientId: client.id },
        {
          transport: 'tcp',
          remoteAddress: '127.0.0.1',
        },
      )
      live.push(client)
      trace?.(`open ${client.id}@${nodeId} seq=${trackers.get(nodeId)!.lastSeq}`)
      // [MQTT-3.1.4-2] the older connection with this clientId is taken over (here or elsewhere)
      for (const old of previous) end(old, 'takeover', nodeId)
    } else if (r < 0.6 && live.length > 0) {
      end(pick(live), random() < 0.5 ? 'logout' : 'lost')
    } else if (r < 0.7 && live.length > 0) {
      const c = pick(live)
      const conn = trackers.get(c.node)!.get(c as unknown as Client) as TrackedConn
      trackers.get(c.node)!.status(conn, pick(['away', 'busy', 'available']), undefined)
    } else if (r < 0.9) {
      trace?.('deliver')
      await bus.deliver()
    } else if (r < 0.95) {
      trackers.get(pick(NODES))!.heartbeat()
    } else {
      now += 100
      await service.tick()
    }
  }

  // quiet network: everything held is delivered, heartbeats reveal any lost tail, resyncs heal
  bus.faults = false
  for (let round = 0; round < 12; round++) {
    await bus.deliver()
    for (const t of trackers.values()) t.heartbeat()
    await bus.deliver()
    now += 200
    await service.tick()
  }
  // past the takeover grace, still heartbeating (no node may look dead)
  for (let t = 0; t <= 3 * HB + GRACE + 500; t += 250) {
    now += 250
    for (const tr of trackers.values()) tr.heartbeat()
    await bus.deliver()
    await service.tick()
  }

  for (const userId of USERS) {
    const truth = liveOf(userId)
    const view = await store.get(userId)
    if (view.online !== truth.length > 0) {
      return `seed ${seed}: ${userId} online=${view.online}, truth ${truth.length} connections (${JSON.stringify(bus.counts)})`
    }
    if (view.connections !== truth.length) {
      return `seed ${seed}: ${userId} has ${view.connections} connections, truth ${truth.length}`
    }
    if (!wentOffline.has(userId) && docs.some((d) => d.userId === userId && !d.online)) {
      return `seed ${seed}: a watcher saw ${userId} go offline, who never did`
    }
  }
  for (const [nodeId, tracker] of trackers) {
    const expected = tracker
      .snapshot()
      .conns.map((c) => c.token)
      .sort()
    const stored = (await store.nodeTokens(nodeId)).sort()
    if (JSON.stringify(expected) !== JSON.stringify(stored)) {
      return `seed ${seed}: node ${nodeId} store ${JSON.stringify(stored)} != truth ${JSON.stringify(expected)}`
    }
  }
  await service.stop()
  return undefined
}
