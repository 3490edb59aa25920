/**
 * The load generator's worker processes. Each worker is started through `sh -c 'ulimit -n …;
 * exec node worker.js'` so it can hold many sockets (raising the limit needs root or a high
 * enough hard limit; when it cannot, the bench says so), and connections are spread over
 * several loopback source addresses (one address gives ~28k ephemeral ports).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { decodeInto, type Histogram, newHistogram } from './histogram.js'
import type { ClientSpec, WorkerCommand, WorkerReply } from './protocol.js'

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url))
/** Ephemeral ports per source address we plan to use (of ~28k available). */
const PORTS_PER_ADDRESS = 25_000

export const FD_LIMIT = 1_048_576

/** Whether this machine lets a child raise its open-files limit high enough; a line if not. */
export function fdLimitNote(wanted: number): string | undefined {
  try {
    const got = Number(
      execFileSync('sh', ['-c', `ulimit -n ${wanted} 2>/dev/null; ulimit -n`])
        .toString()
        .trim(),
    )
    if (got >= wanted) return undefined
    return `open-files limit stays at ${got} (wanted ${wanted}): run as root or raise the hard limit (ulimit -Hn)`
  } catch (err) {
    return `could not check the open-files limit: ${(err as Error).message}`
  }
}

/** Spawns `node [nodeArgs] <script>` with a raised open-files limit (when allowed). */
export function spawnWithFdLimit(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ipc = false,
  nodeArgs: string[] = [],
): ChildProcess {
  const cmd = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn) 2>/dev/null; exec "$0" "$@"`
  return spawn('sh', ['-c', cmd, process.execPath, ...nodeArgs, script, ...args], {
    env,
    stdio: ipc ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  })
}

/**
 * Loopback source addresses for `connections` new connections: fresh ones on every call. A
 * client that closes first keeps its port in TIME_WAIT for a minute, and a socket bound to an
 * address cannot take a port in TIME_WAIT, so reusing one address for every row and round of a
 * bench ran out of ports (EADDRINUSE) after ~28k connects a minute. Addresses go round
 * 127.0.1.1 … 127.0.254.254 (64,516 of them), starting at a random one so that benches run
 * back to back do not start on the same.
 */
export function sourceAddresses(connections: number): string[] {
  const n = Math.max(1, Math.ceil(connections / PORTS_PER_ADDRESS))
  return Array.from({ length: n }, () => loopbackAddress(nextAddress++))
}

const ADDRESSES = 254 * 254
let nextAddress = Math.floor(Math.random() * ADDRESSES)

function loopbackAddress(i: number): string {
  const k = i % ADDRESSES
  return `127.0.${Math.floor(k / 254) + 1}.${(k % 254) + 1}`
}

export interface Opened {
  connack: Histogram
  connackAt: Map<string, number>
  failed: number
  /** Why connects failed: error code or message -> count (empty when none did). */
  failures: Record<string, number>
  elapsedMs: number
}

export class WorkerPool {
  private constructor(private readonly workers: ChildProcess[]) {}

  static start(count: number): WorkerPool {
    const workers = Array.from({ length: Math.max(1, count) }, () =>
      spawnWithFdLimit(WORKER, [], process.env, true),
    )
    return new WorkerPool(workers)
  }

  get size(): number {
    return this.workers.length
  }

  private ask(worker: ChildProcess, cmd: WorkerCommand): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      const onMessage = (msg: WorkerReply) => {
        worker.off('exit', onExit)
        if (msg.op === 'error') reject(new Error(`load worker: ${msg.message}`))
        else resolve(msg)
      }
      const onExit = (code: number | null) => reject(new Error(`load worker exited (${code})`))
      worker.once('message', onMessage)
      worker.once('exit', onExit)
      worker.send(cmd)
    })
  }

  /** Sends each worker its own command (built from its index) and waits for every reply. */
  async each(build: (index: number) => WorkerCommand): Promise<WorkerReply[]> {
    return Promise.all(this.workers.map((w, i) => this.ask(w, build(i))))
  }

  /** Opens `clients`, split evenly between the workers; `rate` is for the whole pool. */
  async open(
    url: string,
    clients: ClientSpec[],
    opts: {
      concurrency?: number
      rate?: number
      keepalive?: number
      subscribeInbox?: boolean
      clean?: boolean
    } = {},
  ): Promise<Opened> {
    const n = this.workers.length
    const addresses = sourceAddresses(clients.length)
    const replies = await this.each((i) => ({
      op: 'open',
      url,
      clients: clients.filter((_c, j) => j % n === i),
      concurrency: Math.ceil((opts.concurrency ?? 100) / n),
      rate: (opts.rate ?? 0) / n,
      keepalive: opts.keepalive ?? 60,
      localAddresses: addresses,
      subscribeInbox: opts.subscribeInbox ?? false,
      clean: opts.clean ?? true,
    }))
    const out: Opened = {
      connack: newHistogram(),
      connackAt: new Map(),
      failed: 0,
      failures: {},
      elapsedMs: 0,
    }
    for (const r of replies) {
      if (r.op !== 'opened') continue
      decodeInto(out.connack, r.connack)
      for (const [id, at] of Object.entries(r.connackAt)) out.connackAt.set(id, at)
      out.failed += r.failed
      for (const [why, k] of Object.entries(r.failures)) out.failures[why] = (out.failures[why] ?? 0) + k
      out.elapsedMs = Math.max(out.elapsedMs, r.elapsedMs)
    }
    if (out.failed > 0) console.error(`bench: ${out.failed} connects failed: ${JSON.stringify(out.failures)}`)
    return out
  }

  async publish(rate: number, durationMs: number, qos: 0 | 1, targets: string[]) {
    const n = this.workers.length
    const replies = await this.each(() => ({ op: 'publish', rate: rate / n, durationMs, qos, targets }))
    const ack = newHistogram()
    let sent = 0
    let acked = 0
    let elapsedMs = 0
    for (const r of replies) {
      if (r.op !== 'published') continue
      decodeInto(ack, r.ack)
      sent += r.sent
      acked += r.acked
      elapsedMs = Math.max(elapsedMs, r.elapsedMs)
    }
    return { sent, acked, ack, elapsedMs }
  }

  async collect() {
    const e2e = newHistogram()
    let received = 0
    for (const r of await this.each(() => ({ op: 'collect' }))) {
      if (r.op !== 'collected') continue
      received += r.received
      decodeInto(e2e, r.e2e)
    }
    return { received, e2e }
  }

  async churn(url: string, durationMs: number, seed: number) {
    const replies = await this.each((i) => ({
      op: 'churn',
      url,
      durationMs,
      seed: seed + i,
      // enough ports for 2,000 connects a second per worker
      localAddresses: sourceAddresses(Math.ceil(durationMs / 1000) * 2000),
    }))
    const out = { connects: 0, disconnects: 0, drops: 0, failed: 0, elapsedMs: 0 }
    for (const r of replies) {
      if (r.op !== 'churned') continue
      out.connects += r.connects
      out.disconnects += r.disconnects
      out.drops += r.drops
      out.failed += r.failed
      out.elapsedMs = Math.max(out.elapsedMs, r.elapsedMs)
    }
    return out
  }

  async closeClients(): Promise<void> {
    await this.each(() => ({ op: 'close' }))
  }

  stop(): void {
    for (const w of this.workers) if (w.exitCode === null) w.kill('SIGKILL')
  }
}
