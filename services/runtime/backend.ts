/**
 * The two backends Herald runs on, behind one shape (Aedes's `opts.persistence || memory()`
 * habit): memory for a single process, Redis for a cluster. Everything above this file is the
 * same code in both modes.
 */
import aedesPersistenceModule from 'aedes-persistence'
import aedesPersistenceRedis from 'aedes-persistence-redis'
import mqemitterRedis from 'mqemitter-redis'
import type { MQEmitter } from '../../broker/node.js'
import { presenceFromStore } from '../../broker/presence-retained.js'
import {
  boundedMemoryPersistence,
  oneAddPerSubscribe,
  redisSessionStorage,
} from '../../broker/session-storage.js'
import {
  MemorySessionRegistry,
  RedisSessionRegistry,
  type SessionRegistry,
  type SessionStorage,
} from '../../broker/sessions.js'
import { type ClaimCounter, claimCounter } from '../cluster/claims.js'
import { memoryCounters, redisCounters } from '../cluster/counters.js'
import { type Lease, type MemoryLeaseTable, memoryLease, redisLease } from '../cluster/lease.js'
import { MemoryRates, type RateStore, RedisRates } from '../cluster/rates.js'
import { MemoryRevocations, RedisRevocations, type RevocationStore } from '../cluster/revocations.js'
import type { HeraldConfig } from '../core/config.js'
import type { Logger } from '../core/logger.js'
import { createRedis, type Redis } from '../core/redis.js'
import { MemoryEventLog } from '../events/memory-log.js'
import { RedisEventSink, RedisEventSource, sinkConnectionName } from '../events/redis-log.js'
import type { EventSink, EventSource } from '../events/types.js'
import { JournaledMessageStore, MessageJournal } from '../messaging/journal.js'
import { MemoryMessageStore } from '../messaging/memory-store.js'
import { RedisMessageStore } from '../messaging/redis-store.js'
import type { MessageStore, MessageStoreLimits } from '../messaging/store.js'
import { MemoryPresenceStore } from '../presence/memory-store.js'
import { RedisPresenceStore } from '../presence/redis-store.js'
import type { PresenceStore } from '../presence/store.js'
import { MemoryWillStore, RedisWillStore, type WillStore } from '../wills/store.js'
import { compactBusCodec } from './bus-codec.js'
import { pooledMsgpackBuffers } from './msgpack-buffers.js'

/** What an Aedes instance runs on: the bus, session persistence and its bounds. */
export interface Bus {
  mq: MQEmitter | undefined
  persistence: unknown
  sessions: { registry: SessionRegistry; storage: SessionStorage }
}

export interface Backend {
  readonly kind: 'memory' | 'redis'
  readonly store: PresenceStore
  readonly messages: MessageStore
  readonly wills: WillStore
  readonly revocations: RevocationStore
  readonly claims: ClaimCounter
  /** Connect rate limits (per device, per user), shared by every node in Redis mode. */
  readonly rates: RateStore

  /** The lease on a name (a node id, the presence writer): held by one live process at a time. */
  lease(name: string, ttlMs: number, holder?: string): Lease
  sink(nodeId: string): EventSink
  source(): EventSource
  /** A new epoch for an access node: strictly greater than any before it. */
  nextNodeEpoch(nodeId: string): Promise<number>
  /** A new epoch for the presence service (its writer epoch). */
  nextServiceEpoch(): Promise<number>
  /** Cluster bus and session persistence for one Aedes instance (connected and ready). */
  bus(): Promise<Bus>
  /** Is the storage reachable? (readiness) */
  ping(): Promise<boolean>
  /** Marks the store as written by this writer epoch (a sentinel that a data loss removes). */
  markIntact(epoch: number): Promise<void>
  /**
   * False when the sentinel is gone (Redis restarted without its data, or was flushed) or older
   * than the last one this writer wrote (Redis came back from an older snapshot).
   */
  intact(): Promise<boolean>
  close(): Promise<void>
}

// aedes-persistence is CommonJS whose types declare an ES default export: under NodeNext the
// default import is `module.exports` itself, the factory function.
const aedesPersistence = aedesPersistenceModule as unknown as () => unknown

function messageLimits(config: HeraldConfig): MessageStoreLimits {
  return {
    historyMaxLen: config.historyMaxLen,
    historyMaxAgeMs: config.historyMaxAgeMs,
    dedupWindowMs: config.dedupWindowMs,
    historyMaxBytes: config.historyMaxBytes,
  }
}

async function ready(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return
  await new Promise<void>((resolve) => redis.once('ready', () => resolve()))
}

/**
 * Aedes persistence for one broker, serving `presence/<userId>` from the presence store
 * (broker/presence-retained.ts) — except in conformance mode, which has no presence and
 * where those topics are plain MQTT.
 */
function retainedFromStore<T extends object>(
  persistence: T,
  store: PresenceStore,
  config: HeraldConfig,
  log: Logger,
): T {
  if (config.insecureAnonymous) return persistence
  return presenceFromStore(persistence, (userIds) => store.docs(userIds), log)
}

export async function memoryBackend(config: HeraldConfig, logger: Logger): Promise<Backend> {
  const log = new MemoryEventLog()
  const store = new MemoryPresenceStore({ takeoverGraceMs: config.takeoverGraceMs })
  const memory = new MemoryMessageStore(messageLimits(config))
  const messages: MessageStore = config.messageJournal
    ? new JournaledMessageStore(memory, await MessageJournal.open(config.dataDir, memory, logger))
    : memory
  const counters = memoryCounters()
  const leases: MemoryLeaseTable = new Map()
  return {
    kind: 'memory',
    store,
    messages,
    wills: new MemoryWillStore(),
    revocations: new MemoryRevocations(),
    claims: claimCounter(counters, ''),
    rates: new MemoryRates(),
    lease: (name, ttlMs, holder) => memoryLease(leases, name, ttlMs, holder),
    sink: (nodeId) => log.sink(nodeId),
    source: () => log.source(),
    nextNodeEpoch: (nodeId) => counters.next(`node:${nodeId}`),
    nextServiceEpoch: () => counters.next('presence'),
    bus: async () => {
      const registry = new MemorySessionRegistry()
      const bounded = boundedMemoryPersistence(aedesPersistence(), registry, config.sessionMaxQueue)
      return {
        mq: undefined,
        persistence: retainedFromStore(bounded.persistence as object, store, config, logger),
        sessions: { registry, storage: bounded.storage },
      }
    },
    ping: async () => true,
    markIntact: async () => {},
    intact: async () => true,
    close: () => messages.close(),
  }
}

export function redisBackend(config: HeraldConfig, logger: Logger): Backend {
  const url = config.redisUrl
  if (!url) throw new Error('redisBackend needs HERALD_REDIS_URL')
  pooledMsgpackBuffers()
  const prefix = config.redisPrefix
  const connections: Redis[] = []
  const connectNamed = (name: string, maxRetriesPerRequest?: number | null, autoPipelining = true) => {
    const redis = createRedis(url, { name, logger, maxRetriesPerRequest, autoPipelining })
    connections.push(redis)
    return redis
  }
  const connect = (name: string, maxRetriesPerRequest?: number | null, autoPipelining = true) =>
    connectNamed(`herald-${name}`, maxRetriesPerRequest, autoPipelining)
  const main = connect('main')
  const counters = redisCounters(main)
  const store = new RedisPresenceStore({ redis: main, prefix, takeoverGraceMs: config.takeoverGraceMs })
  const messages = new RedisMessageStore(main, prefix, messageLimits(config))
  // The data-loss sentinel: `<writer epoch>:<n>`, n advanced at every check, so a Redis that
  // comes back older (an earlier snapshot) is told from one that kept its data.
  const intactKey = `${prefix}presence:intact`
  let mark: { epoch: number; n: number; accept: string[] } | undefined
  return {
    kind: 'redis',
    store,
    messages,
    wills: new RedisWillStore(main, prefix),
    revocations: new RedisRevocations(main, prefix),
    claims: claimCounter(counters, prefix),
    rates: new RedisRates(main, prefix),
    lease: (name, ttlMs, holder) => redisLease(main, `${prefix}lease:${name}`, ttlMs, holder),
    // named so the presence service can see the connection go when the node dies (disconnected)
    sink: (nodeId) =>
      new RedisEventSink({ redis: connectNamed(sinkConnectionName(nodeId), null), prefix, logger }, nodeId),
    source: () => new RedisEventSource({ redis: main, prefix, logger }, connect('reader', null, false)),
    nextNodeEpoch: (nodeId) => counters.next(`${prefix}n:{${nodeId}}:epoch`),
    nextServiceEpoch: () => counters.next(`${prefix}presence:epoch`),
    bus: async () => {
      // While Redis is away the bus and the sessions wait (commands queue, null retries limit)
      // instead of failing: a failed publish would close the client that sent it, and the
      // access node must keep serving the clients it holds.
      const subConn = connect('bus-sub', null, false)
      const pubConn = connect('bus-pub', null)
      const mq = mqemitterRedis({ subConn, pubConn }) as unknown as MQEmitter & {
        state: { on(ev: 'error', fn: (err: Error) => void): void }
        subConn: Redis
        pubConn: Redis
      }
      if (
        !compactBusCodec(mq, (err) =>
          logger.error({ component: 'bus', err: err.message }, 'unreadable message on the cluster bus'),
        )
      )
        logger.warn({ component: 'bus' }, 'mqemitter-redis laid out differently: the bus keeps its own codec')
      // connection errors are logged once per outage by the connections themselves
      mq.state.on('error', (err) => logger.debug({ component: 'bus', err: err.message }, 'cluster bus error'))
      // Subscribing before the subscriber connection is ready loses the first SUBSCRIBE
      // (ioredis answers its own queued handshake with "Connection in subscriber mode"): wait.
      await Promise.all([ready(mq.subConn), ready(mq.pubConn)])
      const sessionsConn = connect('sessions', null)
      const ttl = Math.ceil(config.historyMaxAgeMs / 1000)
      const persistence = oneAddPerSubscribe(
        aedesPersistenceRedis({
          conn: sessionsConn,
          // queued packets live no longer than the history that can replace them
          packetTTL: () => ttl,
          maxSessionDelivery: config.sessionMaxQueue,
        }) as object,
      )
      return {
        mq,
        persistence: retainedFromStore(persistence, store, config, logger),
        sessions: {
          registry: new RedisSessionRegistry(main, prefix),
          storage: redisSessionStorage(persistence, sessionsConn),
        },
      }
    },
    ping: async () => {
      try {
        return (await main.ping()) === 'PONG'
      } catch {
        return false
      }
    },
    markIntact: async (epoch) => {
      const value = `${epoch}:0`
      await main.set(intactKey, value)
      mark = { epoch, n: 0, accept: [value] }
    },
    intact: async () => {
      const value = await main.get(intactKey)
      if (value === null) return false // restarted without its data, or flushed
      if (!mark) return true
      // `<epoch>` alone: written by a version before the counter
      const colon = value.indexOf(':')
      const epoch = Number(colon < 0 ? value : value.slice(0, colon))
      // a newer writer's mark: not a loss (that writer fences this one out)
      if (epoch > mark.epoch) return true
      // an older mark than the last one written: Redis came back from an older snapshot (RDB,
      // a restored backup, a replica that lagged), and whatever was written since is gone too
      if (!mark.accept.includes(value)) return false
      const next = `${mark.epoch}:${mark.n + 1}`
      mark.accept = [value, next] // until the SET is known to have landed
      await main.set(intactKey, next)
      mark.n += 1
      mark.accept = [next]
      return true
    },
    close: async () => {
      for (const redis of connections) redis.disconnect()
    },
  }
}
