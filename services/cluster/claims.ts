/**
 * Claims order the connections of one clientId across nodes. Two CONNECTs with the same
 * clientId on two nodes a millisecond apart have no order of their own; Aedes closes whichever
 * client hears the other node's announcement, and both can end up closed (measured: 50 rounds
 * with 0–2 ms between connects lost the client in round 3). Every connection takes the next
 * claim for its clientId from Redis (INCR); the highest claim wins, everywhere.
 */
import type { Redis } from 'ioredis'

export interface ClaimCounter {
  next(clientId: string): Promise<number>
}

/** One process: a counter per clientId is enough (and only the node itself competes). */
export class MemoryClaims implements ClaimCounter {
  private n = 0
  async next(): Promise<number> {
    return ++this.n
  }
}

export class RedisClaims implements ClaimCounter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Claims only order connections close in time; the counter may be forgotten after a day. */
    private readonly ttlMs = 24 * 3600_000,
  ) {}
  async next(clientId: string): Promise<number> {
    const key = `${this.prefix}claim:{${clientId}}`
    const [[err, n]] = ((await this.redis.multi().incr(key).pexpire(key, this.ttlMs).exec()) ?? []) as [
      [Error | null, number],
    ]
    if (err) throw err
    return n
  }
}
