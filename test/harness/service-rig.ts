/**
 * One access node's tracker and a presence service over the in-process event log, with a
 * hand-driven clock and no timers: for tests of the service's own behaviour (liveness, the
 * outbox). The node is `n1`, epoch 1, heartbeats every `HB` ms when the test says so.
 */
import type { Client } from 'aedes'
import { pino } from 'pino'
import { ConnectionTracker } from '../../broker/tracker.js'
import { Metrics } from '../../services/core/metrics.js'
import { MemoryEventLog } from '../../services/events/memory-log.js'
import type { ControlCommand } from '../../services/events/types.js'
import { PresenceService } from '../../services/presence/service.js'
import type { PresenceStore } from '../../services/presence/store.js'
import type { PresenceDoc } from '../../services/presence/types.js'

export const HB = 1000

export interface ServiceRig {
  tracker: ConnectionTracker
  service: PresenceService
  /** A connection of `<userId>/d` on the node (a fake client the tracker records). */
  open(userId: string): Client
}

export function serviceRig(opts: {
  store: PresenceStore
  clock: () => number
  presence: (doc: PresenceDoc) => void
  /** What the node does with a command from the service (default: nothing). */
  control?: (cmd: ControlCommand) => void
}): ServiceRig {
  const silent = pino({ level: 'silent' })
  const log = new MemoryEventLog()
  const tracker = new ConnectionTracker({
    nodeId: 'n1',
    epoch: 1,
    sink: log.sink('n1'),
    logger: silent,
    heartbeatMs: HB,
    clock: opts.clock,
  })
  tracker.start()
  tracker.stop() // heartbeats by hand
  const service = new PresenceService({
    store: opts.store,
    source: log.source(),
    publisher: { presence: opts.presence, control: (_nodeId, cmd) => opts.control?.(cmd) },
    logger: silent,
    metrics: new Metrics(),
    epoch: 1,
    heartbeatMs: HB,
    holdMs: 3 * HB + 3000,
    autoTick: false,
    clock: opts.clock,
  })
  const open = (userId: string) => {
    const client = { id: `${userId}/d`, conn: { destroyed: false } } as unknown as Client
    tracker.open(
      client,
      { userId, role: 'user', iat: 0, exp: undefined },
      { userId, deviceId: 'd', clientId: `${userId}/d` },
      { transport: 'tcp', remoteAddress: '127.0.0.1' },
    )
    return client
  }
  return { tracker, service, open }
}
