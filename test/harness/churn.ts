/**
 * Client churn against a cluster, with the truth kept on the client side: users connect,
 * log out, drop, and move between nodes. `truth()` is the set of connections that still
 * complete a PUBLISH/PUBACK round trip; `compare()` checks presence against it, connection by
 * connection.
 */
import type { MqttClient } from 'mqtt'
import type { PresenceView } from '../../services/presence/types.js'
import { prng } from './faulty-log.js'
import { connectClient } from './mqtt.js'
import { roundTrips } from './truth.js'

export interface ChurnTarget {
  /** MQTT URLs of the live access nodes, by node id. */
  urls(): Map<string, string>
  presenceMany(userIds: string[]): Promise<Record<string, PresenceView>>
}

interface Live {
  client: MqttClient
  userId: string
  deviceId: string
  node: string
}

export class Churn {
  private readonly random: () => number
  private readonly live = new Map<string, Live>()
  readonly counts = { connects: 0, logouts: 0, drops: 0, moves: 0, failed: 0 }

  constructor(
    private readonly target: ChurnTarget,
    readonly users: string[],
    private readonly devices: string[],
    seed: number,
  ) {
    this.random = prng(seed)
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)]!
  }

  /** One random action; failures (a node being down) are counted, not thrown. */
  async step(): Promise<void> {
    const nodes = [...this.target.urls().entries()]
    if (nodes.length === 0) return
    const r = this.random()
    const live = [...this.live.values()]
    try {
      if (r < 0.45 || live.length === 0) {
        const userId = this.pick(this.users)
        const deviceId = this.pick(this.devices)
        const key = `${userId}/${deviceId}`
        if (this.live.has(key)) return
        const [node, url] = this.pick(nodes)
        await this.open(key, userId, deviceId, node, url)
        this.counts.connects += 1
      } else if (r < 0.65) {
        const c = this.pick(live)
        this.live.delete(`${c.userId}/${c.deviceId}`)
        await c.client.endAsync()
        this.counts.logouts += 1
      } else if (r < 0.85) {
        const c = this.pick(live)
        this.live.delete(`${c.userId}/${c.deviceId}`)
        c.client.stream.destroy()
        c.client.end(true)
        this.counts.drops += 1
      } else {
        // move: the same device reconnects on another node (a takeover when it overlaps)
        const c = this.pick(live)
        const [node, url] = this.pick(nodes)
        const old = c.client
        await this.open(`${c.userId}/${c.deviceId}`, c.userId, c.deviceId, node, url)
        old.end(true)
        this.counts.moves += 1
      }
    } catch {
      this.counts.failed += 1
    }
  }

  async run(steps: number): Promise<void> {
    for (let i = 0; i < steps; i++) await this.step()
  }

  private async open(
    key: string,
    userId: string,
    deviceId: string,
    node: string,
    url: string,
  ): Promise<void> {
    const client = await connectClient(url, userId, deviceId, { connectTimeout: 3000 })
    client.on('error', () => {})
    client.on('close', () => {
      if (this.live.get(key)?.client === client) this.live.delete(key)
    })
    this.live.set(key, { client, userId, deviceId, node })
  }

  /** Connections (clientIds) that really are live now, by user. */
  async truth(): Promise<Map<string, Set<string>>> {
    const all = [...this.live.values()]
    const alive = await Promise.all(all.map((c) => roundTrips(c.client, c.userId, 3000)))
    const out = new Map<string, Set<string>>(this.users.map((u) => [u, new Set()]))
    all.forEach((c, i) => {
      if (alive[i]) out.get(c.userId)!.add(`${c.userId}/${c.deviceId}`)
    })
    return out
  }

  /** undefined when presence equals the truth connection by connection; else a description. */
  async compare(): Promise<string | undefined> {
    const [truth, views] = await Promise.all([this.truth(), this.target.presenceMany(this.users)])
    const diffs: string[] = []
    for (const userId of this.users) {
      const want = [...(truth.get(userId) ?? [])].sort()
      const view = views[userId]
      const got = (view?.connectionsDetail ?? []).map((d) => d.clientId).sort()
      if (JSON.stringify(want) !== JSON.stringify(got) || (view?.online ?? false) !== want.length > 0) {
        diffs.push(
          `${userId}: presence ${JSON.stringify(got)} online=${view?.online}, truth ${JSON.stringify(want)}`,
        )
      }
    }
    return diffs.length === 0 ? undefined : diffs.join('; ')
  }

  close(): void {
    for (const c of this.live.values()) c.client.end(true)
    this.live.clear()
  }
}
