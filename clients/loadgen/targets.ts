/**
 * The systems under test, each started by the bench itself on loopback, as a child process:
 * Herald (memory or Redis), bare Aedes (the same two ways), and Mosquitto when installed.
 */
import { type ChildProcess, execFileSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mintToken } from '../../services/core/auth.js'
import { freePort } from '../../test/harness/ports.js'
import { RedisServer } from '../../test/harness/redis.js'
import { HERALD_NODE_FLAGS } from '../cli/node-flags.js'
import { removeGcLog } from './gc-log.js'
import { spawnWithFdLimit } from './pool.js'

export type TargetKind = 'herald' | 'aedes' | 'mosquitto'

export interface Target {
  name: string
  kind: TargetKind
  mode: 'memory' | 'redis'
  url: string
  pid: number
  /** HTTP API (Herald only). */
  httpUrl?: string
  /** Signs tokens for Herald; bare brokers ignore the password. */
  token(userId: string, role?: 'user' | 'service'): Promise<string>
  /** Resident memory of the server process, KiB. */
  rssKiB(): number
  /**
   * CPU time (user + system) used so far, ms: the server process and, in Redis mode, its
   * redis-server. Deltas over a run give CPU per operation — a ratio that holds on a noisy,
   * shared machine where rates measure the generator as much as the server.
   */
  cpuMs(): { server: number; redis: number }
  /** The processes whose collections gc-probe.js logs (none for Mosquitto). */
  nodePids: number[]
  stop(): Promise<void>
}

export const HERALD_BIN = fileURLToPath(new URL('../cli/herald.js', import.meta.url))
const BASELINE = fileURLToPath(new URL('./baseline-aedes.js', import.meta.url))
const GC_PROBE = new URL('./gc-probe.js', import.meta.url).href
const SECRET = 'herald-bench-secret-0123456789abcdef'

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

/** CPU time of a process so far (utime + stime), ms; 0 once it is gone. */
export function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return 0
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the fields after the command name (which may hold spaces) start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS
  } catch {
    return 0
  }
}

/** USER_HZ: /proc reports CPU time in these ticks (100 on Linux everywhere that matters). */
const CLOCK_TICKS = 100

/**
 * The Node options of every Node system under test: Herald's own (HERALD_NODE_FLAGS, the same
 * for bare Aedes so that the ratios compare code, not tuning), then the profiling ones.
 * With HERALD_BENCH_PROFILE=<dir>, they run with --cpu-prof and are stopped with SIGTERM so the
 * profile is written there (`node --cpu-prof` writes on exit). HERALD_BENCH_NODE_ARGS adds
 * options of your own (`--inspect=127.0.0.1:9339`, `--import ./probe.mjs`, `--trace-gc`): the
 * systems under test get a clean environment, so NODE_OPTIONS does not reach them.
 */
export function nodeArgs(): string[] {
  const dir = process.env.HERALD_BENCH_PROFILE
  const own = (process.env.HERALD_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)
  return [
    ...HERALD_NODE_FLAGS,
    `--import=${GC_PROBE}`,
    ...(dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []),
    ...own,
  ]
}

/** Reads JSON lines from a child's stdout until `pick` returns a value. */
function readyLine<T>(
  child: ChildProcess,
  pick: (line: Record<string, unknown>) => T | undefined,
  what: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let buf = ''
    let err = ''
    const timer = setTimeout(() => reject(new Error(`${what} not ready in time: ${err}`)), 30_000)
    child.stderr?.on('data', (b: Buffer) => {
      err = (err + b.toString()).slice(-8000)
    })
    let tail: string[] = []
    let ready = false
    // HERALD_BENCH_LOG=<dir>: every line a system under test logs, kept in <dir>/<what>-<pid>.log
    const logDir = process.env.HERALD_BENCH_LOG
    const logFile = logDir ? join(logDir, `${what.replace(/\W+/g, '-')}-${child.pid}.log`) : undefined
    child.stdout?.on('data', (b: Buffer) => {
      if (logFile) appendFileSync(logFile, b)
      buf += b.toString()
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const raw = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        tail = [...tail.slice(-20), raw]
        try {
          const v = pick(JSON.parse(raw) as Record<string, unknown>)
          if (v !== undefined) {
            clearTimeout(timer)
            ready = true
            child.stdout?.resume()
            resolve(v)
          }
        } catch {}
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      // a system under test that dies mid-run says why, instead of the generator's ECONNRESET
      if (ready && signal !== 'SIGTERM' && signal !== 'SIGKILL' && code !== 0) {
        console.error(`${what} exited unexpectedly (${code ?? signal}):\n${tail.join('\n')}\n${err}`)
      }
      reject(new Error(`${what} exited (${code}): ${err}`))
    })
  })
}

/** Stops a system under test: SIGKILL, or SIGTERM (bounded) while profiling. */
export async function stopChild(child: ChildProcess): Promise<void> {
  try {
    await stopProcess(child)
  } finally {
    removeGcLog(child.pid)
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  if (process.env.HERALD_BENCH_PROFILE) {
    // a graceful exit writes the profile; SIGKILL after a bound
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
    return
  }
  child.kill('SIGKILL')
  await exited
}

export interface TargetOptions {
  heartbeatMs?: number
  /** Extra env for Herald (limits profile, …). */
  env?: Record<string, string>
}

/**
 * A data folder of its own for one Herald under test, removed when the bench exits: in memory
 * mode it holds the message journal, which a later run must not read back.
 */
export function benchDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-'))
  if (dataDirs.length === 0) {
    process.once('exit', () => {
      for (const d of dataDirs) rmSync(d, { recursive: true, force: true })
    })
  }
  dataDirs.push(dir)
  return dir
}
const dataDirs: string[] = []

/** What every Herald process under test is started with. */
function heraldEnv(opts: TargetOptions): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HERALD_DATA_DIR: benchDataDir(),
    HERALD_AUTH_SECRET: SECRET,
    HERALD_LOG_LEVEL: 'info', // the 'herald ready' line is info; the hot paths log nothing at info
    HERALD_NODE_HEARTBEAT_MS: String(opts.heartbeatMs ?? 1000),
    // every generated client comes from loopback, fast: the documented benchmark profile
    HERALD_LIMITS: 'relaxed',
  }
}

export async function startHerald(mode: 'memory' | 'redis', opts: TargetOptions = {}): Promise<Target> {
  const redis = mode === 'redis' ? await RedisServer.start() : undefined
  const child = spawnWithFdLimit(
    HERALD_BIN,
    ['start'],
    {
      ...heraldEnv(opts),
      HERALD_MQTT_PORT: 'auto',
      HERALD_WS_PORT: 'auto',
      HERALD_HTTP_PORT: 'auto',
      ...(redis ? { HERALD_REDIS_URL: redis.url, HERALD_NODE_ID: 'bench-node' } : {}),
      ...opts.env,
    },
    false,
    nodeArgs(),
  )
  const ports = await readyLine(
    child,
    (l) => (l.msg === 'herald ready' ? (l.ports as { mqtt: number; http: number }) : undefined),
    'herald',
  )
  return {
    name: `herald-${mode}`,
    kind: 'herald',
    mode,
    url: `mqtt://127.0.0.1:${ports.mqtt}`,
    httpUrl: `http://127.0.0.1:${ports.http}`,
    pid: child.pid!,
    token: (userId, role = 'user') => mintToken(SECRET, userId, { role, ttl: '6h' }),
    rssKiB: () => rssOf(child.pid!),
    cpuMs: () => ({ server: cpuMsOf(child.pid), redis: cpuMsOf(redis?.pid) }),
    nodePids: [child.pid!],
    stop: async () => {
      await stopChild(child)
      await redis?.destroy()
    },
  }
}

/**
 * Herald in Redis mode laid out as a cluster deploys it: the access node (`herald node`) and the
 * presence service (`herald presence`) in processes of their own. Clients connect to the node;
 * the HTTP API (metrics) is the presence service's; CPU is both processes plus redis-server.
 */
export async function startHeraldSplit(opts: TargetOptions = {}): Promise<Target> {
  const redis = await RedisServer.start()
  const env = { ...heraldEnv(opts), HERALD_REDIS_URL: redis.url, ...opts.env }
  const children: ChildProcess[] = []
  const stop = async () => {
    for (const child of children.reverse()) await stopChild(child)
    await redis.destroy()
  }
  try {
    /** Starts `herald <command>` and waits for its ports. */
    const start = async (command: 'node' | 'presence', own: Record<string, string>) => {
      const child = spawnWithFdLimit(HERALD_BIN, [command], { ...env, ...own }, false, nodeArgs())
      children.push(child)
      const ports = await readyLine(
        child,
        (l) => (l.msg === 'herald ready' ? (l.ports as { mqtt: number; http: number }) : undefined),
        `herald ${command}`,
      )
      return { child, ports }
    }
    const {
      child: presence,
      ports: { http },
    } = await start('presence', {
      HERALD_NODE_ID: 'bench-presence',
      HERALD_HTTP_PORT: 'auto',
      HERALD_MQTT_PORT: '0',
      HERALD_WS_PORT: '0',
    })
    const {
      child: node,
      ports: { mqtt },
    } = await start('node', {
      HERALD_NODE_ID: 'bench-node',
      HERALD_MQTT_PORT: 'auto',
      HERALD_WS_PORT: 'auto',
      HERALD_HTTP_PORT: '0',
    })
    return {
      name: 'herald-redis-split',
      kind: 'herald',
      mode: 'redis',
      url: `mqtt://127.0.0.1:${mqtt}`,
      httpUrl: `http://127.0.0.1:${http}`,
      pid: node.pid!,
      token: (userId, role = 'user') => mintToken(SECRET, userId, { role, ttl: '6h' }),
      rssKiB: () => rssOf(node.pid!),
      cpuMs: () => ({ server: cpuMsOf(node.pid) + cpuMsOf(presence.pid), redis: cpuMsOf(redis.pid) }),
      nodePids: [node.pid!, presence.pid!],
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

export async function startAedes(mode: 'memory' | 'redis'): Promise<Target> {
  const redis = mode === 'redis' ? await RedisServer.start() : undefined
  const child = spawnWithFdLimit(
    BASELINE,
    [],
    {
      PATH: process.env.PATH ?? '',
      ...(redis ? { BASELINE_REDIS_URL: redis.url } : {}),
    },
    false,
    nodeArgs(),
  )
  const ports = await readyLine(child, (l) => l.ready as { mqtt: number } | undefined, 'bare aedes')
  return {
    name: `aedes-${mode}`,
    kind: 'aedes',
    mode,
    url: `mqtt://127.0.0.1:${ports.mqtt}`,
    pid: child.pid!,
    token: async () => 'unused',
    rssKiB: () => rssOf(child.pid!),
    cpuMs: () => ({ server: cpuMsOf(child.pid), redis: cpuMsOf(redis?.pid) }),
    nodePids: [child.pid!],
    stop: async () => {
      await stopChild(child)
      await redis?.destroy()
    },
  }
}

export function hasMosquitto(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v mosquitto'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export async function startMosquitto(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-mosquitto-'))
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'max_connections -1',
      'log_dest none',
      'persistence false',
      '',
    ].join('\n'),
  )
  const { spawn } = await import('node:child_process')
  const child = spawn(
    'sh',
    ['-c', `ulimit -n 1048576 2>/dev/null || ulimit -n $(ulimit -Hn); exec mosquitto -c ${conf}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  // mosquitto prints nothing with logging off: wait until the port answers
  const deadline = Date.now() + 10_000
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' }, () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) break
    if (Date.now() > deadline) throw new Error('mosquitto did not start')
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    name: 'mosquitto',
    kind: 'mosquitto',
    mode: 'memory',
    url: `mqtt://127.0.0.1:${port}`,
    pid: child.pid!,
    token: async () => 'unused',
    rssKiB: () => {
      // the broker is the `mosquitto` process exec'd by sh (same pid)
      return rssOf(child.pid!)
    },
    cpuMs: () => ({ server: cpuMsOf(child.pid), redis: 0 }),
    nodePids: [],
    stop: async () => {
      await stopChild(child)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
