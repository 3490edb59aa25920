/**
 * Process composition. One function starts any of Herald's three shapes from one config:
 *   all       access node + presence service + HTTP API (`herald start`, `npm start`)
 *   node      access node only, with /healthz and /metrics (`herald node`)
 *   presence  presence service + HTTP API, no MQTT listeners (`herald presence`)
 * Memory or Redis is chosen by HERALD_REDIS_URL alone; the code above the backend is the same.
 */
import { Aedes } from 'aedes'
import { voidingEmitter } from '../../broker/bus.js'
import { AccessNode, acquireNodeId } from '../../broker/node.js'
import type { Lease } from '../cluster/lease.js'
import { newHolderId } from '../cluster/lease.js'
import { Authenticator, mintToken, resolveSecret } from '../core/auth.js'
import { ConfigError, type HeraldConfig } from '../core/config.js'
import type { Logger } from '../core/logger.js'
import { Metrics } from '../core/metrics.js'
import { topics } from '../core/topics.js'
import { type VisibilityPolicy, visibilityFromConfig } from '../core/visibility.js'
import { adminRoutes } from '../http/admin.js'
import { limitUserRequests, presenceRoutes } from '../http/api.js'
import { messageRoutes } from '../http/messages.js'
import { Router } from '../http/router.js'
import { type HttpListener, healthRoutes, listenHttp } from '../http/server.js'
import { webRoutes } from '../http/web.js'
import { MessageSender } from '../messaging/sender.js'
import { brokerPublisher } from '../presence/publisher.js'
import { PresenceService } from '../presence/service.js'
import { type ActivityLookup, withActivity } from '../presence/view.js'
import { type Backend, memoryBackend, redisBackend } from './backend.js'
import { SingleWriter } from './writer.js'

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
  private sender: MessageSender | undefined
  private writer: SingleWriter | undefined
  private activity: ActivityLookup | undefined
  /** Where the generated development secret was written, if it was. */
  generatedSecret: string | undefined
  private devSecret: string | undefined
  private closing: Promise<void> | undefined
  private revocationTimer: NodeJS.Timeout | undefined
  private nodeLease: Lease | undefined

  private constructor(
    readonly opts: HeraldOptions,
    readonly backend: Backend,
    readonly metrics: Metrics,
    readonly auth: Authenticator,
  ) {}

  get config(): HeraldConfig {
    return this.opts.config
  }

  /** Whether `herald token` can mint tokens for this process (an HS256 secret, not only public keys). */
  get canMintTokens(): boolean {
    return Boolean(this.opts.config.authSecret || this.devSecret)
  }

  get ports(): { mqtt?: number; ws?: number; mqtts?: number; wss?: number; http?: number } {
    return { ...this.node?.ports, ...(this.http ? { http: this.http.port } : {}) }
  }

  static async start(opts: HeraldOptions): Promise<Herald> {
    const { config, logger, mode } = opts
    const secret = await resolveSecret(config, { generate: mode === 'all' && !config.authPublicKey })
    const publicKeyFiles = config.authPublicKey?.split(',').map((f) => f.trim())
    if (!secret.secret && !publicKeyFiles) {
      throw new ConfigError('HERALD_AUTH_SECRET', 'HERALD_AUTH_SECRET or HERALD_AUTH_PUBLIC_KEY is required')
    }
    const backend = config.redisUrl ? redisBackend(config, logger) : await memoryBackend(config, logger)
    let auth: Authenticator
    try {
      auth = await Authenticator.create({
        secret: secret.secret,
        publicKeyFiles,
        revocations: backend.revocations,
      })
    } catch (err) {
      await backend.close().catch(() => {})
      // a missing or unreadable key file is an invalid setting: say which one
      throw new ConfigError(
        'HERALD_AUTH_PUBLIC_KEY',
        `invalid HERALD_AUTH_PUBLIC_KEY (--auth-public-key): ${(err as Error).message}`,
      )
    }
    limitUserRequests(auth, config.httpUserPerSec)
    const herald = new Herald(opts, backend, new Metrics({ defaults: true }), auth)
    herald.generatedSecret = secret.generatedAt
    // the data folder's secret is the development one: the web page may offer a sign-in helper
    if (secret.file && secret.secret) herald.devSecret = secret.secret
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
    const visibility = this.opts.visibility ?? visibilityFromConfig(config, logger)
    await this.backend.revocations.refresh()
    this.revocationTimer = setInterval(() => {
      this.backend.revocations.refresh().catch((err: Error) => {
        logger.warn({ err: err.message }, 'could not refresh revoked tokens; will retry')
      })
    }, 30_000)
    this.revocationTimer.unref()
    if (mode !== 'presence') {
      // the id first, then an epoch: a refused duplicate must not consume one
      const lease = this.backend.lease(`node:${config.nodeId}`, 3 * config.nodeHeartbeatMs)
      await acquireNodeId(lease, config.nodeId, 3 * config.nodeHeartbeatMs)
      this.nodeLease = lease
      const bus = await this.backend.bus()
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
        revocations: this.backend.revocations,
        lease,
        nextEpoch: () => this.backend.nextNodeEpoch(config.nodeId),
        claims: this.backend.claims,
        rates: this.backend.rates,
        visibility,
      })
    }
    if (mode !== 'node') {
      if (this.node) {
        this.serviceBroker = this.node.broker
      } else {
        // the presence service speaks on the cluster bus through an Aedes without listeners,
        // on the bus as the access nodes wrap it (broker/bus.ts): so it does not subscribe to
        // every node's connect announcements either, which it would receive and decode
        const bus = await this.backend.bus()
        this.serviceBroker = await Aedes.createBroker({
          id: `presence-${config.nodeId}`,
          mq: voidingEmitter(bus.mq),
          persistence: bus.persistence,
        })
      }
      const tracker = this.node?.tracker
      this.activity = tracker ? (token) => tracker.lastActivity(token) : undefined
      const serviceBroker = this.serviceBroker
      const sender = new MessageSender(this.backend.messages, (topic, payload) =>
        serviceBroker.publish(
          { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false },
          () => {},
        ),
      )
      this.sender = sender
      const ttlMs = Math.max(2 * config.nodeHeartbeatMs, 1000)
      const writer: SingleWriter = new SingleWriter({
        lease: this.backend.lease('presence', ttlMs, `${config.nodeId}#${newHolderId()}`),
        name: config.nodeId,
        ttlMs,
        logger,
        intact: () => this.backend.intact(),
        activate: async () => {
          const epoch = await this.backend.nextServiceEpoch()
          await this.backend.markIntact(epoch)
          const service = new PresenceService({
            store: this.backend.store,
            source: this.backend.source(),
            publisher: brokerPublisher(serviceBroker),
            logger,
            metrics: this.metrics,
            epoch,
            heartbeatMs: config.nodeHeartbeatMs,
            // longer than a dead node takes to be declared dead, plus the takeover grace
            holdMs: 3 * config.nodeHeartbeatMs + config.takeoverGraceMs,
            activity: this.activity,
            wills: {
              store: this.backend.wills,
              publish: async (w) => {
                await sender.send(w.userId, w.to, {
                  id: w.id,
                  type: w.type,
                  body: w.body,
                  deviceId: w.deviceId,
                })
              },
            },
            onSuperseded: () => writer.superseded(),
          })
          this.service = service
          await service.start()
          announce(serviceBroker, { status: 'up', epoch })
        },
        deactivate: async () => {
          const service = this.service
          this.service = undefined
          if (!service) return
          await service.stop()
          announce(serviceBroker, { status: 'down', epoch: service.epoch })
        },
      })
      this.writer = writer
      await writer.start()
    }
    if (config.httpPort !== 0) {
      const router = new Router()
      healthRoutes(router, { metrics: this.metrics, ready: () => this.ready() })
      if (this.writer) {
        const store = this.backend.store
        // reads come from the store, whichever presence service writes it
        presenceRoutes(router, {
          auth: this.auth,
          visibility,
          heartbeatMs: config.nodeHeartbeatMs,
          presence: {
            get: async (id) => withActivity(await store.get(id), this.activity),
            getMany: async (ids) => (await store.getMany(ids)).map((v) => withActivity(v, this.activity)),
            stats: () => store.stats(),
            nodes: () => store.nodes(),
          },
        })
        const publisher = brokerPublisher(this.serviceBroker!)
        adminRoutes(router, {
          auth: this.auth,
          revocations: this.backend.revocations,
          broadcast: (cmd) => publisher.control('all', cmd),
        })
        messageRoutes(router, {
          auth: this.auth,
          messages: this.backend.messages,
          maxMessageBytes: config.maxMessageBytes,
          sender: this.sender!,
        })
      }
      const devSecret = this.devSecret
      webRoutes(router, {
        wsPort: () => this.node?.ports.ws,
        ...(devSecret ? { devToken: (userId: string) => mintToken(devSecret, userId, { ttl: '12h' }) } : {}),
      })
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
    clearInterval(this.revocationTimer)
    // the service applies the node's last events (node-shutdown) while the bus still carries
    // its presence documents
    const drain = async () => {
      await this.service?.drain(5000)
    }
    if (this.node) await this.node.close({ beforeBusClose: drain })
    else await drain()
    await this.writer?.stop()
    if (this.serviceBroker && this.serviceBroker !== this.node?.broker) {
      const broker = this.serviceBroker
      await new Promise<void>((resolve) => broker.close(() => resolve()))
    }
    await this.http?.close()
    await this.nodeLease?.release().catch(() => {})
    await this.backend.close()
  }
}

/** The retained `$SYS/herald/presence-service` document access nodes watch. */
function announce(broker: Aedes, status: { status: 'up' | 'down'; epoch: number }): void {
  broker.publish(
    {
      cmd: 'publish',
      topic: topics.presenceService,
      payload: Buffer.from(JSON.stringify({ ...status, ts: Date.now() })),
      qos: 0,
      retain: true,
      dup: false,
    },
    () => {},
  )
}
