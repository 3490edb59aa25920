/**
 * Numbers that order things across processes and must never repeat — node epochs, writer
 * epochs, clientId claims. A plain INCR starts again at 1 when Redis restarts without its data
 * (or is flushed): a restarted node would reuse its epoch and its fresh events would look like
 * repeats. So the next value is at least the caller's clock (ms) as well as one more than the
 * last (scripts/next-1.lua).
 */
import type { Redis, Result } from 'ioredis'
import { defineScripts, readScripts, sourceAsset } from '../core/redis.js'

const SCRIPT_VERSION = 1

declare module 'ioredis' {
  interface RedisCommander<Context> {
    heraldNextV1(key: string, floor: number, ttlMs: number): Result<number, Context>
  }
}

export interface Counters {
  next(key: string, ttlMs?: number): Promise<number>
}

export function redisCounters(redis: Redis): Counters {
  defineScripts(redis, readScripts(sourceAsset(import.meta.url, './scripts/'), SCRIPT_VERSION, 'herald'))
  return { next: (key, ttlMs = 0) => redis.heraldNextV1(key, Date.now(), ttlMs) }
}

export function memoryCounters(): Counters {
  const values = new Map<string, number>()
  return {
    next: async (key) => {
      const next = Math.max((values.get(key) ?? 0) + 1, Date.now())
      values.set(key, next)
      return next
    },
  }
}
