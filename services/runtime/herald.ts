/**
 * Process composition. One function starts any of Herald's three shapes from one config:
 *   all       access node + presence service + HTTP API (`herald start`, `npm start`)
 *   node      access node only, with /healthz and /metrics (`herald node`)
 *   presence  presence service + HTTP API, no MQTT listeners (`herald presence`)
 * Memory or Redis is chosen by HERALD_REDIS_URL alone; the code above the backend is the same.
 */
import { Aedes } from 'aedes'
import { AccessNode } from '../../broker/node.js'
import { Authenticator, resolveSecret } from '../core/auth.js'
import { ConfigError, type HeraldConfig } from '../core/config.js'
import type { Logger } from '../core/logger.js'
import { Metrics } from '../core/metrics.js'
import { everyoneVisible, type VisibilityPolicy } from '../core/visibility.js'
import { presenceRoutes } from '../http/api.js'
import { messageRoutes } from '../http/messages.js'
import { Router } from '../http/router.js'
import { type HttpListener, healthRoutes, listenHttp } from '../http/server.js'
import { MessageSender } from '../messaging/sender.js'
import { brokerPublisher } from '../presence/publisher.js'
import { PresenceService } from '../presence/service.js'
import { type Backend, memoryBackend, redisBackend } from './backend.js'

export type HeraldMode = 'all' | 'node' | 'presence'

export interface HeraldOptions {
  config: HeraldConfig
  logger: Logger
  mode: HeraldMode
  visibility?: VisibilityPolicy
}

export class Herald {
  node: AccessNode | undefined
  service: PresenceService | undefined
  http: HttpListener | undefined
  /** The Aedes instance the presence service publishes through (the node's, or a headless one). */
  private serviceBroker: Aedes | undefined
  /** Where the generated development secret was written, if it was. */
  generatedSecret: string | undefined
  private closing: Promise<void> | undefined

  private constructor(
    readonly opts: HeraldOptions,
    readonly backend: Backend,
    readonly metrics: Metrics,
    readonly auth: Authenticator,
  ) {}

  get config(): HeraldConfig {
    return this.opts.config
  }

  get ports(): { mqtt?: number; ws?: number; http?: number } {
    return { ...this.node?.ports, ...(this.http ? { http: this.http.port } : {}) }
  }

  static async start(opts: HeraldOptions): Promise<Herald> {
    const { config, logger, mode } = opts
    const secret = await resolveSecret(config, { generate: mode === 'all' && !config.authPublicKey })
    const publicKeyFiles = config.authPublicKey?.split(',').map((f) => f.trim())
    if (!secret.secret && !publicKeyFiles) {
      throw new ConfigError('HERALD_AUTH_SECRET', 'HERALD_AUTH_SECRET or HERALD_AUTH_PUBLIC_KEY is required')
    }
    const auth = await Authenticator.create({ secret: secret.secret, publicKeyFiles })
    const backend = config.redisUrl ? redisBackend(config, logger) : memoryBackend(config)
    const herald = new Herald(opts, backend, new Metrics({ defaults: true }), auth)
    herald.generatedSecret = secret.generatedAt
    try {
      await herald.boot()
    } catch (err) {
      await herald.close().catch(() => {})
      throw err
    }
    return herald
  }

  private async boot(): Promise<void> {
    const { config, logger, mode } = this.opts
    const visibility = this.opts.visibility ?? everyoneVisible
    if (mode !== 'presence') {
      const bus = this.backend.bus()
      this.node = await AccessNode.start({
        config,
        logger,
        metrics: this.metrics,
        auth: this.auth,
        epoch: await this.backend.nextNodeEpoch(config.nodeId),
        sink: this.backend.sink(config.nodeId),
        mq: bus.mq,
        persistence: bus.persistence,
        sessions: {
          ...bus.sessions,
          bounds: { maxIdleMs: config.sessionMaxIdleMs, maxQueue: config.sessionMaxQueue },
        },
        messages: this.backend.messages,
        visibility,
      })
    }
    if (mode !== 'node') {
      if (this.node) {
        this.serviceBroker = this.node.broker
      } else {
        // the presence service speaks on the cluster bus through an Aedes without listeners
        const bus = this.backend.bus()
        this.serviceBroker = await Aedes.createBroker({
          id: `presence-${config.nodeId}`,
          mq: bus.mq,
          persistence: bus.persistence,
        })
      }
      const tracker = this.node?.tracker
      this.service = new PresenceService({
        store: this.backend.store,
        source: this.backend.source(),
        publisher: brokerPublisher(this.serviceBroker),
        logger,
        metrics: this.metrics,
        epoch: await this.backend.nextServiceEpoch(),
        heartbeatMs: config.nodeHeartbeatMs,
        activity: tracker ? (token) => tracker.lastActivity(token) : undefined,
      })
      await this.service.start()
    }
    if (config.httpPort !== 0) {
      const router = new Router()
      healthRoutes(router, { metrics: this.metrics, ready: () => this.ready() })
      if (this.service) {
        const service = this.service
        const store = this.backend.store
        presenceRoutes(router, {
          auth: this.auth,
          visibility,
          heartbeatMs: config.nodeHeartbeatMs,
          presence: {
            get: (id) => service.get(id),
            getMany: (ids) => service.getMany(ids),
            stats: () => store.stats(),
            nodes: () => store.nodes(),
          },
        })
        const broker = this.serviceBroker!
        messageRoutes(router, {
          auth: this.auth,
          messages: this.backend.messages,
          maxMessageBytes: config.maxMessageBytes,
          sender: new MessageSender(this.backend.messages, (topic, payload) =>
            broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, () => {}),
          ),
        })
      }
      this.http = await listenHttp({ router, host: config.host, port: config.httpPort, logger })
    }
  }

  async ready(): Promise<boolean> {
    return !this.closing && (await this.backend.ping())
  }

  /** Graceful shutdown: the node closes its clients (node-shutdown), the service applies what is left. */
  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    // the service applies the node's last events (node-shutdown) while the bus still carries
    // its presence documents
    const drain = async () => {
      await this.service?.drain(5000)
    }
    if (this.node) await this.node.close({ beforeBusClose: drain })
    else await drain()
    await this.service?.stop()
    if (this.serviceBroker && this.serviceBroker !== this.node?.broker) {
      const broker = this.serviceBroker
      await new Promise<void>((resolve) => broker.close(() => resolve()))
    }
    await this.http?.close()
    await this.backend.close()
  }
}
