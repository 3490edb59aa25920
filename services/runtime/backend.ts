/**
 * The two backends Herald runs on, behind one shape (Aedes's `opts.persistence || memory()`
 * habit): memory for a single process, Redis for a cluster. Everything above this file is the
 * same code in both modes.
 */
import aedesPersistenceRedis from 'aedes-persistence-redis'
import mqemitterRedis from 'mqemitter-redis'
import type { MQEmitter } from '../../broker/node.js'
import type { Logger } from '../core/logger.js'
import { createRedis, type Redis } from '../core/redis.js'
import { MemoryEventLog } from '../events/memory-log.js'
import { RedisEventSink, RedisEventSource } from '../events/redis-log.js'
import type { EventSink, EventSource } from '../events/types.js'
import { MemoryPresenceStore } from '../presence/memory-store.js'
import { RedisPresenceStore } from '../presence/redis-store.js'
import type { PresenceStore } from '../presence/store.js'

export interface Backend {
  readonly kind: 'memory' | 'redis'
  readonly store: PresenceStore
  sink(nodeId: string): EventSink
  source(): EventSource
  /** A new epoch for an access node: strictly greater than any before it. */
  nextNodeEpoch(nodeId: string): Promise<number>
  /** A new epoch for the presence service (its writer epoch). */
  nextServiceEpoch(): Promise<number>
  /** Cluster bus and session persistence for Aedes (undefined = Aedes's in-memory defaults). */
  bus(): { mq: MQEmitter | undefined; persistence: unknown }
  /** Is the storage reachable? (readiness) */
  ping(): Promise<boolean>
  close(): Promise<void>
}

export function memoryBackend(opts: { takeoverGraceMs: number }): Backend {
  const log = new MemoryEventLog()
  const store = new MemoryPresenceStore({ takeoverGraceMs: opts.takeoverGraceMs })
  const epochs = new Map<string, number>()
  let serviceEpoch = 0
  return {
    kind: 'memory',
    store,
    sink: (nodeId) => log.sink(nodeId),
    source: () => log.source(),
    nextNodeEpoch: async (nodeId) => {
      const next = (epochs.get(nodeId) ?? 0) + 1
      epochs.set(nodeId, next)
      return next
    },
    nextServiceEpoch: async () => ++serviceEpoch,
    bus: () => ({ mq: undefined, persistence: undefined }),
    ping: async () => true,
    close: async () => {},
  }
}

export interface RedisBackendOptions {
  url: string
  prefix: string
  logger: Logger
  takeoverGraceMs: number
}

export function redisBackend(opts: RedisBackendOptions): Backend {
  const { url, prefix, logger } = opts
  const connections: Redis[] = []
  const connect = (name: string, maxRetriesPerRequest?: number | null) => {
    const redis = createRedis(url, { name: `herald-${name}`, logger, maxRetriesPerRequest })
    connections.push(redis)
    return redis
  }
  const main = connect('main')
  const store = new RedisPresenceStore({ redis: main, prefix, takeoverGraceMs: opts.takeoverGraceMs })
  const closers: Array<() => Promise<void>> = []
  return {
    kind: 'redis',
    store,
    sink: (nodeId) => new RedisEventSink({ redis: connect(`sink-${nodeId}`, null), prefix, logger }, nodeId),
    source: () => new RedisEventSource({ redis: main, prefix, logger }, connect('reader', null)),
    nextNodeEpoch: (nodeId) => main.incr(`${prefix}n:{${nodeId}}:epoch`),
    nextServiceEpoch: () => main.incr(`${prefix}presence:epoch`),
    bus: () => {
      const mq = mqemitterRedis({ connectionString: url }) as unknown as MQEmitter & {
        state: { on(ev: 'error', fn: (err: Error) => void): void }
      }
      mq.state.on('error', (err) =>
        logger.warn({ component: 'bus', err: err.message }, 'cluster bus error; retrying'),
      )
      const persistenceConn = connect('sessions')
      const persistence = aedesPersistenceRedis({ conn: persistenceConn })
      closers.push(async () => {})
      return { mq, persistence }
    },
    ping: async () => {
      try {
        return (await main.ping()) === 'PONG'
      } catch {
        return false
      }
    },
    close: async () => {
      for (const close of closers) await close()
      for (const redis of connections) redis.disconnect()
    },
  }
}
