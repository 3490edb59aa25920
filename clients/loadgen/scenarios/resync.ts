/**
 * resync (Herald only, Redis): one access node holding N connections, and the presence service
 * in its own process. The service is SIGKILLed and restarted — warm (Redis kept its data) and
 * cold (Redis flushed first, so every record is gone) — and we time the re-sync of the node's
 * whole online set: from the restart until the service logs `node re-synced` and the store
 * counts all N again. With HERALD_BENCH_LOGS=<dir>, each child's log lines are also written to
 * <dir>/<command>-<pid>.log.
 */
import type { ChildProcess } from 'node:child_process'
import { appendFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import { mintToken } from '../../../services/core/auth.js'
import { RedisServer } from '../../../test/harness/redis.js'
import { now } from '../histogram.js'
import { spawnWithFdLimit, WorkerPool } from '../pool.js'
import type { ClientSpec } from '../protocol.js'
import { HERALD_BIN } from '../targets.js'
import { type Row, round, type ScenarioOptions, type ScenarioResult } from './common.js'

const SECRET = 'herald-bench-secret-0123456789abcdef'

/** A Herald child process whose JSON log lines can be awaited at any time. */
class HeraldChild {
  private readonly waiters: Array<{
    pick: (l: Record<string, unknown>) => boolean
    resolve: (l: Record<string, unknown>) => void
  }> = []

  constructor(
    readonly child: ChildProcess,
    command: string,
  ) {
    let buf = ''
    const logDir = process.env.HERALD_BENCH_LOGS
    child.stdout?.on('data', (b: Buffer) => {
      if (logDir) appendFileSync(`${logDir}/${command}-${child.pid}.log`, b)
      buf += b.toString()
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const raw = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let line: Record<string, unknown>
        try {
          line = JSON.parse(raw) as Record<string, unknown>
        } catch {
          continue
        }
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          const w = this.waiters[i]!
          if (w.pick(line)) {
            this.waiters.splice(i, 1)
            w.resolve(line)
          }
        }
      }
    })
    child.stderr?.resume()
  }

  static start(command: 'node' | 'presence', env: Record<string, string>): HeraldChild {
    return new HeraldChild(
      spawnWithFdLimit(HERALD_BIN, [command], {
        PATH: process.env.PATH ?? '',
        HERALD_AUTH_SECRET: SECRET,
        HERALD_LOG_LEVEL: 'info',
        HERALD_LIMITS: 'relaxed',
        ...env,
      }),
      command,
    )
  }

  line(pick: (l: Record<string, unknown>) => boolean, timeoutMs = 120_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('expected log line did not come in time')), timeoutMs)
      this.waiters.push({
        pick,
        resolve: (l) => {
          clearTimeout(timer)
          resolve(l)
        },
      })
    })
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise((r) => this.child.once('exit', r))
    this.child.kill('SIGKILL')
    await exited
  }
}

async function connections(httpUrl: string, token: string): Promise<number> {
  const res = await fetch(`${httpUrl}/v1/stats`, { headers: { authorization: `Bearer ${token}` } })
  if (!res.ok) return -1
  return ((await res.json()) as { connections: number }).connections
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 20))
  }
  return true
}

export async function resyncScenario(_targets: unknown[], opts: ScenarioOptions): Promise<ScenarioResult> {
  const n = opts.n
  const rows: Row[] = []
  const redis = await RedisServer.start()
  const env = { HERALD_REDIS_URL: redis.url, HERALD_NODE_HEARTBEAT_MS: '1000' }
  // a stable name, as deployed (compose.yaml): the restarted service takes over its own
  // previous incarnation's lease at once instead of waiting for it to lapse
  const presenceEnv = {
    ...env,
    HERALD_NODE_ID: 'bench-presence',
    HERALD_HTTP_PORT: 'auto',
    HERALD_MQTT_PORT: '0',
    HERALD_WS_PORT: '0',
  }
  const children: HeraldChild[] = []
  const startPresence = () => {
    const p = HeraldChild.start('presence', presenceEnv)
    children.push(p)
    return p
  }
  const pool = WorkerPool.start(opts.workers)
  try {
    let presence = startPresence()
    const ready = await presence.line((l) => l.msg === 'herald ready')
    const node = HeraldChild.start('node', {
      ...env,
      HERALD_NODE_ID: 'bench-n1',
      HERALD_MQTT_PORT: 'auto',
      HERALD_WS_PORT: '0',
      HERALD_HTTP_PORT: '0',
    })
    children.push(node)
    const nodePorts = (await node.line((l) => l.msg === 'herald ready')).ports as { mqtt: number }
    const service = await mintToken(SECRET, 'bench-ops', { role: 'service', ttl: '6h' })
    const specs: ClientSpec[] = []
    for (let i = 0; i < n; i++) {
      const userId = `rs${i}`
      specs.push({
        clientId: `${userId}/d`,
        userId,
        password: await mintToken(SECRET, userId, { ttl: '6h' }),
      })
    }
    const opened = await pool.open(`mqtt://127.0.0.1:${nodePorts.mqtt}`, specs, { concurrency: 200, rate: 0 })
    const online = n - opened.failed
    let httpUrl = `http://127.0.0.1:${(ready.ports as { http: number }).http}`
    await until(async () => (await connections(httpUrl, service)) === online, 120_000)

    for (const kind of ['warm', 'cold'] as const) {
      await presence.kill()
      if (kind === 'cold') {
        const r = new Redis(redis.url)
        await r.flushall()
        r.disconnect()
      }
      const t0 = now()
      presence = startPresence()
      const resynced = presence.line((l) => l.msg === 'node re-synced' && l.nodeId === 'bench-n1')
      const up = await presence.line((l) => l.msg === 'herald ready')
      const upAt = now()
      httpUrl = `http://127.0.0.1:${(up.ports as { http: number }).http}`
      const line = await resynced
      const resyncedAt = now()
      const complete = await until(async () => (await connections(httpUrl, service)) === online, 60_000)
      rows.push({
        target: 'herald-redis',
        case: kind,
        connections: online,
        restartToResyncedMs: round(resyncedAt - t0),
        upToResyncedMs: round(resyncedAt - upAt),
        snapshotMs: Number(line.ms ?? 0),
        storeComplete: complete ? 'yes' : 'no',
      })
    }
    await pool.closeClients()
  } finally {
    pool.stop()
    for (const c of children) await c.kill()
    await redis.destroy()
  }
  return {
    scenario: 'resync',
    params: { connections: n, workers: opts.workers },
    rows,
    notes: [
      'restartToResynced: SIGKILLed presence service restarted -> "node re-synced" (includes process start)',
      'upToResynced: the new service ready -> "node re-synced"; snapshotMs: the service\'s own request -> last chunk applied',
      'warm: Redis kept its data; cold: Redis flushed before the restart (every record rebuilt)',
    ],
  }
}
