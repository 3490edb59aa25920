/**
 * Token revocation (`DELETE /v1/users/<u>/connections?revoke=true`): tokens of a user issued
 * before a time are refused, by every node and by the HTTP API. The list is kept in Redis (a
 * hash userId -> ms) in Redis mode and mirrored in memory by every process: loaded at start,
 * updated by the kick command every node receives, and re-read periodically (a lost command
 * cannot leave a node trusting a revoked token for long).
 */
import type { Redis } from 'ioredis'
import type { RevocationList } from '../core/auth.js'

export interface RevocationStore extends RevocationList {
  /** Revokes a user's tokens issued before `at` (ms). */
  revoke(userId: string, at: number): Promise<void>
  /** Applies a revocation heard on the bus, without writing it. */
  note(userId: string, at: number): void
  /** Reloads the whole list from storage. */
  refresh(): Promise<void>
}

export class MemoryRevocations implements RevocationStore {
  protected readonly before = new Map<string, number>()
  revokedBefore(userId: string): number | undefined {
    return this.before.get(userId)
  }
  note(userId: string, at: number): void {
    if (at > (this.before.get(userId) ?? 0)) this.before.set(userId, at)
  }
  async revoke(userId: string, at: number): Promise<void> {
    this.note(userId, at)
  }
  async refresh(): Promise<void> {}
}

export class RedisRevocations extends MemoryRevocations {
  private readonly key: string
  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    super()
    this.key = `${prefix}revoked`
  }
  override async revoke(userId: string, at: number): Promise<void> {
    this.note(userId, at)
    const cur = Number((await this.redis.hget(this.key, userId)) ?? 0)
    if (at > cur) await this.redis.hset(this.key, userId, at)
  }
  override async refresh(): Promise<void> {
    for (const [userId, at] of Object.entries(await this.redis.hgetall(this.key)))
      this.note(userId, Number(at))
  }
}
