/**
 * Sliding-window rate limits shared by every process: connects per device (seed 003's "more
 * than 3 logins in 10 s") and per user. In Redis mode one Lua step per event
 * (scripts/rate-hit-2.lua) so all nodes count together; in memory the same semantics.
 */
import { randomBytes } from 'node:crypto'
import type { Redis, Result } from 'ioredis'
import { defineScripts, readScripts, sourceAsset } from '../core/redis.js'

const SCRIPT_VERSION = 1

declare module 'ioredis' {
  interface RedisCommander<Context> {
    heraldRateHitV1(
      log: string,
      ban: string,
      limit: number,
      windowMs: number,
      cooldownMs: number,
      member: string,
    ): Result<number, Context>
  }
}

export interface RateLimit {
  /** Events allowed per window. */
  limit: number
  windowMs: number
  /** Past the limit, the key is refused this long (0 = until the window lets it in). */
  cooldownMs: number
}

export interface RateStore {
  /** Counts one event for `key`: 0 when allowed, else how long to wait (ms). */
  hit(key: string, limit: RateLimit): Promise<number>
}

export class MemoryRates implements RateStore {
  private readonly logs = new Map<string, { times: number[]; bannedUntil: number }>()
  private lastPrune = 0

  constructor(private readonly clock: () => number = Date.now) {}

  async hit(key: string, { limit, windowMs, cooldownMs }: RateLimit): Promise<number> {
    const now = this.clock()
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

  hit(key: string, { limit, windowMs, cooldownMs }: RateLimit): Promise<number> {
    const base = `${this.prefix}rate:{${key}}`
    return this.redis.heraldRateHitV1(
      `${base}:log`,
      `${base}:ban`,
      limit,
      windowMs,
      cooldownMs,
      randomBytes(6).toString('base64url'),
    )
  }
}
