/**
 * Reconnect delays: exponential backoff with full jitter (AWS Architecture Blog, "Exponential
 * Backoff And Jitter"): attempt n waits a uniform random time in [0, min(max, min·2ⁿ)], so a
 * thousand devices cut off together do not come back together.
 */
export interface BackoffOptions {
  /** Upper bound of the first delay, ms. */
  minMs: number
  /** Largest delay, ms. */
  maxMs: number
}

/** The delay before reconnect attempt `attempt` (0-based). `random` is injectable for tests. */
export function backoffDelay(
  attempt: number,
  opts: BackoffOptions,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(opts.maxMs, opts.minMs * 2 ** Math.min(attempt, 30))
  return Math.floor(random() * ceiling)
}
