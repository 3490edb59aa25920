/**
 * A Herald cluster of real processes for tests: a redis-server of its own, `herald presence`,
 * and named `herald node` processes, each started on free ports and killed by PID.
 */
import { mintToken } from '../../services/core/auth.js'
import type { PresenceView } from '../../services/presence/types.js'
import { TEST_SECRET } from './herald.js'
import { http } from './http.js'
import { type HeraldProcess, spawnHerald } from './process.js'
import { RedisServer } from './redis.js'

export interface ClusterOptions {
  nodes: string[]
  heartbeatMs?: number
  aof?: boolean
  env?: Record<string, string>
}

export class TestCluster {
  readonly nodes = new Map<string, HeraldProcess>()
  /** Every presence service started, oldest first (a rolling deploy runs two). */
  readonly presences: HeraldProcess[] = []

  /** The newest presence service still running (any of them serves reads). */
  get presence(): HeraldProcess | undefined {
    return [...this.presences].reverse().find((p) => p.child.exitCode === null && p.child.signalCode === null)
  }

  private constructor(
    readonly redis: RedisServer,
    readonly opts: ClusterOptions,
  ) {}

  static async start(opts: ClusterOptions): Promise<TestCluster> {
    const cluster = new TestCluster(await RedisServer.start({ aof: opts.aof ?? false }), opts)
    try {
      await cluster.startPresence()
      await Promise.all(opts.nodes.map((id) => cluster.startNode(id)))
    } catch (err) {
      await cluster.stop()
      throw err
    }
    return cluster
  }

  get heartbeatMs(): number {
    return this.opts.heartbeatMs ?? 500
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      HERALD_REDIS_URL: this.redis.url,
      HERALD_NODE_HEARTBEAT_MS: String(this.heartbeatMs),
      HERALD_TAKEOVER_GRACE_MS: '3000',
      HERALD_LOG_LEVEL: 'info',
      ...this.opts.env,
      ...extra,
    }
  }

  async startPresence(extra: Record<string, string> = {}): Promise<HeraldProcess> {
    const p = await spawnHerald('presence', this.env({ HERALD_NODE_ID: 'presence-1', ...extra }))
    this.presences.push(p)
    return p
  }

  async startNode(id: string, extra: Record<string, string> = {}): Promise<HeraldProcess> {
    const p = await spawnHerald('node', this.env({ HERALD_NODE_ID: id, ...extra }))
    this.nodes.set(id, p)
    return p
  }

  node(id: string): HeraldProcess {
    const p = this.nodes.get(id)
    if (!p) throw new Error(`no node ${id}`)
    return p
  }

  url(id: string): string {
    return this.node(id).mqttUrl
  }

  /** MQTT URLs of the nodes running now. */
  urls(): Map<string, string> {
    return new Map([...this.nodes.entries()].map(([id, p]) => [id, p.mqttUrl]))
  }

  /** Kills the newest presence service (or the one at `index`) by PID. */
  async killPresence(signal: NodeJS.Signals = 'SIGKILL', index?: number): Promise<void> {
    await (index === undefined ? this.presence : this.presences[index])?.kill(signal)
  }

  /** FLUSHALL on the cluster's Redis: every key gone, while everything runs. */
  async flushall(): Promise<void> {
    const { Redis } = await import('ioredis')
    const r = new Redis(this.redis.url)
    await r.flushall()
    r.disconnect()
  }

  /** Kills a node by PID (SIGKILL unless told otherwise) and waits for it to exit. */
  async kill(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | string> {
    const code = await this.node(id).kill(signal)
    this.nodes.delete(id)
    return code
  }

  async presenceOf(userId: string): Promise<PresenceView> {
    const res = await http(this.presence!.httpUrl, `/v1/presence/${userId}`, {
      token: await this.token('ops', 'service'),
    })
    if (res.status !== 200) throw new Error(`presence ${res.status}`)
    return res.body as PresenceView
  }

  async presenceMany(userIds: string[]): Promise<Record<string, PresenceView>> {
    const res = await http(this.presence!.httpUrl, '/v1/presence/query', {
      token: await this.token('ops', 'service'),
      body: { userIds },
    })
    return (res.body as { results: Record<string, PresenceView> }).results
  }

  token(userId: string, role: 'user' | 'service' | 'admin' = 'user'): Promise<string> {
    return mintToken(TEST_SECRET, userId, { role })
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((p) => p.kill('SIGKILL')))
    this.nodes.clear()
    await Promise.all(this.presences.map((p) => p.kill('SIGKILL')))
    await this.redis.destroy()
  }
}
