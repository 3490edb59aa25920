/** What the scenarios share: client specs, a presence observer for Herald, metrics. */
import mqtt, { type MqttClient } from 'mqtt'
import type { PresenceDoc } from '../../../services/presence/types.js'
import { gcPausesSince } from '../gc-log.js'
import { now } from '../histogram.js'
import type { ClientSpec } from '../protocol.js'
import type { Target } from '../targets.js'

export interface Row {
  target: string
  [metric: string]: number | string | null
}

export interface ScenarioResult {
  scenario: string
  params: Record<string, unknown>
  rows: Row[]
  notes: string[]
}

export interface ScenarioOptions {
  /** Scale knob: number of clients (meaning per scenario). */
  n: number
  /** Duration knob, ms. */
  durationMs: number
  /** Fixed rates (per second) where the scenario takes rates. */
  rates: number[]
  workers: number
  /** Connections over in-memory streams in the server's process (idle, resync, node-death). */
  virtual?: boolean
  /** QoS levels to run (messages; default 1 then 0). */
  qos?: Array<0 | 1>
  /** For scenarios that start their own systems: the bench's --mode and --only. */
  mode?: 'memory' | 'redis'
  only?: string[]
}

export async function specsFor(
  target: Target,
  prefix: string,
  n: number,
  device = 'd',
): Promise<ClientSpec[]> {
  const out: ClientSpec[] = []
  for (let i = 0; i < n; i++) {
    const userId = `${prefix}${i}`
    out.push({ clientId: `${userId}/${device}`, userId, password: await target.token(userId) })
  }
  return out
}

/** A service client watching exact `presence/<userId>` topics (Herald only). */
export class PresenceObserver {
  readonly onlineAt = new Map<string, number>()
  readonly offline = new Map<string, { at: number; doc: PresenceDoc }>()

  private constructor(private readonly client: MqttClient) {}

  static async start(target: Target, userIds: string[]): Promise<PresenceObserver> {
    const client = mqtt.connect(target.url, {
      clientId: `bench-observer/${process.pid}-${Math.floor(Math.random() * 1e9)}`,
      username: 'bench-observer',
      password: await target.token('bench-observer', 'service'),
      protocolVersion: 4,
      reconnectPeriod: 0,
    })
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve())
      client.once('error', reject)
    })
    const obs = new PresenceObserver(client)
    client.on('message', (_topic, payload) => {
      const at = now()
      const doc = JSON.parse(payload.toString()) as PresenceDoc
      if (doc.online && !obs.onlineAt.has(doc.userId)) obs.onlineAt.set(doc.userId, at)
      if (!doc.online && obs.onlineAt.has(doc.userId) && !obs.offline.has(doc.userId)) {
        obs.offline.set(doc.userId, { at, doc })
      }
    })
    for (let i = 0; i < userIds.length; i += 1000) {
      await client.subscribeAsync(
        userIds.slice(i, i + 1000).map((u) => `presence/${u}`),
        { qos: 0 },
      )
    }
    return obs
  }

  /** Waits (bounded) until `done` holds. */
  async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!done()) {
      if (Date.now() > deadline) return false
      await new Promise((r) => setTimeout(r, 20))
    }
    return true
  }

  close(): void {
    this.client.end(true)
  }
}

/** Sum of a Prometheus counter from Herald's /metrics (all label sets). */
export async function metric(target: Target, name: string): Promise<number> {
  if (!target.httpUrl) return 0
  const text = await (await fetch(`${target.httpUrl}/metrics`)).text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

/**
 * CPU the system under test spends between `start()` and `perOp(n)`: µs per operation, server
 * process plus its redis-server (Redis mode), as row fields `cpuUsPerOp` and `redisUsPerOp`.
 */
export class CpuMeter {
  private constructor(
    private readonly target: Target,
    private readonly at: { server: number; redis: number },
    private readonly sinceMs: number,
  ) {}

  static start(target: Target): CpuMeter {
    return new CpuMeter(target, target.cpuMs(), Date.now())
  }

  /**
   * CPU per operation (µs, server and its redis-server), and the GC pauses of the row's window
   * (gc-log.ts): main-thread pause time per operation (µs) and the longest pause (ms); null for
   * a system that is not Node.
   */
  perOp(ops: number): {
    cpuUsPerOp: number | null
    redisUsPerOp: number | null
    gcUsPerOp: number | null
    gcMaxMs: number | null
  } {
    const now = this.target.cpuMs()
    if (ops <= 0) return { cpuUsPerOp: null, redisUsPerOp: null, gcUsPerOp: null, gcMaxMs: null }
    const pids = this.target.nodePids
    const gc = pids.length > 0 ? gcPausesSince(pids, this.sinceMs) : undefined
    const server = now.server - this.at.server
    const redis = now.redis - this.at.redis
    return {
      cpuUsPerOp: round(((server + redis) * 1000) / ops),
      redisUsPerOp: this.target.mode === 'redis' ? round((redis * 1000) / ops) : null,
      gcUsPerOp: gc ? round((gc.totalMs * 1000) / ops) : null,
      gcMaxMs: gc ? round(gc.maxMs) : null,
    }
  }
}

export const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits
