/**
 * Bounds on MQTT persistent sessions (DESIGN.md: offline queues in aedes-persistence-redis are
 * uncapped lists, and sessions never expire under 3.1.1):
 * - an offline session's queue keeps at most `maxQueue` messages (the oldest it missed; the
 *   rest it catches up by offset from the history stream);
 * - a session idle longer than `maxIdleMs` is removed (subscriptions and queue).
 * Queued packets also expire with the history age (`packetTTL` of aedes-persistence-redis).
 *
 * Idle sessions are kept in a sorted set (clientId -> idle since, ms) shared by all nodes in
 * Redis mode, so any node can expire a session whichever node it was last on.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../services/core/logger.js'

export interface SessionRegistry {
  /** A persistent session went offline now. */
  idle(clientId: string, at: number): Promise<void>
  /** A session is connected again (or was discarded by a clean connect). */
  active(clientId: string): Promise<void>
  /** Idle sessions, oldest first: since before `before`. */
  idleBefore(before: number, limit: number): Promise<string[]>
  /** Every idle session (bounded by `limit`). */
  idleAll(limit: number): Promise<string[]>
  /** Takes one session off the idle list; true for the one caller that removed it. */
  claim(clientId: string): Promise<boolean>
}

export class MemorySessionRegistry implements SessionRegistry {
  /** Idle sessions in the order they went idle: since when, and which absence it is. */
  private readonly since = new Map<string, { at: number; absence: number }>()
  private absences = 0
  async idle(clientId: string, at: number) {
    this.since.delete(clientId)
    this.absences += 1
    this.since.set(clientId, { at, absence: this.absences })
  }
  async active(clientId: string) {
    this.since.delete(clientId)
  }
  async idleBefore(before: number, limit: number) {
    const out: string[] = []
    for (const [id, { at }] of this.since) {
      if (at >= before || out.length >= limit) break
      out.push(id)
    }
    return out
  }
  async idleAll(limit: number) {
    return [...this.since.keys()].slice(0, limit)
  }
  async claim(clientId: string) {
    return this.since.delete(clientId)
  }
  /**
   * The current absence of an idle session: a number no other absence (of any session) has, so
   * what is counted for one absence is never taken for the next. Undefined while connected.
   */
  absence(clientId: string): number | undefined {
    return this.since.get(clientId)?.absence
  }
}

export class RedisSessionRegistry implements SessionRegistry {
  private readonly key: string
  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = `${prefix}sessions:idle`
  }
  async idle(clientId: string, at: number) {
    await this.redis.zadd(this.key, at, clientId)
  }
  async active(clientId: string) {
    await this.redis.zrem(this.key, clientId)
  }
  async idleBefore(before: number, limit: number) {
    return this.redis.zrangebyscore(this.key, '-inf', `(${before}`, 'LIMIT', 0, limit)
  }
  async idleAll(limit: number) {
    return this.redis.zrange(this.key, 0, limit - 1)
  }
  async claim(clientId: string) {
    return (await this.redis.zrem(this.key, clientId)) === 1
  }
}

/** What the janitor needs from the session persistence. */
export interface SessionStorage {
  cleanSubscriptions(client: { id: string }): Promise<void>
  /** Drops a session's queued messages. */
  dropQueue(clientId: string): Promise<void>
  /** Keeps at most `max` queued messages of an offline session. */
  trimQueue(clientId: string, max: number): Promise<void>
}

export interface SessionBounds {
  maxIdleMs: number
  maxQueue: number
}

export class SessionJanitor {
  private timer: NodeJS.Timeout | undefined
  private readonly log: Logger

  constructor(
    private readonly registry: SessionRegistry,
    private readonly storage: SessionStorage,
    private readonly bounds: SessionBounds,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'sessions' })
  }

  start(): void {
    const every = Math.min(Math.max(Math.floor(this.bounds.maxIdleMs / 4), 1000), 60_000)
    this.timer = setInterval(() => void this.sweep(), every)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  async sweep(now = Date.now()): Promise<number> {
    let expired = 0
    try {
      for (const clientId of await this.registry.idleBefore(now - this.bounds.maxIdleMs, 1000)) {
        if (!(await this.registry.claim(clientId))) continue // another node took it
        await this.storage.cleanSubscriptions({ id: clientId })
        await this.storage.dropQueue(clientId)
        expired += 1
      }
      if (expired > 0)
        this.log.info({ expired, maxIdleMs: this.bounds.maxIdleMs }, 'idle persistent sessions removed')
      for (const clientId of await this.registry.idleAll(1000)) {
        await this.storage.trimQueue(clientId, this.bounds.maxQueue)
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'session sweep failed; will retry')
    }
    return expired
  }
}
