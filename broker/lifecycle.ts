/**
 * Lifecycle events on `$SYS/<nodeId>/presence/<kind>`: every access node's log events (conn,
 * disc, status, hb, hello, bye), as JSON, QoS 0 — what AWS IoT publishes on
 * `$aws/events/presence/...` and EMQX on `$SYS/brokers/<node>/clients/...`, for back ends
 * (roles `service` and `admin`) that subscribe over MQTT or read the bus.
 *
 * They are published only while someone subscribes to them somewhere in the cluster. Mirroring
 * every event cost 2 bus messages per connect and disconnect that every process received and
 * decoded — measured 8–12% of Herald's CPU per connect (docs/benchmarks.md, twelfth session) —
 * with nobody reading them. A node sees its own subscribers: every Aedes subscription passes
 * through the bus wrapper (broker/bus.ts), which reports those whose filter matches a lifecycle
 * topic. While it has any, it says so on `$SYS/herald/lifecycle-demand` at once and then every
 * heartbeat interval; every node mirrors while it has subscribers of its own or heard that
 * within 3 intervals. So a subscriber on one node gets every node's events from a few
 * milliseconds after its SUBACK (the announcement's trip over the bus), and a node stops
 * mirroring 3 intervals after the last subscriber anywhere went away.
 */
import { IDENTIFIER } from '../services/core/identity.js'
import { topicMatches } from '../services/core/topics.js'

/** The kinds of events a node logs (services/events/types.ts), each a topic's last level. */
export const LIFECYCLE_KINDS = ['conn', 'disc', 'status', 'hb', 'hello', 'bye'] as const

/** Where nodes say that they have lifecycle subscribers: `{n: nodeId}`. */
export const DEMAND_TOPIC = '$SYS/herald/lifecycle-demand'

/**
 * True when the filter matches some `$SYS/<nodeId>/presence/<kind>` topic. Only a filter that
 * names `$SYS` itself can ([MQTT-4.7.2-1]: a wildcard at the root never matches `$` topics).
 */
export function watchesLifecycle(filter: string): boolean {
  if (!filter.startsWith('$SYS/')) return false
  const node = filter.split('/', 2)[1]
  const nodeId = node === '+' || node === '#' || node === undefined ? 'n' : node
  return LIFECYCLE_KINDS.some((kind) => topicMatches(filter, `$SYS/${nodeId}/presence/${kind}`))
}

/**
 * The filters services and admins may subscribe with (the ACL): `$SYS/<nodeId>/presence/<kind>`
 * with `+` for the node or the kind, or `#` for every kind. Nothing else under `$SYS`: the rest
 * is Herald's control plane.
 */
export function isLifecycleFilter(filter: string): boolean {
  const levels = filter.split('/')
  if (levels.length !== 4 || levels[0] !== '$SYS' || levels[2] !== 'presence') return false
  const [node, kind] = [levels[1]!, levels[3]!]
  if (node !== '+' && !IDENTIFIER.test(node)) return false
  return kind === '+' || kind === '#' || (LIFECYCLE_KINDS as readonly string[]).includes(kind)
}

export interface LifecycleDemandOptions {
  nodeId: string
  /** How often a node with subscribers repeats its announcement; a node mirrors 3 of these after the last. */
  everyMs: number
  /** Publishes the announcement on the bus (DEMAND_TOPIC, QoS 0). */
  announce: (payload: string) => void
  now?: () => number
}

export class LifecycleDemand {
  /** This node's subscriptions to lifecycle topics (Aedes's listener of each). */
  private readonly local = new Set<unknown>()
  /** Until when another node's subscribers keep this node mirroring. */
  private remoteUntil = 0
  private timer: NodeJS.Timeout | undefined
  private readonly now: () => number

  constructor(private readonly opts: LifecycleDemandOptions) {
    this.now = opts.now ?? Date.now
  }

  /** Someone on this cluster reads lifecycle events now: a node publishes its events. */
  get wanted(): boolean {
    return this.local.size > 0 || (this.remoteUntil > 0 && this.now() < this.remoteUntil)
  }

  /** A local subscription began (bus.ts reports every subscription; others are ignored). */
  subscribed(filter: string, listener: unknown): void {
    if (!watchesLifecycle(filter) || this.local.has(listener)) return
    this.local.add(listener)
    if (this.local.size > 1) return
    this.say()
    this.timer = setInterval(() => this.say(), this.opts.everyMs)
    this.timer.unref()
  }

  /** A local subscription ended. */
  unsubscribed(listener: unknown): void {
    if (!this.local.delete(listener) || this.local.size > 0) return
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Another node's announcement (this node's own come back too: harmless). */
  heard(payload: string): void {
    let nodeId: unknown
    try {
      nodeId = (JSON.parse(payload) as { n?: unknown }).n
    } catch {
      return
    }
    if (typeof nodeId !== 'string' || nodeId === this.opts.nodeId) return
    this.remoteUntil = this.now() + 3 * this.opts.everyMs
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private say(): void {
    this.opts.announce(JSON.stringify({ n: this.opts.nodeId }))
  }
}
