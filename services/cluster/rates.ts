/**
 * Sliding-window rate limits shared by every process: connects per device (seed 003's "more
 * than 3 logins in 10 s") and per user. In Redis mode one Lua step per event, every limit of
 * it in the same call (scripts/rate-hit-n.lua), so all nodes count together; in memory the
 * same semantics.
 */
import { randomBytes } from 'node:crypto'
import type { Redis, Result } from 'ioredis'
import { defineScripts, readScripts, sourceAsset } from '../core/redis.js'

const SCRIPT_VERSION = 1

declare module 'ioredis' {
  interface RedisCommander<Context> {
    heraldRateHitV1(
      numKeys: number,
      ...keysThenArgs: Array<string | number>
    ): Result<[number, number], Context>
  }
}

export interface RateLimit {
  /** Events allowed per window. */
  limit: number
  windowMs: number
  /** Past the limit, the key is refused this long (0 = until the window lets it in). */
  cooldownMs: number
}

/** One event's count against one key's limit. */
export interface RateHit extends RateLimit {
  key: string
}

/** The limit that refused an event: its place among the hits, and how long to wait (ms). */
export interface RateRefusal {
  index: number
  waitMs: number
}

export interface RateStore {
  /**
   * Counts one event against each limit in order; the first that refuses it stops the rest,
   * which do not count it. Undefined when every limit allows it.
   */
  hit(hits: readonly RateHit[]): Promise<RateRefusal | undefined>
}

export class MemoryRates implements RateStore {
  private readonly logs = new Map<string, { times: number[]; bannedUntil: number }>()
  private lastPrune = 0

  constructor(private readonly clock: () => number = Date.now) {}

  async hit(hits: readonly RateHit[]): Promise<RateRefusal | undefined> {
    const now = this.clock()
    for (const [index, h] of hits.entries()) {
      const waitMs = this.hitOne(now, h)
      if (waitMs > 0) return { index, waitMs }
    }
    return undefined
  }

  private hitOne(now: number, { key, limit, windowMs, cooldownMs }: RateHit): number {
    this.prune(now, windowMs + cooldownMs)
    let entry = this.logs.get(key)
    if (!entry) {
      entry = { times: [], bannedUntil: 0 }
      this.logs.set(key, entry)
    }
    if (entry.bannedUntil > now) return entry.bannedUntil - now
    entry.times = entry.times.filter((t) => t > now - windowMs)
    if (entry.times.length >= limit) {
      if (cooldownMs > 0) {
        entry.times = []
        entry.bannedUntil = now + cooldownMs
        return cooldownMs
      }
      return Math.max(1, entry.times[0]! + windowMs - now)
    }
    entry.times.push(now)
    return 0
  }

  /** Forgets keys idle longer than `idleMs` (at most once a second). */
  private prune(now: number, idleMs: number): void {
    if (now - this.lastPrune < 1000) return
    this.lastPrune = now
    for (const [key, entry] of this.logs) {
      const last = entry.times.at(-1) ?? 0
      if (entry.bannedUntil < now && last < now - idleMs) this.logs.delete(key)
    }
  }
}

export class RedisRates implements RateStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    defineScripts(redis, readScripts(sourceAsset(import.meta.url, './scripts/'), SCRIPT_VERSION, 'herald'))
  }

  async hit(hits: readonly RateHit[]): Promise<RateRefusal | undefined> {
    if (hits.length === 0) return undefined
    const keys = hits.flatMap(({ key }) => [
      `${this.prefix}rate:{${key}}:log`,
      `${this.prefix}rate:{${key}}:ban`,
    ])
    const args = hits.flatMap((h) => [
      h.limit,
      h.windowMs,
      h.cooldownMs,
      randomBytes(6).toString('base64url'),
    ])
    const [at, waitMs] = await this.redis.heraldRateHitV1(keys.length, ...keys, ...args)
    return at > 0 ? { index: at - 1, waitMs } : undefined
  }
}
