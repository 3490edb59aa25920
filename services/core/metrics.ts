/**
 * Prometheus metrics (prom-client), one registry per Herald instance so several instances can
 * live in one process (tests) without clashing.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/** How often the event-loop lag histogram samples, ms. */
const LAG_SAMPLE_MS = 100

export class Metrics {
  readonly registry = new Registry()

  /** Live MQTT connections on this access node. */
  readonly connections = new Gauge({
    name: 'herald_connections',
    help: 'Live MQTT connections on this access node',
    registers: [this.registry],
  })

  /** Users online, as the presence store counts them. */
  readonly onlineUsers = new Gauge({
    name: 'herald_online_users',
    help: 'Users with at least one live connection (presence store)',
    registers: [this.registry],
  })

  readonly eventsApplied = new Counter({
    name: 'herald_presence_events_applied_total',
    help: 'Presence events applied by the presence service, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  })

  readonly edges = new Counter({
    name: 'herald_presence_edges_total',
    help: 'User-level presence changes published, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  })

  readonly storeLatency = new Histogram({
    name: 'herald_store_op_seconds',
    help: 'Presence store operation latency, by operation',
    labelNames: ['op'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  })

  /**
   * How stale the store is: from a connect, disconnect or status change on its node (the
   * node's clock, before the CONNACK) to the presence store holding it (this process's clock;
   * across machines it includes their clock difference). Live events only, a re-sync's
   * buffered ones included.
   */
  readonly presenceLag = new Histogram({
    name: 'herald_presence_lag_seconds',
    help: 'From a presence event on its access node to the store holding it',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  })

  readonly refusals = new Counter({
    name: 'herald_refusals_total',
    help: 'Refused connects, publishes and subscriptions, by stage and reason',
    labelNames: ['stage', 'reason'] as const,
    registers: [this.registry],
  })

  readonly resyncs = new Counter({
    name: 'herald_resyncs_total',
    help: 'Node re-syncs requested by the presence service, by cause',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  })

  constructor(opts: { defaults?: boolean } = {}) {
    // The event-loop lag histogram samples on a timer: prom-client's default (every 10 ms) wakes
    // an idle process ~200 times a second (a process holding only the default metrics: 12 ms of
    // CPU per second, 4 at 100 ms; Herald idle ~3 ms/s less of its ~25). Every 100 ms still sees
    // any stall long enough to matter.
    if (opts.defaults)
      collectDefaultMetrics({
        register: this.registry,
        prefix: 'herald_process_',
        eventLoopMonitoringPrecision: LAG_SAMPLE_MS,
      })
  }

  /** Times a promise-returning store operation. */
  async time<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const end = this.storeLatency.startTimer({ op })
    try {
      return await fn()
    } finally {
      end()
    }
  }
}
