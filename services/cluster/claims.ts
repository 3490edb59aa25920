/**
 * Claims order the connections of one clientId across nodes. Two CONNECTs with the same
 * clientId on two nodes a millisecond apart have no order of their own; Aedes closes whichever
 * client hears the other node's announcement, and both can end up closed (measured: 50 rounds
 * with 0–2 ms between connects lost the client in round 3). Every connection takes the next
 * claim for its clientId from Redis (INCR); the highest claim wins, everywhere.
 */
import type { Counters } from './counters.js'

export interface ClaimCounter {
  next(clientId: string): Promise<number>
}

/** Claims never repeat, not even after Redis lost its data (they start at the clock). */
export function claimCounter(counters: Counters, prefix: string, ttlMs = 24 * 3600_000): ClaimCounter {
  return { next: (clientId) => counters.next(`${prefix}claim:{${clientId}}`, ttlMs) }
}
