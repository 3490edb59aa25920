/**
 * Herald configuration: every setting has an environment variable and a flag (CONTRACT.md).
 * One table describes them all; `loadConfig` merges flags over env over defaults with `??`
 * (so `0` stays `0`) and validates each value, throwing a ConfigError that names the setting.
 */
import { randomBytes } from 'node:crypto'

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/** A TCP port, `0` for "listener off", or `'auto'` for "any free port" (tests, benchmarks). */
export type PortSetting = number | 'auto'

export interface HeraldConfig {
  /** Access node id, used in `$SYS/<nodeId>/…`. Random per process in memory mode; required with Redis. */
  nodeId: string
  /** MQTT over TCP. Default 1883; 0 = off. */
  mqttPort: PortSetting
  /** MQTT over WebSocket at path /mqtt. Default 8083; 0 = off. */
  wsPort: PortSetting
  /** HTTP API, /metrics, /healthz, /readyz and the web page. Default 8080; 0 = off. */
  httpPort: PortSetting
  /** Bind address of every listener. Default 127.0.0.1. */
  host: string
  /** Unset = in-memory store, single process. Set = Redis store, cluster bus and shared sessions. */
  redisUrl: string | undefined
  /** Key prefix for everything Herald writes to Redis. Default `herald:`. */
  redisPrefix: string
  /** HS256 secret for JWTs. Unset: the all-in-one process generates one into the data folder. */
  authSecret: string | undefined
  /** PEM file(s), comma separated, with RS256/ES256 public keys (several keys = rotation). */
  authPublicKey: string | undefined
  /** Local state of the all-in-one process (dev secret, message journal). Default `./.herald`. */
  dataDir: string
  /**
   * Memory mode: messages, receipts and de-duplication are journaled to
   * `<dataDir>/messages.journal` before they are acknowledged, so a restart keeps them. Default true.
   */
  messageJournal: boolean
  /** Node liveness interval in ms; a node silent for 3 intervals is dead. Default 5000. */
  nodeHeartbeatMs: number
  /** pino level. Default info. */
  logLevel: LogLevel
  /** Largest MQTT packet the access node accepts, in bytes (the packet-size guard). Default 256 KiB. */
  maxPacketBytes: number
  /** Largest message body (envelope) a publish may carry, in bytes. Default 64 KiB. */
  maxMessageBytes: number
  /** Largest keepalive a client may ask for, in seconds (0 = no limit). Default 0. */
  keepaliveLimit: number
  /** How long a takeover may leave a user without a connection before it counts as offline, ms. */
  takeoverGraceMs: number
  /** How long a CONNECT may take to arrive after the socket opens, ms. Default 10000. */
  connectTimeoutMs: number
  /** Most messages kept in one user's history stream. Default 10000. */
  historyMaxLen: number
  /** Memory mode: the most bytes of messages all histories hold together. Default 512 MiB. */
  historyMaxBytes: number
  /** Oldest message kept in a history stream (and offline queues), ms. Default 7 days. */
  historyMaxAgeMs: number
  /** How long (from, id) is remembered for de-duplication, ms. Default 24 h. */
  dedupWindowMs: number
  /** Persistent MQTT sessions idle longer than this are removed, ms. Default 7 days. */
  sessionMaxIdleMs: number
  /** Most messages queued for one offline persistent session. Default 1000. */
  sessionMaxQueue: number

  /** Who sees whose presence: `all`, `none`, or an http(s) roster callback URL. Default all. */
  visibility: string
  /** How long a roster callback's answer is remembered, ms. Default 30000. */
  visibilityCacheMs: number
  /** How long a connection may outlive its token's `exp` before it is closed, ms. Default 30000. */
  tokenGraceMs: number
  /** mqtts (MQTT over TLS) port; 0 = off (default). Needs tlsCert and tlsKey. */
  mqttsPort: PortSetting
  /** wss (MQTT over secure WebSocket, path /mqtt) port; 0 = off (default). */
  wssPort: PortSetting
  /** PEM certificate chain file for mqtts and wss. */
  tlsCert: string | undefined
  /** PEM private key file for mqtts and wss. */
  tlsKey: string | undefined

  /** `default`, or `relaxed` (tests, benchmarks): limits not set explicitly take their relaxed value. */
  limits: 'default' | 'relaxed'
  /** Connects of one device (clientId) allowed within flapWindowMs, on all nodes. Default 3. */
  flapConnects: number
  /** The flapping window, ms. Default 10000. */
  flapWindowMs: number
  /** How long a flapping device (or user) is refused, ms. Default 30000. */
  flapCooldownMs: number
  /** Connects of one user (all devices) allowed within flapWindowMs, on all nodes. Default 20. */
  userConnects: number
  /** New connections per second from one IP address, per node (burst = twice that). Default 50. */
  ipConnectsPerSec: number
  /** Open connections of one user on one node. Default 32. */
  maxConnectionsPerUser: number
  /** Subscriptions one client may hold. Default 1000. */
  maxSubscriptions: number
  /** Publishes per second one session may make (burst = twice that). Default 100. */
  publishPerSec: number
  /** History pages and presence queries per second one user (role `user`) may ask over HTTP; burst twice that. 0 = no limit. Default 20. */
  httpUserPerSec: number
  /** QoS 2 publishes one client may have in flight (Aedes maxInflightInbound). Default 100. */
  maxInflight: number
  /** Most levels in a topic; deeper is protocol abuse (connection closed). Default 16. */
  maxTopicLevels: number
  /** A client that does not read what it is sent for this long is disconnected, ms. Default 30000. */
  drainTimeoutMs: number
  /**
   * A graceful shutdown (SIGTERM, SIGINT) that has not finished after this long exits anyway,
   * with code 1: with Redis unreachable it would otherwise wait forever. ms, 0 = wait. Default 15000.
   */
  shutdownTimeoutMs: number

  /**
   * Conformance mode: no tokens, any clientId and topic except `anonymousDeny`, no presence.
   * Only on a loopback bind; for running outside MQTT test suites against the access node.
   */
  insecureAnonymous: boolean
  /** Topic filters refused in conformance mode (subscribe: SUBACK 0x80; publish: dropped). */
  anonymousDeny: string[]
}

export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message)
  }
}

interface Spec<K extends keyof HeraldConfig> {
  key: K
  /** A switch: `--flag` takes no value on the command line (env: true/false, 1/0). */
  boolean?: true
  /** The value under the `relaxed` limits profile, when the setting is not given explicitly. */
  relaxed?: HeraldConfig[K]
  env: string
  flag: string
  describe: string
  /** Parses and validates a raw string; throws a plain Error whose message completes "must be …". */
  parse: (raw: string) => HeraldConfig[K]
  fallback: () => HeraldConfig[K]
}

const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function int(min: number, max: number) {
  return (raw: string): number => {
    const n = Number(raw)
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new Error(`must be an integer from ${min} to ${max}`)
    }
    return n
  }
}

function port(raw: string): PortSetting {
  if (raw === 'auto') return 'auto'
  return int(0, 65535)(raw)
}

function nonEmpty(raw: string): string {
  if (raw.trim() === '') throw new Error('must not be empty')
  return raw
}

function parseBoolean(raw: string): boolean {
  if (/^(1|true|yes)$/i.test(raw)) return true
  if (/^(0|false|no)$/i.test(raw)) return false
  throw new Error('must be true or false')
}

const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/

function spec<K extends keyof HeraldConfig>(s: Spec<K>): Spec<K> {
  return s
}

/** The table: one row per setting. The CLI builds its flags from it; the README documents it. */
export const SETTINGS = [
  spec({
    key: 'nodeId',
    env: 'HERALD_NODE_ID',
    flag: 'node-id',
    describe: 'access node id (random per process in memory mode; required with Redis)',
    parse: (raw) => {
      if (!NODE_ID.test(raw)) throw new Error('must match [A-Za-z0-9._-]{1,64}')
      return raw
    },
    fallback: () => `node-${randomBytes(4).toString('hex')}`,
  }),
  spec({
    key: 'mqttPort',
    env: 'HERALD_MQTT_PORT',
    flag: 'mqtt-port',
    describe: 'MQTT over TCP port (0 = off, auto = any free port)',
    parse: port,
    fallback: () => 1883,
  }),
  spec({
    key: 'wsPort',
    env: 'HERALD_WS_PORT',
    flag: 'ws-port',
    describe: 'MQTT over WebSocket port, path /mqtt (0 = off, auto = any free port)',
    parse: port,
    fallback: () => 8083,
  }),
  spec({
    key: 'httpPort',
    env: 'HERALD_HTTP_PORT',
    flag: 'http-port',
    describe: 'HTTP API, /metrics, /healthz, /readyz, web page (0 = off, auto = any free port)',
    parse: port,
    fallback: () => 8080,
  }),
  spec({
    key: 'host',
    env: 'HERALD_HOST',
    flag: 'host',
    describe: 'bind address',
    parse: nonEmpty,
    fallback: () => '127.0.0.1',
  }),
  spec({
    key: 'redisUrl',
    env: 'HERALD_REDIS_URL',
    flag: 'redis-url',
    describe: 'Redis URL; unset = in-memory store, single process',
    parse: (raw) => {
      if (!/^rediss?:\/\//.test(raw)) throw new Error('must be a redis:// or rediss:// URL')
      return raw
    },
    fallback: () => undefined,
  }),
  spec({
    key: 'redisPrefix',
    env: 'HERALD_REDIS_PREFIX',
    flag: 'redis-prefix',
    describe: 'prefix of every Redis key Herald writes',
    parse: (raw) => {
      if (!/^[A-Za-z0-9:._-]{1,64}$/.test(raw)) throw new Error('must match [A-Za-z0-9:._-]{1,64}')
      return raw
    },
    fallback: () => 'herald:',
  }),
  spec({
    key: 'authSecret',
    env: 'HERALD_AUTH_SECRET',
    flag: 'auth-secret',
    describe: 'HS256 secret for JWTs (default: generated once into the data folder)',
    parse: (raw) => {
      if (raw.length < 16) throw new Error('must be at least 16 characters')
      return raw
    },
    fallback: () => undefined,
  }),
  spec({
    key: 'authPublicKey',
    env: 'HERALD_AUTH_PUBLIC_KEY',
    flag: 'auth-public-key',
    describe: 'PEM file(s), comma separated, with RS256/ES256 public keys',
    parse: nonEmpty,
    fallback: () => undefined,
  }),
  spec({
    key: 'dataDir',
    env: 'HERALD_DATA_DIR',
    flag: 'data-dir',
    describe: 'local state of the all-in-one process (dev secret, message journal)',
    parse: nonEmpty,
    fallback: () => './.herald',
  }),
  spec({
    key: 'messageJournal',
    env: 'HERALD_MESSAGE_JOURNAL',
    flag: 'message-journal',
    describe:
      'memory mode: journal messages, receipts and de-duplication to <data-dir>/messages.journal before acknowledging them, so a restart keeps them (true or false)',
    parse: parseBoolean,
    fallback: () => true,
  }),
  spec({
    key: 'nodeHeartbeatMs',
    env: 'HERALD_NODE_HEARTBEAT_MS',
    flag: 'node-heartbeat-ms',
    describe: 'node liveness interval; a node silent for 3 intervals is dead',
    parse: int(50, 600_000),
    fallback: () => 5000,
  }),
  spec({
    key: 'logLevel',
    env: 'HERALD_LOG_LEVEL',
    flag: 'log-level',
    describe: 'pino level: fatal, error, warn, info, debug, trace, silent',
    parse: (raw) => {
      if (!(LEVELS as readonly string[]).includes(raw)) throw new Error(`must be one of ${LEVELS.join(', ')}`)
      return raw as LogLevel
    },
    fallback: () => 'info',
  }),
  spec({
    key: 'maxPacketBytes',
    env: 'HERALD_MAX_PACKET_BYTES',
    flag: 'max-packet-bytes',
    describe: 'largest MQTT packet accepted, in bytes',
    parse: int(1024, 256 * 1024 * 1024),
    fallback: () => 256 * 1024,
  }),
  spec({
    key: 'maxMessageBytes',
    env: 'HERALD_MAX_MESSAGE_BYTES',
    flag: 'max-message-bytes',
    describe: 'largest message envelope accepted, in bytes',
    parse: int(256, 16 * 1024 * 1024),
    fallback: () => 64 * 1024,
  }),
  spec({
    key: 'keepaliveLimit',
    env: 'HERALD_KEEPALIVE_LIMIT',
    flag: 'keepalive-limit',
    describe: 'largest keepalive a client may ask for, seconds (0 = no limit)',
    parse: int(0, 65535),
    fallback: () => 0,
  }),
  spec({
    key: 'takeoverGraceMs',
    env: 'HERALD_TAKEOVER_GRACE_MS',
    flag: 'takeover-grace-ms',
    describe: 'how long a takeover may leave a user without connections before it counts as offline',
    parse: int(0, 60_000),
    fallback: () => 3000,
  }),
  spec({
    key: 'connectTimeoutMs',
    env: 'HERALD_CONNECT_TIMEOUT_MS',
    flag: 'connect-timeout-ms',
    describe: 'how long a CONNECT may take to arrive after the socket opens',
    parse: int(100, 300_000),
    fallback: () => 10_000,
  }),
  spec({
    key: 'historyMaxLen',
    env: 'HERALD_HISTORY_MAX_LEN',
    flag: 'history-max-len',
    describe: "most messages kept in one user's history stream",
    parse: int(10, 10_000_000),
    fallback: () => 10_000,
  }),
  spec({
    key: 'historyMaxBytes',
    env: 'HERALD_HISTORY_MAX_BYTES',
    flag: 'history-max-bytes',
    describe:
      'memory mode: the most bytes of messages all histories hold together; past it new messages are refused until old ones age out (0 = no bound)',
    parse: int(0, Number.MAX_SAFE_INTEGER),
    fallback: () => 512 * 1024 * 1024,
  }),
  spec({
    key: 'historyMaxAgeMs',
    env: 'HERALD_HISTORY_MAX_AGE_MS',
    flag: 'history-max-age-ms',
    describe: 'oldest message kept in a history stream and in offline session queues, ms',
    parse: int(1000, 365 * 24 * 3600_000),
    fallback: () => 7 * 24 * 3600_000,
  }),
  spec({
    key: 'dedupWindowMs',
    env: 'HERALD_DEDUP_WINDOW_MS',
    flag: 'dedup-window-ms',
    describe: 'how long a (from, id) pair is remembered for de-duplication, ms',
    parse: int(1000, 365 * 24 * 3600_000),
    fallback: () => 24 * 3600_000,
  }),
  spec({
    key: 'sessionMaxIdleMs',
    env: 'HERALD_SESSION_MAX_IDLE_MS',
    flag: 'session-max-idle-ms',
    describe: 'persistent MQTT sessions idle longer than this are removed, ms',
    parse: int(1000, 365 * 24 * 3600_000),
    fallback: () => 7 * 24 * 3600_000,
  }),
  spec({
    key: 'sessionMaxQueue',
    env: 'HERALD_SESSION_MAX_QUEUE',
    flag: 'session-max-queue',
    describe: 'most messages queued for one offline persistent session (older ones: catch up by offset)',
    parse: int(1, 1_000_000),
    fallback: () => 1000,
  }),
  spec({
    key: 'visibility',
    env: 'HERALD_VISIBILITY',
    flag: 'visibility',
    describe: 'who sees whose presence: all, none, or an http(s) roster callback URL',
    parse: (raw) => {
      if (raw === 'all' || raw === 'none' || /^https?:\/\/[^\s]+$/.test(raw)) return raw
      throw new Error('must be all, none, or an http(s):// URL')
    },
    fallback: () => 'all',
  }),
  spec({
    key: 'visibilityCacheMs',
    env: 'HERALD_VISIBILITY_CACHE_MS',
    flag: 'visibility-cache-ms',
    describe: "how long a roster callback's answer is remembered, ms",
    parse: int(0, 3600_000),
    fallback: () => 30_000,
  }),
  spec({
    key: 'tokenGraceMs',
    env: 'HERALD_TOKEN_GRACE_MS',
    flag: 'token-grace-ms',
    describe: "how long a connection may outlive its token's exp before it is closed, ms",
    parse: int(0, 24 * 3600_000),
    fallback: () => 30_000,
  }),
  spec({
    key: 'mqttsPort',
    env: 'HERALD_MQTTS_PORT',
    flag: 'mqtts-port',
    describe: 'MQTT over TLS port (0 = off; needs --tls-cert and --tls-key)',
    parse: port,
    fallback: () => 0,
  }),
  spec({
    key: 'wssPort',
    env: 'HERALD_WSS_PORT',
    flag: 'wss-port',
    describe: 'MQTT over secure WebSocket port, path /mqtt (0 = off; needs --tls-cert and --tls-key)',
    parse: port,
    fallback: () => 0,
  }),
  spec({
    key: 'tlsCert',
    env: 'HERALD_TLS_CERT',
    flag: 'tls-cert',
    describe: 'PEM certificate chain file for mqtts and wss',
    parse: nonEmpty,
    fallback: () => undefined,
  }),
  spec({
    key: 'tlsKey',
    env: 'HERALD_TLS_KEY',
    flag: 'tls-key',
    describe: 'PEM private key file for mqtts and wss',
    parse: nonEmpty,
    fallback: () => undefined,
  }),
  spec({
    key: 'limits',
    env: 'HERALD_LIMITS',
    flag: 'limits',
    describe: 'limits profile: default, or relaxed (tests, benchmarks) for every limit not set explicitly',
    parse: (raw) => {
      if (raw !== 'default' && raw !== 'relaxed') throw new Error('must be default or relaxed')
      return raw
    },
    fallback: () => 'default',
  }),
  spec({
    key: 'flapConnects',
    env: 'HERALD_FLAP_CONNECTS',
    flag: 'flap-connects',
    describe: 'connects of one device (clientId) allowed per flapping window, on all nodes (0 = no limit)',
    parse: int(0, 1_000_000),
    fallback: () => 3,
    relaxed: 0,
  }),
  spec({
    key: 'flapWindowMs',
    env: 'HERALD_FLAP_WINDOW_MS',
    flag: 'flap-window-ms',
    describe: 'the flapping window, ms',
    parse: int(100, 3600_000),
    fallback: () => 10_000,
  }),
  spec({
    key: 'flapCooldownMs',
    env: 'HERALD_FLAP_COOLDOWN_MS',
    flag: 'flap-cooldown-ms',
    describe: 'how long a flapping device or user is refused, ms',
    parse: int(0, 24 * 3600_000),
    fallback: () => 30_000,
  }),
  spec({
    key: 'userConnects',
    env: 'HERALD_USER_CONNECTS',
    flag: 'user-connects',
    describe: 'connects of one user (all devices) allowed per flapping window, on all nodes (0 = no limit)',
    parse: int(0, 1_000_000),
    fallback: () => 20,
    relaxed: 0,
  }),
  spec({
    key: 'ipConnectsPerSec',
    env: 'HERALD_IP_CONNECTS_PER_SEC',
    flag: 'ip-connects-per-sec',
    describe: 'new connections per second from one IP address, per node; burst twice that (0 = no limit)',
    parse: int(0, 1_000_000),
    fallback: () => 50,
    relaxed: 0,
  }),
  spec({
    key: 'maxConnectionsPerUser',
    env: 'HERALD_MAX_CONNECTIONS_PER_USER',
    flag: 'max-connections-per-user',
    describe: 'open connections of one user on one node (0 = no limit)',
    parse: int(0, 1_000_000),
    fallback: () => 32,
    relaxed: 0,
  }),
  spec({
    key: 'maxSubscriptions',
    env: 'HERALD_MAX_SUBSCRIPTIONS',
    flag: 'max-subscriptions',
    describe: 'subscriptions one client may hold (0 = no limit)',
    parse: int(0, 10_000_000),
    fallback: () => 1000,
    relaxed: 0,
  }),
  spec({
    key: 'publishPerSec',
    env: 'HERALD_PUBLISH_PER_SEC',
    flag: 'publish-per-sec',
    describe: 'publishes per second one session may make; burst twice that (0 = no limit)',
    parse: int(0, 10_000_000),
    fallback: () => 100,
    relaxed: 0,
  }),
  spec({
    key: 'httpUserPerSec',
    env: 'HERALD_HTTP_USER_PER_SEC',
    flag: 'http-user-per-sec',
    describe:
      'history pages and presence queries per second one user (role user) may ask over HTTP, burst twice that; past it 429 (0 = no limit; services and admins are not limited)',
    parse: int(0, 10_000_000),
    fallback: () => 20,
    relaxed: 0,
  }),
  spec({
    key: 'maxInflight',
    env: 'HERALD_MAX_INFLIGHT',
    flag: 'max-inflight',
    describe: 'QoS 2 publishes one client may have in flight',
    parse: int(1, 65535),
    fallback: () => 100,
    relaxed: 1000,
  }),
  spec({
    key: 'maxTopicLevels',
    env: 'HERALD_MAX_TOPIC_LEVELS',
    flag: 'max-topic-levels',
    describe: 'most levels in a topic (deeper closes the connection as protocol abuse)',
    parse: int(4, 100),
    fallback: () => 16,
  }),
  spec({
    key: 'drainTimeoutMs',
    env: 'HERALD_DRAIN_TIMEOUT_MS',
    flag: 'drain-timeout-ms',
    describe: 'a client that does not read what it is sent for this long is disconnected, ms (0 = never)',
    parse: int(0, 3600_000),
    fallback: () => 30_000,
  }),
  spec({
    key: 'shutdownTimeoutMs',
    env: 'HERALD_SHUTDOWN_TIMEOUT_MS',
    flag: 'shutdown-timeout-ms',
    describe: 'a graceful shutdown still running after this long exits anyway (code 1), ms (0 = wait)',
    parse: int(0, 600_000),
    fallback: () => 15_000,
  }),
  spec({
    key: 'insecureAnonymous',
    env: 'HERALD_INSECURE_ANONYMOUS',
    flag: 'insecure-anonymous',
    describe:
      'conformance mode: no tokens, any clientId and topic but the deny list, no presence (loopback bind only)',
    boolean: true,
    parse: parseBoolean,
    fallback: () => false,
  }),
  spec({
    key: 'anonymousDeny',
    env: 'HERALD_ANONYMOUS_DENY',
    flag: 'anonymous-deny',
    describe: 'topic filters refused in conformance mode, comma separated',
    parse: (raw) =>
      raw
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== ''),
    fallback: () => ['test/nosubscribe', 'presence/#', 'users/#', '$SYS/#'],
  }),
] as const

/**
 * A refused value as the error message quotes it: never a credential. The message goes to
 * stderr, which process managers keep as a log. The HS256 secret is not shown at all; in URL
 * settings (a Redis URL, a roster callback) whatever comes before an `@` — user and password —
 * is masked up to the last `@`, also in a URL malformed enough to be refused (`redis//:pw@host`).
 */
function shown(key: keyof HeraldConfig, raw: string): string {
  if (key === 'authSecret') return `[redacted, ${raw.length} characters]`
  if (key === 'redisUrl' || key === 'visibility') {
    return JSON.stringify(
      raw.replace(/^([a-z][a-z0-9+.-]*:?\/*)?.*@/i, (_m, scheme?: string) => `${scheme ?? ''}***@`),
    )
  }
  return JSON.stringify(raw)
}

/** Raw values by setting key, as given on the command line (already strings or absent). */
export type RawFlags = Partial<Record<keyof HeraldConfig, string>>

/**
 * Builds a configuration from flags over env over defaults. `overrides` (typed values, used by
 * tests and embedders) win over everything.
 */
export function loadConfig(
  opts: {
    env?: NodeJS.ProcessEnv
    flags?: RawFlags
    overrides?: Partial<HeraldConfig>
    /** Access nodes need an explicit id in Redis mode (the presence service does not). */
    nodeIdRequiredWithRedis?: boolean
  } = {},
): HeraldConfig {
  const env = opts.env ?? process.env
  const flags = opts.flags ?? {}
  const out: Record<string, unknown> = {}
  const defaulted = new Set<keyof HeraldConfig>()
  let defaultedNodeId = false
  for (const s of SETTINGS) {
    const override = opts.overrides?.[s.key]
    if (override !== undefined) {
      out[s.key] = override
      continue
    }
    const fromFlag = flags[s.key]
    const fromEnv = env[s.env]
    const raw = fromFlag ?? (fromEnv === '' ? undefined : fromEnv)
    if (raw === undefined) {
      out[s.key] = s.fallback()
      defaulted.add(s.key)
      if (s.key === 'nodeId') defaultedNodeId = true
      continue
    }
    try {
      out[s.key] = s.parse(raw)
    } catch (err) {
      const where = fromFlag !== undefined ? `--${s.flag}` : s.env
      throw new ConfigError(s.env, `invalid ${where}=${shown(s.key, raw)}: ${(err as Error).message}`)
    }
  }
  if (out.limits === 'relaxed') {
    for (const s of SETTINGS) {
      if ('relaxed' in s && defaulted.has(s.key)) out[s.key] = s.relaxed
    }
  }
  const cfg = out as unknown as HeraldConfig
  if ((cfg.mqttsPort !== 0 || cfg.wssPort !== 0) && (!cfg.tlsCert || !cfg.tlsKey)) {
    throw new ConfigError(
      'HERALD_TLS_CERT',
      'HERALD_TLS_CERT and HERALD_TLS_KEY (--tls-cert, --tls-key) are required when mqtts or wss is on',
    )
  }
  if (cfg.insecureAnonymous && !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(cfg.host)) {
    throw new ConfigError(
      'HERALD_INSECURE_ANONYMOUS',
      `HERALD_INSECURE_ANONYMOUS (--insecure-anonymous) refuses to start on a non-loopback bind (HERALD_HOST=${cfg.host})`,
    )
  }
  if (opts.nodeIdRequiredWithRedis && cfg.redisUrl && defaultedNodeId) {
    throw new ConfigError(
      'HERALD_NODE_ID',
      'HERALD_NODE_ID (--node-id) is required when HERALD_REDIS_URL is set',
    )
  }
  return cfg
}
