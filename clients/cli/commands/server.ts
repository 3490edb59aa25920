/** `herald start | node | presence`: run Herald's processes. */
import type { Command } from 'commander'
import { ConfigError, loadConfig, type RawFlags, SETTINGS } from '../../../services/core/config.js'
import { createLogger } from '../../../services/core/logger.js'
import type { Herald, HeraldMode } from '../../../services/runtime/herald.js'

const DESCRIPTIONS: Record<HeraldMode, string> = {
  all: 'run everything in one process: access node + presence service + HTTP API',
  node: 'run an access node only (MQTT over TCP and WebSocket, /healthz, /metrics)',
  presence: 'run the presence service and the HTTP API only (no MQTT listeners)',
}

/** camelCase key -> commander's option property name for `--kebab-flag`. */
function flagsFrom(opts: Record<string, unknown>): RawFlags {
  const out: RawFlags = {}
  for (const s of SETTINGS) {
    const prop = s.flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())
    const value = opts[prop]
    if (typeof value === 'string') out[s.key] = value
    if (value === true) out[s.key] = 'true' // a switch given without a value
  }
  return out
}

export function serverCommand(program: Command, name: 'start' | 'node' | 'presence'): void {
  const mode: HeraldMode = name === 'start' ? 'all' : name
  const cmd = program.command(name).description(DESCRIPTIONS[mode])
  for (const s of SETTINGS) {
    if ('boolean' in s) cmd.option(`--${s.flag}`, `${s.describe} [env ${s.env}]`)
    else cmd.option(`--${s.flag} <value>`, `${s.describe} [env ${s.env}]`)
  }
  cmd.action(async (opts: Record<string, unknown>) => {
    let config: ReturnType<typeof loadConfig>
    try {
      // `start` and `node` both run an access node: with Redis its id is required (CONTRACT.md)
      config = loadConfig({ flags: flagsFrom(opts), nodeIdRequiredWithRedis: mode !== 'presence' })
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`herald: ${err.message}\n`)
        process.exit(2)
      }
      throw err
    }
    const logger = createLogger(config.logLevel)
    // the runtime (Aedes, ioredis, ...) loads only for the server commands: the others start faster
    const [{ Herald }, { NodeIdInUseError }] = await Promise.all([
      import('../../../services/runtime/herald.js'),
      import('../../../broker/node.js'),
    ])
    let herald: Herald
    try {
      herald = await Herald.start({ config, logger, mode })
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'EADDRINUSE') {
        process.stderr.write(
          `herald: a port is already in use (${e.message}); pick others with --mqtt-port, --ws-port, --http-port\n`,
        )
      } else if (err instanceof ConfigError || err instanceof NodeIdInUseError) {
        process.stderr.write(`herald: ${err.message}\n`)
      } else {
        logger.fatal({ err }, 'herald failed to start')
      }
      process.exit(1)
    }
    const ports = herald.ports
    logger.info({ mode, nodeId: config.nodeId, ports, store: herald.backend.kind }, 'herald ready')
    if (mode === 'all') printBanner(config.host, ports, herald.generatedSecret, herald.canMintTokens)
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now')
        process.exit(1)
      }
      stopping = true
      logger.info({ signal }, 'shutting down')
      // a shutdown waits on Redis (the last events, the lease): with Redis gone, for ever
      if (config.shutdownTimeoutMs > 0) {
        setTimeout(() => {
          logger.error({ ms: config.shutdownTimeoutMs }, 'shutdown did not finish in time; exiting')
          process.exit(1)
        }, config.shutdownTimeoutMs).unref()
      }
      herald.close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed')
          process.exit(1)
        },
      )
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
  })
}

function printBanner(
  bind: string,
  ports: { mqtt?: number; ws?: number; http?: number },
  generated: string | undefined,
  canMint: boolean,
) {
  // an IPv6 literal goes in brackets in a URL (and a wildcard bind is reached on loopback)
  const host = bind === '0.0.0.0' ? '127.0.0.1' : bind === '::' ? '::1' : bind
  const urlHost = host.includes(':') ? `[${host}]` : host
  const lines = [
    '',
    'Herald is running.',
    ports.mqtt ? `  MQTT          mqtt://${urlHost}:${ports.mqtt}` : '',
    ports.ws ? `  WebSocket     ws://${urlHost}:${ports.ws}/mqtt` : '',
    ports.http ? `  HTTP API      http://${urlHost}:${ports.http}   (/healthz, /metrics, /v1/...)` : '',
    ports.http && ports.ws
      ? `  Web page      http://${urlHost}:${ports.http}/   (two tabs, two users: watch presence live)`
      : '',
    generated ? `  A development JWT secret was generated in ${generated} (mode 0600).` : '',
    '',
    canMint
      ? 'Mint a token and connect (clientId = <userId>/<deviceId>, token in the password):'
      : 'Connect with a token your issuer signed (clientId = <userId>/<deviceId>, token in the password):',
    canMint ? '  TOKEN=$(npx herald token alice)' : '',
    ports.mqtt
      ? `  mosquitto_sub -h ${host} -p ${ports.mqtt} -i alice/phone -u alice -P "$TOKEN" -t 'users/alice/inbox' -q 1`
      : '',
    ports.http && canMint
      ? `  curl -H "Authorization: Bearer $(npx herald token ops --role service)" http://${urlHost}:${ports.http}/v1/presence/alice`
      : '',
    '',
  ]
  process.stderr.write(lines.filter((l, i, all) => l !== '' || all[i - 1] !== '').join('\n') + '\n')
}
