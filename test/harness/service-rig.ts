/**
 * One access node's tracker and a presence service over the in-process event log, with a
 * hand-driven clock and no timers: for tests of the service's own behaviour (liveness, the
 * outbox). The node is `n1`, epoch 1, heartbeats every `HB` ms when the test says so. Its
 * pieces (handTracker, handService, openClient) serve tests with more nodes or another bus.
 */
import type { Client } from 'aedes'
import { pino } from 'pino'
import { ConnectionTracker } from '../../broker/tracker.js'
import { Metrics } from '../../services/core/metrics.js'
import { MemoryEventLog } from '../../services/events/memory-log.js'
import type { ControlCommand, EventSink, EventSource } from '../../services/events/types.js'
import { MemoryPresenceStore } from '../../services/presence/memory-store.js'
import { type PresencePublisher, PresenceService } from '../../services/presence/service.js'
import type { PresenceStore } from '../../services/presence/store.js'
import type { PresenceDoc } from '../../services/presence/types.js'
import { FaultyLog, prng } from './faulty-log.js'

export const HB = 1000
const silent = pino({ level: 'silent' })

export interface ServiceRig {
  tracker: ConnectionTracker
  service: PresenceService
  /** A connection of `<userId>/d` on the node (a fake client the tracker records). */
  open(userId: string): Client
}

/** An access node's tracker whose heartbeats the test sends by hand. */
export function handTracker(
  nodeId: string,
  sink: EventSink,
  clock: () => number,
  epoch = 1,
): ConnectionTracker {
  const tracker = new ConnectionTracker({ nodeId, epoch, sink, logger: silent, heartbeatMs: HB, clock })
  tracker.start()
  tracker.stop() // heartbeats by hand
  return tracker
}

/** A presence service on a hand-driven clock, ticked by the test (heartbeats every HB). */
export function handService(opts: {
  store: PresenceStore
  source: EventSource
  publisher: PresencePublisher
  clock: () => number
}): PresenceService {
  return new PresenceService({
    ...opts,
    logger: silent,
    metrics: new Metrics(),
    epoch: 1,
    heartbeatMs: HB,
    holdMs: 3 * HB + 3000,
    autoTick: false,
  })
}

/** A fake client `<userId>/<deviceId>` opened on a tracker (what the tracker reads of it). */
export function openClient(tracker: ConnectionTracker, userId: string, deviceId = 'd'): Client {
  const clientId = `${userId}/${deviceId}`
  const client = { id: clientId, conn: { destroyed: false } } as unknown as Client
  tracker.open(
    client,
    { userId, role: 'user', iat: 0, exp: undefined },
    { userId, deviceId, clientId },
    { transport: 'tcp', remoteAddress: '127.0.0.1' },
  )
  return client
}

export function serviceRig(opts: {
  store: PresenceStore
  clock: () => number
  presence: (doc: PresenceDoc) => void
  /** What the node does with a command from the service (default: nothing). */
  control?: (cmd: ControlCommand) => void
}): ServiceRig {
  const log = new MemoryEventLog()
  const tracker = handTracker('n1', log.sink('n1'), opts.clock)
  const service = handService({
    store: opts.store,
    source: log.source(),
    publisher: { presence: opts.presence, control: (_nodeId, cmd) => opts.control?.(cmd) },
    clock: opts.clock,
  })
  return { tracker, service, open: (userId) => openClient(tracker, userId) }
}

/**
 * A presence service and its memory store over a FaultyLog without faults, pumped by hand, on
 * a hand-driven clock: what it published, how many marks it asked for and the re-syncs it
 * asked for (`resyncs`, for the test to answer) are kept. Trackers on `bus.sink()` are the
 * nodes. With `bulk`, the publisher also takes documents in bulk, and
 * `batches` keeps the user ids of each batch (their documents are in `docs` too, in order).
 * `store`: what an earlier service left (default a new, empty one).
 */
export async function handBus(opts: { bulk?: boolean; store?: MemoryPresenceStore } = {}) {
  let now = 1_000_000
  const clock = () => now
  const bus = new FaultyLog(prng(1), { drop: 0, duplicate: 0, delay: 0 })
  bus.faults = false
  const docs: PresenceDoc[] = []
  const batches: string[][] = []
  let marksAsked = 0
  const resyncs: Array<Extract<ControlCommand, { cmd: 'resync' }>> = []
  const store = opts.store ?? new MemoryPresenceStore({ takeoverGraceMs: 3000 })
  const service = handService({
    store,
    source: bus.source(),
    publisher: {
      presence: (doc) => docs.push(doc),
      presenceMany: opts.bulk
        ? (list) => {
            batches.push(list.map((d) => d.userId))
            docs.push(...list)
          }
        : undefined,
      control: (_nodeId, cmd) => {
        if (cmd.cmd === 'mark') marksAsked += 1
        if (cmd.cmd === 'resync') resyncs.push(cmd)
      },
    },
    clock,
  })
  await service.start()
  return {
    bus,
    store,
    service,
    docs,
    batches,
    clock,
    marksAsked: () => marksAsked,
    resyncs,
    advance: (ms: number) => {
      now += ms
    },
    /** A node on this bus (epoch 1 unless told). */
    node: (nodeId: string, epoch = 1) => handTracker(nodeId, bus.sink(), clock, epoch),
  }
}
