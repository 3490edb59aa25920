/**
 * Leases: "this name is mine while I keep saying so". Used for node ids (a second live node with
 * the same id refuses to start) and, by the recovery work, for the single presence-service writer.
 * Memory leases live in one process; Redis leases are a key with a TTL renewed by its holder.
 */
import { randomBytes } from 'node:crypto'
import type { Redis, Result } from 'ioredis'
import { defineScripts, readScripts, sourceAsset } from '../core/redis.js'

const SCRIPT_VERSION = 1

declare module 'ioredis' {
  interface RedisCommander<Context> {
    heraldLeaseRenewV1(key: string, holder: string, ttlMs: number): Result<number, Context>
    heraldLeaseReleaseV1(key: string, holder: string): Result<number, Context>
    heraldLeaseTakeV1(key: string, from: string, holder: string, ttlMs: number): Result<number, Context>
  }
}

export type RenewResult = 'renewed' | 'lost' | 'retaken'

export interface Lease {
  readonly holder: string
  /** Takes the lease if nobody holds it. */
  acquire(): Promise<boolean>
  /** Extends the lease; `lost` when someone else holds it now. */
  renew(): Promise<RenewResult>
  release(): Promise<void>
  /** Takes the lease from `from` (only if `from` holds it now). */
  takeFrom(from: string): Promise<boolean>
  /** Who holds it now (undefined = nobody). */
  current(): Promise<string | undefined>
}

export function newHolderId(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`
}

/** Leases of one in-process backend (one embedded Herald). */
export type MemoryLeaseTable = Map<string, { holder: string; until: number }>

export function memoryLease(
  memoryLeases: MemoryLeaseTable,
  name: string,
  ttlMs: number,
  holder = newHolderId(),
): Lease {
  const live = () => {
    const l = memoryLeases.get(name)
    return l && l.until > Date.now() ? l : undefined
  }
  return {
    holder,
    acquire: async () => {
      if (live()) return false
      memoryLeases.set(name, { holder, until: Date.now() + ttlMs })
      return true
    },
    renew: async () => {
      const l = live()
      if (l && l.holder !== holder) return 'lost'
      memoryLeases.set(name, { holder, until: Date.now() + ttlMs })
      return l ? 'renewed' : 'retaken'
    },
    release: async () => {
      if (live()?.holder === holder) memoryLeases.delete(name)
    },
    takeFrom: async (from) => {
      if (live()?.holder !== from) return false
      memoryLeases.set(name, { holder, until: Date.now() + ttlMs })
      return true
    },
    current: async () => live()?.holder,
  }
}

export function redisLease(redis: Redis, key: string, ttlMs: number, holder = newHolderId()): Lease {
  defineScripts(redis, readScripts(sourceAsset(import.meta.url, './scripts/'), SCRIPT_VERSION, 'herald'))
  return {
    holder,
    acquire: async () => (await redis.set(key, holder, 'PX', ttlMs, 'NX')) === 'OK',
    renew: async () => {
      const code = await redis.heraldLeaseRenewV1(key, holder, ttlMs)
      return code === 1 ? 'renewed' : code === -1 ? 'retaken' : 'lost'
    },
    release: async () => {
      await redis.heraldLeaseReleaseV1(key, holder)
    },
    takeFrom: async (from) => (await redis.heraldLeaseTakeV1(key, from, holder, ttlMs)) === 1,
    current: async () => (await redis.get(key)) ?? undefined,
  }
}
