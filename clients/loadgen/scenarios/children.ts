/**
 * Herald as separate processes for the standalone scenarios (resync, node-death): children
 * whose JSON log lines can be awaited, and the store's counts over the HTTP API. With
 * HERALD_BENCH_LOGS=<dir>, each child's log lines are also written to
 * <dir>/<command>-<pid>.log.
 */
import type { ChildProcess } from 'node:child_process'
import { appendFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { mintToken } from '../../../services/core/auth.js'
import { RedisServer } from '../../../test/harness/redis.js'
import { now } from '../histogram.js'
import { spawnWithFdLimit, WorkerPool } from '../pool.js'
import type { ClientSpec } from '../protocol.js'
import { benchDataDir, HERALD_BIN, nodeArgs, stopChild } from '../targets.js'

export const SECRET = 'herald-bench-secret-0123456789abcdef'
export const VIRTUAL_NODE = fileURLToPath(new URL('../virtual-node.js', import.meta.url))

/** How long opening `n` connections may take: generous (a bound, not a measurement). */
export const openBoundMs = (n: number) => Math.max(120_000, n * 10)

/** What the standalone scenarios started and have not stopped yet (for an interrupted bench). */
const running = new Set<{ stop(): Promise<void> }>()

/** Stops every process a standalone scenario started (Ctrl-C, a timeout's SIGTERM). */
export async function stopStarted(): Promise<void> {
  for (const r of [...running]) await r.stop().catch(() => {})
}

/**
 * A redis-server for a standalone scenario, stopped by `stopStarted` if the bench is
 * interrupted (destroying one already destroyed does nothing).
 */
export async function startRedis(): Promise<RedisServer> {
  const redis = await RedisServer.start()
  running.add({ stop: () => redis.destroy() })
  return redis
}

/** A Herald child process whose JSON log lines can be awaited at any time. */
export class HeraldChild {
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
    running.add(this)
    child.once('exit', () => running.delete(this))
  }

  /** `herald node|presence`, or `virtual`: a node holding in-memory connections (virtual-node.ts). */
  static start(command: 'node' | 'presence' | 'virtual', env: Record<string, string>): HeraldChild {
    const virtual = command === 'virtual'
    return new HeraldChild(
      spawnWithFdLimit(
        virtual ? VIRTUAL_NODE : HERALD_BIN,
        virtual ? [] : [command],
        {
          PATH: process.env.PATH ?? '',
          HERALD_AUTH_SECRET: SECRET,
          HERALD_LOG_LEVEL: 'info',
          HERALD_LIMITS: 'relaxed',
          HERALD_DATA_DIR: benchDataDir(),
          ...env,
        },
        false,
        virtual ? ['--expose-gc', ...nodeArgs()] : nodeArgs(),
      ),
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

  /** The end of a run (a profile is written when profiling). */
  stop(): Promise<void> {
    return stopChild(this.child)
  }

  /** A crash: SIGKILL. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise((r) => this.child.once('exit', r))
    this.child.kill('SIGKILL')
    await exited
  }
}

/** The store's counts, from the presence service's HTTP API (undefined while it is not up). */
export async function storeStats(httpUrl: string, token: string): Promise<StoreStatsReply | undefined> {
  const res = await fetch(`${httpUrl}/v1/stats`, { headers: { authorization: `Bearer ${token}` } })
  if (!res.ok) return undefined
  return (await res.json()) as StoreStatsReply
}

interface StoreStatsReply {
  connections: number
  onlineUsers: number
  nodes?: Array<{ nodeId: string; lastHeartbeat: number }>
}

export async function connections(httpUrl: string, token: string): Promise<number> {
  return (await storeStats(httpUrl, token))?.connections ?? -1
}

export async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 20))
  }
  return true
}

/**
 * Redis, a presence service and one access node (`bench-n1`) as separate processes, with
 * `n` clients connected to the node and counted by the store. Heartbeats every second.
 */
export class SplitHerald {
  readonly children: HeraldChild[] = []
  presence!: HeraldChild
  node!: HeraldChild
  httpUrl = ''
  /** A service token for the HTTP API. */
  service = ''
  /** Clients the store counts once everything is up. */
  online = 0

  private constructor(
    readonly redis: RedisServer,
    readonly pool: WorkerPool,
  ) {}

  static readonly HEARTBEAT_MS = 1000

  private get env() {
    return { HERALD_REDIS_URL: this.redis.url, HERALD_NODE_HEARTBEAT_MS: String(SplitHerald.HEARTBEAT_MS) }
  }

  /**
   * With `virtual`, the node holds its `n` connections over in-memory streams in its own process
   * (virtual-node.ts): past the open-files limit that caps TCP here.
   */
  static async start(n: number, workers: number, userPrefix: string, virtual = false): Promise<SplitHerald> {
    const split = new SplitHerald(await startRedis(), WorkerPool.start(virtual ? 1 : workers))
    try {
      await split.startPresence()
      split.service = await mintToken(SECRET, 'bench-ops', { role: 'service', ttl: '6h' })
      if (virtual) {
        split.node = split.spawn('virtual', {
          HERALD_NODE_ID: 'bench-n1',
          HERALD_MQTT_PORT: '0',
          HERALD_WS_PORT: '0',
          HERALD_HTTP_PORT: '0',
          VIRTUAL_SERVER: 'herald',
          VIRTUAL_MODE: 'node',
          VIRTUAL_N: String(n),
          VIRTUAL_PREFIX: userPrefix,
          VIRTUAL_SECRET: SECRET,
        })
        const opened = await split.node.line((l) => l.msg === 'virtual clients connected', openBoundMs(n))
        split.online = Number(opened.connected)
        await until(async () => (await connections(split.httpUrl, split.service)) === split.online, 120_000)
        return split
      }
      split.node = split.spawn('node', {
        HERALD_NODE_ID: 'bench-n1',
        HERALD_MQTT_PORT: 'auto',
        HERALD_WS_PORT: '0',
        HERALD_HTTP_PORT: '0',
      })
      const ports = (await split.node.line((l) => l.msg === 'herald ready')).ports as { mqtt: number }
      const specs: ClientSpec[] = []
      for (let i = 0; i < n; i++) {
        const userId = `${userPrefix}${i}`
        specs.push({
          clientId: `${userId}/d`,
          userId,
          password: await mintToken(SECRET, userId, { ttl: '6h' }),
        })
      }
      const opened = await split.pool.open(`mqtt://127.0.0.1:${ports.mqtt}`, specs, {
        concurrency: 200,
        rate: 0,
      })
      split.online = n - opened.failed
      await until(async () => (await connections(split.httpUrl, split.service)) === split.online, 120_000)
      return split
    } catch (err) {
      await split.stop()
      throw err
    }
  }

  /**
   * (Re)starts the presence service under a stable name, as deployed (compose.yaml): a
   * restarted one takes over its own previous incarnation's lease at once. Resolves when it
   * is ready; `pick` lines are awaited from its first line on.
   */
  async startPresence(
    pick?: (l: Record<string, unknown>) => boolean,
  ): Promise<{ readyAt: number; picked?: Promise<Record<string, unknown>> }> {
    this.presence = this.spawn('presence', {
      HERALD_NODE_ID: 'bench-presence',
      HERALD_HTTP_PORT: 'auto',
      HERALD_MQTT_PORT: '0',
      HERALD_WS_PORT: '0',
    })
    const picked = pick ? this.presence.line(pick) : undefined
    const ready = await this.presence.line((l) => l.msg === 'herald ready')
    this.httpUrl = `http://127.0.0.1:${(ready.ports as { http: number }).http}`
    return { readyAt: now(), picked }
  }

  /**
   * A second access node (`bench-n2`) with no clients, up and heard by the presence service:
   * with a live node left, a dead node's users are held until its log has been read past the
   * death (the path a cluster takes), instead of going offline with the sweep.
   */
  async startSpareNode(): Promise<void> {
    const spare = this.spawn('node', {
      HERALD_NODE_ID: 'bench-n2',
      HERALD_MQTT_PORT: '0',
      HERALD_WS_PORT: '0',
      HERALD_HTTP_PORT: '0',
    })
    await spare.line((l) => l.msg === 'herald ready')
    const known = async () => {
      const s = await storeStats(this.httpUrl, this.service)
      return s?.nodes?.some((n) => n.nodeId === 'bench-n2' && n.lastHeartbeat > 0) ?? false
    }
    if (!(await until(known, 30_000))) throw new Error('the spare node never showed up in the stats')
  }

  async stop(): Promise<void> {
    this.pool.stop()
    for (const c of this.children) await c.stop()
    await this.redis.destroy()
  }

  private spawn(command: 'node' | 'presence' | 'virtual', env: Record<string, string>): HeraldChild {
    const child = HeraldChild.start(command, { ...this.env, ...env })
    this.children.push(child)
    return child
  }
}
