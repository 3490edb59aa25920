/**
 * The access node: transports -> packet guard -> Aedes, with Herald's hook pipeline and
 * connection tracker. It owns its connections and knows the truth about them; it never writes
 * presence state itself — it appends events to its log and answers re-sync requests.
 */
import { readFile } from 'node:fs/promises'
import type { Duplex } from 'node:stream'
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket, type Subscription } from 'aedes'
import type { ClaimCounter } from '../services/cluster/claims.js'
import type { Lease } from '../services/cluster/lease.js'
import { MemoryRates, type RateStore } from '../services/cluster/rates.js'
import type { RevocationStore } from '../services/cluster/revocations.js'
import type { Authenticator } from '../services/core/auth.js'
import type { HeraldConfig } from '../services/core/config.js'
import type { Receipt, Refusal } from '../services/core/envelope.js'
import type { Logger } from '../services/core/logger.js'
import type { Metrics } from '../services/core/metrics.js'
import { parseTopic, topicMatches, topics } from '../services/core/topics.js'
import { everyoneVisible, type VisibilityPolicy } from '../services/core/visibility.js'
import type { ControlCommand, EventSink, NodeEvent } from '../services/events/types.js'
import type { MessageStore } from '../services/messaging/store.js'
import type { DisconnectReason, StoredWill } from '../services/presence/types.js'
import { brokerClients, dropDeliveriesBeforeConnack, neutraliseDuplicates } from './aedes-internals.js'
import { voidingEmitter } from './bus.js'
import { type ConnectAttempt, type ConnectGate, createAuthenticate } from './hooks/authenticate.js'
import { authorizeStage, authorizeSubscribe } from './hooks/authorize.js'
import { type PublishContext, type PublishStage, type RpcRequest, runPipeline } from './hooks/pipeline.js'
import { recordStage } from './hooks/record.js'
import { stampStage } from './hooks/stamp.js'
import { validateStage } from './hooks/validate.js'
import { DEMAND_TOPIC, LifecycleDemand } from './lifecycle.js'
import { ByteBudgets, connectGates, ExpiryWatch, IpConnectRate, TokenBucket } from './limits.js'
import { withoutWills } from './persistence-overrides.js'
import { answerRpc, type RpcReply, replyTopic } from './rpc.js'
import { ServiceWatch } from './service-watch.js'
import { type SessionBounds, SessionJanitor, type SessionRegistry, type SessionStorage } from './sessions.js'
import { ConnectionTracker, coarseClock, type TrackedConn } from './tracker.js'
import { type GuardOwner, guardStream } from './transports/packet-guard.js'
import { listenTcp } from './transports/tcp.js'
import type { ConnectionMeta, Listener } from './transports/types.js'
import { listenWs } from './transports/ws.js'

/** The mqemitter interface Aedes takes as `mq` (mqemitter, mqemitter-redis). */
export interface MQEmitter {
  on(
    topic: string,
    listener: (packet: AedesPublishPacket, cb: () => void) => void,
    done?: () => void,
  ): unknown
  removeListener(topic: string, listener: unknown, done?: () => void): unknown
  emit(packet: unknown, cb?: (err?: Error) => void): unknown
  close(cb: () => void): void
}

export interface AccessNodeOptions {
  config: HeraldConfig
  logger: Logger
  metrics: Metrics
  auth: Authenticator
  /** This incarnation's epoch (Redis INCR in Redis mode). */
  epoch: number
  sink: EventSink
  /** Cluster bus (mqemitter-redis in Redis mode); default an in-process mqemitter. */
  mq?: MQEmitter
  /** Aedes persistence (aedes-persistence-redis in Redis mode); default in memory. */
  persistence?: unknown
  /** Persistent-session bookkeeping and bounds (idle expiry, offline queue cap). */
  sessions?: { registry: SessionRegistry; storage: SessionStorage; bounds: SessionBounds }
  /** Where messages are recorded before they are acknowledged. */
  messages: MessageStore

  /** Revoked tokens: updated by kick commands with `revokedBefore`. */
  revocations?: RevocationStore
  /** This node id's lease, already acquired: the node renews it and releases it on shutdown. */
  lease?: Lease
  /** A new epoch for this node (when it must rejoin after being declared dead). */
  nextEpoch?: () => Promise<number>
  /** Orders the connections of one clientId across nodes (the highest claim wins). */
  claims?: ClaimCounter
  gates?: ConnectGate[]
  /** Connect rate limits shared by every node (Redis mode); default in this process. */
  rates?: RateStore
  visibility?: VisibilityPolicy
  /**
   * Publish lifecycle events on `$SYS/<nodeId>/presence/<kind>` (QoS 0) while someone in the
   * cluster subscribes to them (broker/lifecycle.ts). Default true.
   */
  sysEvents?: boolean
}

const SNAPSHOT_CHUNK = 1000
/** Where nodes announce each connection's claim: `{c: clientId, n: nodeId, k: claim}`. */
const CLAIMS_TOPIC = '$SYS/herald/claims'
const SEEN_CLAIMS_MAX = 10_000
const RECONCILE_MS = 5000

/** A user's history replies on one node: bytes per second, and the burst (docs/security.md). */
const HISTORY_BYTES_PER_SEC = 4 * 1024 * 1024
const HISTORY_BYTES_BURST = 8 * 1024 * 1024

/** Per-session limits, kept beside (not inside) the tracked connection. */
interface SessionLimits {
  bucket?: TokenBucket
  subs?: Set<string>
  /** A history request of this connection is being answered (or waits for the byte budget). */
  historyBusy?: boolean
  historyBusyLogged?: boolean
}
/** How long a proactive re-publish waits for the new presence service's own request. */
const PROACTIVE_GRACE_MS = 1000

/**
 * What a node keeps per accepted stream beside Aedes's client: its transport and address, and
 * the tracked connection once CONNECT authenticated. The packet guard reports to it, and the
 * stream's listeners are shared functions: per connection one object, not the five closures,
 * bound `read` and `once` wrapper it was (with the CONNACK gate on clean sessions, 843 bytes
 * per connection in heap snapshots of 5,000 connections).
 */
class Link implements GuardOwner {
  client: Client | undefined
  conn: TrackedConn | undefined
  /** The CONNECT's password (the token), from preConnect until authenticate takes it. */
  password: Buffer | undefined

  constructor(
    readonly node: AccessNode,
    readonly meta: ConnectionMeta,
  ) {}

  packetRefused(reason: string): void {
    this.node.packetRefused(this.meta, reason)
  }

  /** Bytes arrived: the tracked connection (set once CONNECT authenticated) was active. */
  activity(): void {
    const conn = this.conn
    if (conn && coarseClock.now > conn.lastActivity) conn.lastActivity = coarseClock.now
  }
}

/** Every accepted stream's link, by stream (streams are unique to a node). */
const links = new WeakMap<Duplex, Link>()

/** Aedes reports stream errors through the client; an error must never crash the process. */
function ignoreStreamError(): void {}

/** Every accepted stream's 'close' listener (`this` is the stream). */
function streamClosed(this: Duplex): void {
  const link = links.get(this)
  if (link?.client) link.node.streamClosed(link.client)
}

/** How long the records of a held snapshot wait for the service's verdict. */
const HOLD_MS = 60_000

export class AccessNode {
  readonly nodeId: string
  readonly tracker: ConnectionTracker
  private readonly listeners: Listener[] = []
  private readonly log: Logger
  private readonly stages: readonly PublishStage[]
  private reconcileTimer: NodeJS.Timeout | undefined
  private closing: Promise<void> | undefined
  private janitor: SessionJanitor | undefined
  private leaseTimer: NodeJS.Timeout | undefined
  /** The presence-service epoch the last snapshot was published for (its request's prefix). */
  private snapshotFor = 0
  /** The newest presence service epoch seen up. */
  private serviceEpoch = 0
  private proactive = 0
  /** Wills stripped at CONNECT, until the connection is authenticated. */
  private readonly pendingWills = new WeakMap<Client, PublishPacket>()
  /** The highest claim other nodes announced per clientId, recently (bounded). */
  private readonly seenClaims = new Map<string, { claim: number; nodeId: string }>()
  private readonly ipRate: IpConnectRate
  private readonly expiry: ExpiryWatch
  /** Per-session limits, kept beside (not inside) the tracked connection. */
  private readonly sessionLimits = new WeakMap<TrackedConn, SessionLimits>()
  /**
   * Bytes of history replies per user per second on this node. A request is a few bytes and
   * its answer up to a page (1 MiB): counted by requests alone (the publish rate), one session
   * had the node parse and send 100 pages a second (docs/security.md).
   */
  private readonly historyBytes = new ByteBudgets(HISTORY_BYTES_PER_SEC, HISTORY_BYTES_BURST)

  private constructor(
    readonly broker: Aedes,
    /** The bus this node's Aedes routes through. */
    readonly mq: MQEmitter,
    /** Whether anyone in the cluster reads lifecycle events now. */
    private readonly lifecycle: LifecycleDemand,
    private readonly opts: AccessNodeOptions,
  ) {
    this.nodeId = opts.config.nodeId
    this.log = opts.logger.child({ component: 'access-node', nodeId: this.nodeId })
    const sysEvents = opts.sysEvents ?? true
    this.tracker = new ConnectionTracker({
      nodeId: this.nodeId,
      epoch: opts.epoch,
      sink: opts.sink,
      logger: opts.logger,
      heartbeatMs: opts.config.nodeHeartbeatMs,
      onEvent: sysEvents ? (ev) => this.mirror(ev) : undefined,
    })
    this.ipRate = new IpConnectRate(opts.config.ipConnectsPerSec)
    this.expiry = new ExpiryWatch(opts.config.tokenGraceMs, (conn) => {
      opts.metrics.refusals.inc({ stage: 'session', reason: 'token-expired' })
      this.log.info({ clientId: conn.clientId, exp: conn.principal.exp }, 'token expired; connection closed')
      this.tracker.markEnding(conn.client, 'kicked')
      conn.client.close()
    })
    this.stages = [
      authorizeStage({ maxMessageBytes: opts.config.maxMessageBytes }),
      validateStage({ maxMessageBytes: opts.config.maxMessageBytes }),
      this.publishRateStage(opts.config.publishPerSec),
      stampStage,
      recordStage({
        messages: opts.messages,
        onStatus: (conn, status, meta) => this.tracker.status(conn, status, meta),
        onRpc: (conn, req) => this.answerHistory(conn, req),
      }),
    ]
  }

  static async start(opts: AccessNodeOptions): Promise<AccessNode> {
    const { config } = opts
    // the bus reports Aedes's own subscriptions while it is built: none is a lifecycle one
    let node: AccessNode | undefined
    const lifecycle = new LifecycleDemand({
      nodeId: config.nodeId,
      everyMs: config.nodeHeartbeatMs,
      announce: (payload) => node?.publishRaw(DEMAND_TOPIC, payload),
    })
    const mq = voidingEmitter(opts.mq, lifecycle)
    const broker = new Aedes({
      id: config.nodeId,
      mq,
      persistence: opts.persistence === undefined ? undefined : withoutWills(opts.persistence as object),
      connectTimeout: config.connectTimeoutMs,
      keepaliveLimit: config.keepaliveLimit,
      heartbeatInterval: config.nodeHeartbeatMs,
      drainTimeout: config.drainTimeoutMs,
      maxInflightInbound: config.maxInflight,
      maxTopicLevels: config.maxTopicLevels,
    })
    node = new AccessNode(broker, mq, lifecycle, opts)
    await node.holdLease()
    node.installHooks()
    await broker.listen()
    await node.subscribeControl()
    await new ServiceWatch(
      broker,
      mq,
      (epoch) => node.proactiveResync(epoch),
      opts.logger.child({ nodeId: config.nodeId }),
    ).start()
    node.tracker.start()
    // the node's log exists (its hello is written) before it takes a connection: a presence
    // service that reads another node's disconnect caused by one of ours then knows this node
    // (services/events/types.ts, EventSource)
    await node.opts.sink.flush()
    node.expiry.start()
    node.reconcileTimer = setInterval(() => node.reconcile(), RECONCILE_MS)
    node.reconcileTimer.unref()
    if (opts.sessions) {
      node.janitor = new SessionJanitor(
        opts.sessions.registry,
        opts.sessions.storage,
        opts.sessions.bounds,
        opts.logger,
        () => {
          const held: string[] = []
          for (const conn of node!.tracker.all()) if (!conn.client.clean) held.push(conn.clientId)
          return held
        },
      )
      node.janitor.start()
    }
    const tls =
      config.tlsCert && config.tlsKey
        ? { cert: await readFile(config.tlsCert), key: await readFile(config.tlsKey) }
        : undefined
    if (config.mqttPort !== 0) {
      node.listeners.push(await listenTcp({ host: config.host, port: config.mqttPort, accept: node.accept }))
    }
    if (config.mqttsPort !== 0 && tls) {
      node.listeners.push(
        await listenTcp({ host: config.host, port: config.mqttsPort, accept: node.accept, tls }),
      )
    }
    if (config.wsPort !== 0) {
      node.listeners.push(
        await listenWs({
          host: config.host,
          port: config.wsPort,
          maxPayload: config.maxPacketBytes,
          accept: node.accept,
          onOversize: node.onOversizeFrame,
        }),
      )
    }
    if (config.wssPort !== 0 && tls) {
      node.listeners.push(
        await listenWs({
          host: config.host,
          port: config.wssPort,
          maxPayload: config.maxPacketBytes,
          accept: node.accept,
          onOversize: node.onOversizeFrame,
          tls,
        }),
      )
    }
    node.log.info(
      { listeners: node.listeners.map((l) => `${l.transport}:${l.port}`), epoch: opts.epoch },
      'access node up',
    )
    return node
  }

  /** Bound ports by transport (useful with port `auto`). */
  get ports(): { mqtt?: number; ws?: number; mqtts?: number; wss?: number } {
    const out: { mqtt?: number; ws?: number; mqtts?: number; wss?: number } = {}
    for (const l of this.listeners) {
      if (l.transport === 'tcp') out.mqtt = l.port
      if (l.transport === 'ws') out.ws = l.port
      if (l.transport === 'tls') out.mqtts = l.port
      if (l.transport === 'wss') out.wss = l.port
    }
    return out
  }

  /** A WebSocket frame over the packet limit closed its connection. */
  private readonly onOversizeFrame = (remoteAddress: string): void => {
    this.opts.metrics.refusals.inc({ stage: 'packet', reason: 'too-large' })
    this.log.warn(
      { remoteAddress, transport: 'ws', limit: this.opts.config.maxPacketBytes },
      'connection refused: WebSocket frame over the packet limit',
    )
  }

  /** A new connection from any transport: guard its bytes, hand it to Aedes, track its end. */
  readonly accept = (stream: Duplex, meta: ConnectionMeta): void => {
    if (this.closing) {
      stream.destroy()
      return
    }
    if (!this.ipRate.allow(meta.remoteAddress)) {
      this.opts.metrics.refusals.inc({ stage: 'accept', reason: 'ip-connect-rate' })
      this.log.warn(
        { remoteAddress: meta.remoteAddress, transport: meta.transport },
        'connection refused: too many new connections from this address',
      )
      stream.destroy()
      return
    }
    const link = new Link(this, meta)
    links.set(stream, link)
    guardStream(stream, this.opts.config.maxPacketBytes, link)
    stream.on('error', ignoreStreamError)
    link.client = this.broker.handle(stream)
    stream.on('close', streamClosed)
  }

  /** The packet guard destroyed a stream. */
  packetRefused(meta: ConnectionMeta, reason: string): void {
    this.opts.metrics.refusals.inc({ stage: 'packet', reason: 'too-large' })
    this.log.warn(
      { remoteAddress: meta.remoteAddress, transport: meta.transport, reason },
      'connection refused by packet guard',
    )
  }

  /** An accepted stream closed. */
  streamClosed(client: Client): void {
    const ended = this.ended(client)
    if (!ended) return
    this.opts.metrics.connections.set(this.tracker.size)
    // a persistent session lives on while its client is away (unless another connection took
    // it over); the janitor bounds and expires it
    if (!client.clean && ended.reason !== 'takeover') {
      this.opts.sessions?.registry.idle(client.id, Date.now()).catch((err: Error) => {
        this.log.warn({ err: err.message }, 'could not record an idle session')
      })
    }
  }

  /** Closes every connection of a user (or of one device), everywhere on this node. */
  kick(userId: string, deviceId: string | undefined, reason: DisconnectReason = 'kicked'): number {
    let n = 0
    for (const conn of [...this.tracker.all()]) {
      if (conn.userId !== userId || (deviceId !== undefined && conn.deviceId !== deviceId)) continue
      this.tracker.markEnding(conn.client, reason)
      conn.client.close()
      n += 1
    }
    if (n > 0) this.log.info({ userId, deviceId, n, reason }, 'connections kicked')
    return n
  }

  /** Runs one pass of the persistent-session janitor now (it also runs on its own timer). */
  async sweepSessions(now = Date.now()): Promise<number> {
    return (await this.janitor?.sweep(now)) ?? 0
  }

  /** Writes the whole online set into the event log, in order with the events around it. */
  resync(req: string, hold = false): void {
    const started = performance.now()
    const count = this.tracker.publishSnapshot(req, SNAPSHOT_CHUNK, { hold })
    // the newest service answered (epochs only grow: an old one's proactive turn must not lower it)
    this.snapshotFor = Math.max(this.snapshotFor, Number(req.slice(0, req.indexOf('.'))))
    const ms = Math.round(performance.now() - started)
    if (hold) {
      this.log.info({ req, connections: count, seq: this.tracker.lastSeq, ms }, 'online set offered')
      const held = setTimeout(() => {
        // no verdict (lost, or the service went away): the records go; a new request may come
        if (this.tracker.releaseSnapshot(req, false)) {
          this.log.info({ req }, 'held online set dropped: no verdict from the presence service')
        }
      }, HOLD_MS)
      held.unref()
      return
    }
    this.log.info({ req, connections: count, seq: this.tracker.lastSeq, ms }, 'online set re-published')
  }

  /** The presence service's verdict on a held snapshot: the store differs (send) or agrees. */
  private snapshotVerdict(req: string, send: boolean): void {
    const started = performance.now()
    if (!this.tracker.releaseSnapshot(req, send)) {
      this.log.info({ req, send }, 'verdict on an online set no longer held; the service will ask again')
      return
    }
    if (send) {
      const ms = Math.round(performance.now() - started)
      this.log.info({ req, seq: this.tracker.lastSeq, ms }, 'online set re-published')
    }
  }

  /**
   * A new presence service is up: re-publish without being asked — unless its own request
   * comes first, as it normally does within milliseconds. The request is answered at once
   * (it may follow a snapshot this service never saw); this one only covers a request lost
   * on the way, and waiting for it keeps a re-sync from costing two snapshots (100k records
   * each, at scale).
   */
  private proactiveResync(epoch: number): void {
    if (epoch > this.serviceEpoch) this.serviceEpoch = epoch
    const timer = setTimeout(() => {
      // answered already, or that service was replaced meanwhile (its successor asks for itself)
      if (this.closing || this.snapshotFor >= epoch || this.serviceEpoch > epoch) return
      this.resync(`${epoch}.p${++this.proactive}`)
    }, PROACTIVE_GRACE_MS)
    timer.unref()
  }

  /**
   * Graceful shutdown: stop accepting, close every client (each recorded as `node-shutdown`),
   * say goodbye in the log, flush it, close Aedes. Wills are never published by this.
   */
  close(opts: { beforeBusClose?: () => Promise<void> } = {}): Promise<void> {
    this.closing ??= this.shutdown(opts.beforeBusClose)
    return this.closing
  }

  private async shutdown(beforeBusClose: (() => Promise<void>) | undefined): Promise<void> {
    await Promise.all(this.listeners.map((l) => l.close()))
    clearInterval(this.reconcileTimer)
    clearInterval(this.leaseTimer)
    this.expiry.stop()
    this.janitor?.stop()
    this.lifecycle.stop()
    this.tracker.stop()
    const open = [...this.tracker.all()]
    await Promise.all(
      open.map(
        (conn) =>
          new Promise<void>((resolve) => {
            this.tracker.markEnding(conn.client, 'node-shutdown')
            const stream = conn.client.conn
            if (stream.destroyed) return resolve()
            stream.once('close', () => resolve())
            conn.client.close()
          }),
      ),
    )
    this.tracker.append({
      k: 'bye',
      n: this.nodeId,
      e: this.tracker.epoch,
      s: this.tracker.lastSeq,
      ts: Date.now(),
    })
    await this.opts.sink.flush()
    await beforeBusClose?.()
    await new Promise<void>((resolve) => this.broker.close(() => resolve()))
    await this.opts.lease?.release().catch(() => {})
    this.log.info({ closed: open.length }, 'access node stopped')
  }

  /**
   * Conformance mode (HERALD_INSECURE_ANONYMOUS): plain MQTT for outside test suites — no tokens,
   * any clientId, Aedes's own wills and retained messages, no presence; only the deny list is
   * refused. Loopback binds only (config refuses anything else).
   */
  private installAnonymousHooks(): void {
    const { broker, opts } = this
    const deny = opts.config.anonymousDeny
    const denied = (topic: string) => deny.some((filter) => topicMatches(filter, topic))
    this.log.warn({ deny }, 'INSECURE conformance mode: anyone may connect, no tokens, no presence')
    broker.preConnect = (client, packet, cb) => {
      if (!packet.clean) this.guardConnack(client)
      cb(null, true)
    }
    broker.authenticate = (_client, _username, _password, done) => done(null, true)
    broker.authorizeSubscribe = (client, sub, cb) => {
      if (!denied(sub.topic)) return cb(null, sub)
      opts.metrics.refusals.inc({ stage: 'subscribe', reason: 'denied' })
      this.log.info({ untrusted: { clientId: client.id, topic: sub.topic } }, 'subscribe refused: deny list')
      cb(null, null)
    }
    broker.authorizePublish = (client, packet, cb) => {
      if (client && denied(packet.topic)) {
        opts.metrics.refusals.inc({ stage: 'publish', reason: 'denied' })
        this.log.info(
          { untrusted: { clientId: client.id, topic: packet.topic } },
          'publish dropped: deny list',
        )
        this.voidPacket(packet)
      }
      cb(null)
    }
    ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => {
      this.log.warn({ err: err.message }, 'broker storage error')
    })
  }

  /**
   * Nothing is written to a connecting client before its CONNACK (see
   * dropDeliveriesBeforeConnack). Only a resumed session (clean = false) has subscriptions
   * then, so only its client gets the gate.
   */
  private guardConnack(client: Client): void {
    dropDeliveriesBeforeConnack(client, () =>
      this.log.debug({ clientId: client.id }, 'delivery before CONNACK dropped; the session queue has it'),
    )
  }

  private installHooks(): void {
    if (this.opts.config.insecureAnonymous) {
      this.installAnonymousHooks()
      return
    }
    const { broker, opts } = this
    broker.preConnect = (client, packet, cb) => {
      if (!packet.clean) this.guardConnack(client)
      // Herald owns wills (DESIGN.md): Aedes never sees one
      if (packet.will)
        this.pendingWills.set(client, { cmd: 'publish', dup: false, ...packet.will } as PublishPacket)
      packet.will = undefined
      // mqtt-packet's parser keeps the CONNECT packet for the connection's life: the token
      // leaves it here and reaches authenticate through the link, so a live connection's
      // token is not held in memory (nor ~0.4 KiB of buffers per connection)
      const link = links.get(client.conn as Duplex)
      if (link) {
        link.password = packet.password
        packet.password = undefined
      }
      cb(null, true)
    }
    const authenticate = createAuthenticate({
      auth: opts.auth,
      logger: opts.logger,
      metrics: opts.metrics,
      gates: [
        ...(opts.gates ?? []),
        ...connectGates(opts.config, opts.rates ?? new MemoryRates(), this.tracker),
      ],
      remoteAddress: (client) => links.get(client.conn as Duplex)?.meta.remoteAddress ?? '',
      accepted: async (attempt) => {
        const claim = (await opts.claims?.next(attempt.client.id)) ?? 0
        const link = links.get(attempt.client.conn as Duplex)
        const meta = link?.meta ?? { transport: 'tcp', remoteAddress: '' }
        const pending = this.pendingWills.get(attempt.client)
        this.pendingWills.delete(attempt.client)
        const will = pending ? await this.validateWill(attempt, pending, claim) : undefined
        // the socket closed while the claim or the will was awaited: Aedes drops this CONNECT
        // (no CONNACK) and streamClosed had nothing to end, so opening it now would show the
        // user online until the reconcile pass found the socket gone (~5 s, then a hold)
        if (attempt.client.closed || (attempt.client.conn as Duplex).destroyed) return
        const conn = this.tracker.open(
          attempt.client,
          attempt.principal,
          { userId: attempt.userId, deviceId: attempt.deviceId, clientId: attempt.client.id },
          meta,
          claim,
          will,
        )
        if (link) link.conn = conn
        this.announceClaim(conn)
        this.expiry.add(conn)
        // active before CONNACK, not at clientReady: Aedes emits that only after it has written
        // the whole restored queue, and what arrives meanwhile (a catch-up reply) must not meet
        // the offline queue's cap
        if (!attempt.client.clean) {
          opts.sessions?.registry.active(attempt.client.id, true).catch((err: Error) => {
            this.log.warn({ err: err.message }, 'could not record an active session')
          })
        }
        neutraliseDuplicates(attempt.client)
        opts.metrics.connections.set(this.tracker.size)
      },
    })
    broker.authenticate = (client, username, password, done) => {
      const link = links.get(client.conn as Duplex)
      const token = link?.password ?? password
      if (link) link.password = undefined
      authenticate(client, username, token, done)
    }
    broker.authorizeSubscribe = (client, sub, cb) => this.onSubscribe(client, sub, cb)
    broker.authorizePublish = (client, packet, cb) => this.onPublish(client, packet, cb)
    broker.on('keepaliveTimeout', (client) => this.tracker.markEnding(client, 'keepalive-timeout'))
    // Aedes emits 'error' when its session storage fails (Redis away): log it, never crash
    ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => {
      this.log.warn({ err: err.message }, 'broker storage error')
    })
    broker.on('clientReady', (client) => {
      this.settleTakeover(client)
      this.opts.sessions?.registry.active(client.id, !client.clean).catch((err: Error) => {
        this.log.warn({ err: err.message }, 'could not record an active session')
      })
    })
    broker.on('clientDisconnect', (client) => this.restoreNewest(client.id))
    broker.on('unsubscribe', (unsubscriptions, client) => {
      const conn = this.tracker.get(client)
      const subs = conn && this.sessionLimits.get(conn)?.subs
      if (subs) for (const topic of unsubscriptions) subs.delete(topic)
    })
    // one line per client: a failing connection reports an error per pending write
    const reported = new WeakSet<Client>()
    broker.on('clientError', (client, err) => {
      if (reported.has(client)) return
      reported.add(client)
      if (err.message === 'drain timeout') {
        this.opts.metrics.refusals.inc({ stage: 'session', reason: 'slow-reader' })
        this.log.warn(
          { clientId: client.id, drainTimeoutMs: this.opts.config.drainTimeoutMs },
          'slow reader disconnected: it did not read what it was sent',
        )
        return
      }
      this.log.info({ untrusted: { clientId: client.id }, err: err.message }, 'client error')
    })
    broker.on('connectionError', (client, err) => {
      const remoteAddress = links.get(client.conn as Duplex)?.meta.remoteAddress
      this.opts.metrics.refusals.inc({ stage: 'protocol', reason: 'connection-error' })
      this.log.warn({ remoteAddress, err: err.message }, 'connection refused before CONNECT completed')
    })
    // cross-node takeover, ordered by claim (see bus.ts for why not Aedes's own)
    this.mq.on(CLAIMS_TOPIC, (packet: AedesPublishPacket, cb: () => void) => {
      try {
        const { c, n, k } = JSON.parse(packet.payload.toString()) as { c: string; n: string; k: number }
        if (n !== this.nodeId) this.onForeignClaim(c, n, k)
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'unreadable claim announcement')
      }
      cb()
    })
  }

  /** Tells every node that this connection now holds its clientId. */
  private announceClaim(conn: TrackedConn): void {
    const seen = this.seenClaims.get(conn.clientId)
    if (seen && seen.claim > conn.claim) {
      // another node already holds a newer claim: this connection was taken over before it began
      this.tracker.markEnding(conn.client, 'takeover', seen.nodeId)
      conn.client.close()
      return
    }
    if (!this.opts.claims) return
    this.broker.publish(
      {
        cmd: 'publish',
        topic: CLAIMS_TOPIC,
        payload: Buffer.from(JSON.stringify({ c: conn.clientId, n: this.nodeId, k: conn.claim })),
        qos: 0,
        retain: false,
        dup: false,
      },
      () => {},
    )
  }

  /** Another node took a clientId: a local connection with a lower claim is replaced. */
  private onForeignClaim(clientId: string, nodeId: string, claim: number): void {
    const seen = this.seenClaims.get(clientId)
    if (!seen || seen.claim < claim) {
      this.seenClaims.delete(clientId)
      this.seenClaims.set(clientId, { claim, nodeId })
      if (this.seenClaims.size > SEEN_CLAIMS_MAX) {
        const oldest = this.seenClaims.keys().next().value
        if (oldest !== undefined) this.seenClaims.delete(oldest)
      }
    }
    for (const local of this.tracker.allById(clientId)) {
      if (local.claim >= claim) continue
      this.log.debug({ clientId, claim: local.claim, by: nodeId, newer: claim }, 'taken over on another node')
      this.tracker.markEnding(local.client, 'takeover', nodeId)
      local.client.close()
    }
  }

  /**
   * A will goes through the same stages as a publish (ACL, validation, stamping) before the
   * connection is opened, and travels with its connection event. Only message envelopes
   * (inbox, device) make wills; the id is made unique per connection (with its claim) so
   * de-duplication never swallows the will of a later connection.
   */
  private async validateWill(
    attempt: ConnectAttempt,
    packet: PublishPacket,
    claim: number,
  ): Promise<StoredWill | undefined> {
    const clientId = attempt.client.id
    const refused = (reason: string) => {
      this.opts.metrics.refusals.inc({ stage: 'will', reason })
      this.log.info({ clientId, untrusted: { topic: packet.topic }, reason }, 'will refused; not kept')
      return undefined
    }
    const target = parseTopic(packet.topic)
    if (target.kind !== 'inbox' && target.kind !== 'device') return refused('will-topic')
    // the stages only read who sends: the connection itself does not exist yet
    const sender = {
      client: attempt.client,
      principal: attempt.principal,
      userId: attempt.userId,
      deviceId: attempt.deviceId,
      clientId,
    } as TrackedConn
    const ctx: PublishContext = { client: attempt.client, conn: sender, packet, target }
    const before = this.stages.filter(
      (s) => s.name === 'authorize' || s.name === 'validate' || s.name === 'stamp',
    )
    const outcome = await runPipeline(before, ctx)
    if (outcome.action !== 'route' || !ctx.envelope) {
      return refused(outcome.action === 'refuse' ? outcome.refusal.code : outcome.action)
    }
    const env = ctx.envelope
    return {
      userId: attempt.userId,
      clientId,
      to: env.to,
      id: `${env.id.slice(0, 40)}-w${claim || this.tracker.lastSeq}`,
      body: env.body,
      ...(env.type !== undefined ? { type: env.type } : {}),
      ...(env.deviceId !== undefined ? { deviceId: env.deviceId } : {}),
    }
  }

  /** Keeps this node id's lease (acquired before the epoch was taken) for the life of the process. */
  private async holdLease(): Promise<void> {
    const lease = this.opts.lease
    if (!lease) return
    this.leaseTimer = setInterval(() => {
      lease.renew().then(
        (result) => {
          if (result === 'lost') {
            this.log.error(
              { holder: lease.holder },
              'another process took this node id; this node keeps serving but must be stopped',
            )
          } else if (result === 'retaken') {
            this.log.warn('node id lease had lapsed (was Redis away?); taken again')
          }
        },
        (err: Error) => this.log.warn({ err: err.message }, 'could not renew the node id lease'),
      )
    }, this.opts.config.nodeHeartbeatMs)
    this.leaseTimer.unref()
  }

  /** Declared dead while it was only cut off: take a new epoch and re-publish the online set. */
  private async rejoin(): Promise<void> {
    if (!this.opts.nextEpoch) return
    try {
      const epoch = await this.opts.nextEpoch()
      this.tracker.reepoch(epoch)
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        'could not take a new epoch; will retry on the next request',
      )
    }
  }

  private onSubscribe(
    client: Client,
    sub: Subscription,
    cb: (error: Error | null, subscription?: Subscription | null) => void,
  ): void {
    const conn = this.tracker.get(client)
    if (!conn) {
      cb(null, null)
      return
    }
    const max = this.opts.config.maxSubscriptions
    if (max > 0) {
      const limits = this.limitsOf(conn)
      limits.subs ??= new Set()
      if (!limits.subs.has(sub.topic) && limits.subs.size >= max) {
        this.opts.metrics.refusals.inc({ stage: 'subscribe', reason: 'too-many-subscriptions' })
        this.log.info(
          { userId: conn.userId, clientId: conn.clientId, untrusted: { topic: sub.topic }, max },
          'subscribe refused: too many subscriptions',
        )
        cb(null, null)
        return
      }
      limits.subs.add(sub.topic)
    }
    const who = { userId: conn.principal.userId, role: conn.principal.role, deviceId: conn.deviceId }
    authorizeSubscribe(who, sub.topic, this.opts.visibility ?? everyoneVisible).then(
      (verdict) => {
        if (verdict.ok) {
          cb(null, sub)
          return
        }
        this.sessionLimits.get(conn)?.subs?.delete(sub.topic)
        this.opts.metrics.refusals.inc({ stage: 'subscribe', reason: 'not-allowed' })
        this.log.info(
          { userId: conn.userId, untrusted: { topic: sub.topic }, reason: verdict.reason },
          'subscribe refused',
        )
        cb(null, null) // SUBACK 0x80
      },
      (err: Error) => {
        this.log.error({ err }, 'subscribe authorization failed')
        cb(null, null)
      },
    )
  }

  private onPublish(client: Client | null, packet: PublishPacket, cb: (error?: Error | null) => void): void {
    if (!client) {
      cb(null) // Herald's own publishes
      return
    }
    const conn = this.tracker.get(client)
    if (!conn) {
      this.voidPacket(packet)
      cb(null)
      return
    }
    const ctx: PublishContext = { client, conn, packet, target: parseTopic(packet.topic) }
    runPipeline(this.stages, ctx).then(
      (outcome) => {
        switch (outcome.action) {
          case 'route':
            // Recorded, but its sender is gone (the record outlived the connection: a slow or
            // paused Redis, a client that gave up waiting). Aedes writes no PUBACK to a closed
            // client and then routes nothing, while the client's retry of the same id is a
            // repeat, acknowledged and routed nowhere: the message would reach no session, ever.
            // Route it here, as Aedes would have after the PUBACK. (QoS 0 and 2 are routed by
            // Aedes whether the client is still there or not: not again.)
            if (packet.qos === 1 && !client.connected && !client.connecting) this.routeOrphan(conn, packet)
            return cb(null)
          case 'consume':
            this.voidPacket(packet)
            return cb(null)
          case 'refuse':
            this.refusePublish(conn, packet, outcome.stage ?? 'publish', outcome.refusal)
            return cb(null)
          case 'fail':
            this.log.warn(
              { clientId: conn.clientId, err: outcome.error.message },
              'publish not acknowledged; client will retry',
            )
            return cb(outcome.error)
        }
      },
      (err: Error) => {
        this.log.error({ err, clientId: conn.clientId }, 'publish pipeline failed')
        cb(err)
      },
    )
  }

  /** Publishes per second per session (a token bucket), after validation so a refusal names the id. */
  private publishRateStage(perSec: number): PublishStage {
    return {
      name: 'limit',
      run: (ctx) => {
        if (perSec <= 0) return undefined
        const limits = this.limitsOf(ctx.conn)
        limits.bucket ??= new TokenBucket(perSec, perSec * 2, coarseClock.now)
        if (limits.bucket.take(coarseClock.now)) return undefined
        return {
          action: 'refuse',
          refusal: {
            code: 'rate-limited',
            message: `more than ${perSec} publishes per second`,
            ...(ctx.envelope ? { id: ctx.envelope.id } : {}),
          },
        }
      },
    }
  }

  /**
   * One history request at a time per connection (the SDK's catch-up asks for the next page when
   * the last one came; another while one is pending is answered `busy`), each answered when the
   * user's byte budget on this node allows it.
   */
  private answerHistory(conn: TrackedConn, req: RpcRequest): void {
    const limits = this.limitsOf(conn)
    if (limits.historyBusy) {
      this.opts.metrics.refusals.inc({ stage: 'limit', reason: 'history-busy' })
      if (!limits.historyBusyLogged) {
        limits.historyBusyLogged = true // once per connection: the refusals are counted
        this.log.info(
          { userId: conn.userId, clientId: conn.clientId },
          'history request refused: one at a time per connection',
        )
      }
      const error = 'busy: one history request at a time per connection; ask again when it is answered'
      this.publishJson(replyTopic(conn.userId, conn.deviceId), { id: req.id, ok: false, error }, 1)
      return
    }
    limits.historyBusy = true
    const run = () => {
      if (conn.closed) {
        limits.historyBusy = false
        return
      }
      answerRpc(this.opts.messages, conn, req, (topic, reply) => this.publishJson(topic, reply, 1), this.log)
        .then((bytes) => this.historyBytes.spend(conn.userId, bytes))
        .finally(() => {
          limits.historyBusy = false
        })
    }
    const wait = this.historyBytes.waitMs(conn.userId)
    if (wait > 0) setTimeout(run, wait).unref()
    else run()
  }

  private limitsOf(conn: TrackedConn): SessionLimits {
    let limits = this.sessionLimits.get(conn)
    if (!limits) {
      limits = {}
      this.sessionLimits.set(conn, limits)
    }
    return limits
  }

  /** Acknowledged, routed nowhere, logged, counted, answered with a `rejected` receipt. */
  private refusePublish(conn: TrackedConn, packet: PublishPacket, stage: string, refusal: Refusal): void {
    this.opts.metrics.refusals.inc({ stage, reason: refusal.code })
    this.log.info(
      {
        userId: conn.userId,
        clientId: conn.clientId,
        untrusted: { topic: packet.topic },
        reason: refusal.code,
      },
      `publish refused: ${refusal.message}`,
    )
    this.voidPacket(packet)
    this.sendRejected(conn, refusal.code, refusal.message, refusal.id)
  }

  /** A recorded message whose sender closed before its PUBACK: routed all the same (onPublish). */
  private routeOrphan(conn: TrackedConn, packet: PublishPacket): void {
    const routed: PublishPacket = {
      cmd: 'publish',
      topic: packet.topic,
      payload: packet.payload,
      qos: packet.qos,
      retain: false,
      dup: false,
    }
    this.broker.publish(routed, (err) => {
      if (err)
        this.log.warn({ clientId: conn.clientId, err: err.message }, 'a recorded message was not routed')
    })
  }

  /** Acknowledge without routing: the packet goes to a topic the bus drops. */
  private voidPacket(packet: PublishPacket): void {
    packet.topic = topics.void
    packet.retain = false
  }

  private sendRejected(conn: TrackedConn, code: string, message: string, id: string | undefined): void {
    const receipt: Receipt = {
      id: id ?? '',
      status: 'rejected',
      by: 'herald',
      ts: Date.now(),
      reason: `${code}: ${message}`,
    }
    this.publishJson(topics.receipts(conn.userId), receipt, 1)
  }

  /** Herald's own publishes (receipts, replies, $SYS mirrors): never retained. */
  private publishJson(topic: string, body: RpcReply | Receipt | NodeEvent, qos: 0 | 1): void {
    this.publishRaw(topic, JSON.stringify(body), qos)
  }

  private publishRaw(topic: string, payload: string, qos: 0 | 1 = 0): void {
    this.broker.publish(
      { cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false },
      () => {},
    )
  }

  /**
   * After CONNACK. Aedes #1023: on rapid takeovers the close of an old client can delete the
   * new one from `broker.clients`, so two sockets with one clientId may both stay open.
   * The newest connection (highest connSeq) wins; any other is closed here.
   */
  private settleTakeover(client: Client): void {
    const conn = this.tracker.get(client)
    if (!conn) return
    const newest = this.tracker.byId(client.id)
    if (newest && newest !== conn) {
      this.tracker.markEnding(client, 'takeover', this.nodeId)
      client.close()
    }
    this.restoreNewest(client.id)
  }

  /** Makes `broker.clients[clientId]` the newest live connection again, and closes any older one. */
  private restoreNewest(clientId: string): void {
    const newest = this.tracker.byId(clientId)
    if (!newest || newest.closed) return
    const clients = brokerClients(this.broker)
    const registered = clients[clientId]
    if (registered === newest.client) return
    if (registered && !registered.closed) {
      this.tracker.markEnding(registered, 'takeover', this.nodeId)
      registered.close()
    }
    if (newest.client.connected) clients[clientId] = newest.client
  }

  /** The socket of `client` closed: its connection ends, and nothing waits on it any more. */
  private ended(client: Client): TrackedConn | undefined {
    const conn = this.tracker.closed(client)
    if (conn) this.expiry.remove(conn)
    return conn
  }

  /** Sockets that closed without Herald hearing it (should not happen; costs one pass). */
  private reconcile(): void {
    for (const conn of [...this.tracker.all()]) {
      if (conn.client.conn.destroyed) {
        this.log.warn({ clientId: conn.clientId }, 'reconciled a connection whose socket closed unseen')
        this.ended(conn.client)
      }
    }
    this.opts.metrics.connections.set(this.tracker.size)
  }

  private async subscribeControl(): Promise<void> {
    const handler = (packet: AedesPublishPacket, cb: () => void) => {
      try {
        this.onControl(JSON.parse(packet.payload.toString()) as ControlCommand)
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'unreadable control command')
      }
      cb()
    }
    for (const topic of [topics.nodeControl(this.nodeId), topics.nodeControl('all')]) {
      await new Promise<void>((resolve) => this.broker.subscribe(topic, handler, () => resolve()))
    }
    const batch = (packet: AedesPublishPacket, cb: () => void) => {
      this.deliverPresenceBatch(packet.payload.toString())
      cb()
    }
    await new Promise<void>((resolve) => this.broker.subscribe(topics.presenceBatch, batch, () => resolve()))
    const demand = (packet: AedesPublishPacket, cb: () => void) => {
      this.lifecycle.heard(packet.payload.toString())
      cb()
    }
    await new Promise<void>((resolve) => this.broker.subscribe(DEMAND_TOPIC, demand, () => resolve()))
  }

  /**
   * The presence service's documents in bulk (services/presence/publisher.ts), each delivered
   * to this node's own subscribers as the publish on `presence/<userId>` would have been:
   * retained, QoS 0. Locally only: mqemitter-redis's `_emit` is its in-process delivery (an
   * in-process mqemitter delivers locally anyway), so no document crosses the bus again.
   */
  private deliverPresenceBatch(payload: string): void {
    const mq = this.mq as MQEmitter & { _emit?: MQEmitter['emit'] }
    let flat: unknown
    try {
      flat = JSON.parse(payload)
    } catch {
      flat = undefined
    }
    if (!Array.isArray(flat) || flat.length % 2 !== 0) {
      this.log.error({ bytes: payload.length }, 'unreadable presence batch')
      return
    }
    let refused = 0
    for (let i = 0; i < flat.length; i += 2) {
      const userId: unknown = flat[i]
      const doc: unknown = flat[i + 1]
      const topic = typeof userId === 'string' ? topics.presence(userId) : ''
      if (typeof doc !== 'string' || parseTopic(topic)?.kind !== 'presence') {
        refused += 1
        continue
      }
      const packet = { cmd: 'publish', topic, payload: Buffer.from(doc), qos: 0, retain: true, dup: false }
      if (mq._emit) mq._emit(packet)
      else mq.emit(packet)
    }
    if (refused > 0) this.log.error({ refused }, 'presence batch entries without a user or document')
  }

  private onControl(cmd: ControlCommand): void {
    switch (cmd.cmd) {
      case 'resync':
        if (cmd.nodeId !== this.nodeId) return
        // a heartbeat first: a service that found this node's log after its hello knows only
        // its own default interval, and would call a node with slower heartbeats dead
        this.tracker.heartbeat()
        this.resync(cmd.req, cmd.hold === true)
        return
      case 'snapshot':
        if (cmd.nodeId === this.nodeId) this.snapshotVerdict(cmd.req, cmd.send)
        return
      case 'kick':
        if (cmd.revokedBefore !== undefined) this.opts.revocations?.note(cmd.userId, cmd.revokedBefore)
        this.kick(cmd.userId, cmd.deviceId)
        return
      case 'mark':
        this.tracker.heartbeat()
        return
      case 'rejoin':
        if (cmd.nodeId === this.nodeId && cmd.epoch >= this.tracker.epoch) void this.rejoin()
        return
    }
  }

  private mirror(ev: NodeEvent): void {
    // snapshots are for the presence service only
    if (ev.k === 'snap' || !this.lifecycle.wanted) return
    this.publishJson(topics.nodeEvent(this.nodeId, ev.k), ev, 0)
  }
}

/**
 * Takes a node id's lease, or explains who holds it. A crashed previous incarnation stops
 * renewing, so its lease lapses within `ttlMs`: wait that long before calling the holder live.
 */
export async function acquireNodeId(lease: Lease, nodeId: string, ttlMs: number): Promise<void> {
  const deadline = Date.now() + ttlMs + 500
  while (!(await lease.acquire())) {
    if (Date.now() > deadline) throw new NodeIdInUseError(nodeId, await lease.current())
    await new Promise((r) => setTimeout(r, Math.min(250, Math.max(50, ttlMs / 4))))
  }
}

export class NodeIdInUseError extends Error {
  override name = 'NodeIdInUseError'
  constructor(
    readonly nodeId: string,
    readonly holder: string | undefined,
  ) {
    super(
      `node id ${nodeId} is held by another live process (${holder ?? 'unknown'}); pick another HERALD_NODE_ID`,
    )
  }
}
