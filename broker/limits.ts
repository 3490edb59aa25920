/**
 * The access node's limits (docs/security.md): connect gates (flapping device, busy user,
 * connections per user), the per-IP connect rate, per-session publish rate, subscriptions per
 * client, and closing connections whose token expired. Every refusal is logged and counted by
 * the caller with the reason these return.
 */
import type { RateStore } from '../services/cluster/rates.js'
import type { HeraldConfig } from '../services/core/config.js'
import type { ConnectAttempt, ConnectGate } from './hooks/authenticate.js'
import type { ConnectionTracker, TrackedConn } from './tracker.js'

/** A token bucket: `rate` per second, holding up to `burst`. */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst
    this.last = now
  }

  /** How long it has not been used, ms. */
  idleSince(now: number): number {
    return now - this.last
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

/**
 * New connections per IP address per second (before any byte is read: a CONNECT flood costs
 * one map lookup per socket). Buckets idle for a minute are forgotten.
 */
export class IpConnectRate {
  private readonly buckets = new Map<string, { bucket: TokenBucket; seen: number }>()
  private lastPrune = 0

  constructor(
    private readonly perSec: number,
    private readonly clock: () => number = Date.now,
  ) {}

  allow(ip: string): boolean {
    if (this.perSec <= 0) return true
    const now = this.clock()
    if (now - this.lastPrune > 60_000) {
      this.lastPrune = now
      for (const [key, entry] of this.buckets) if (entry.seen < now - 60_000) this.buckets.delete(key)
    }
    let entry = this.buckets.get(ip)
    if (!entry) {
      entry = { bucket: new TokenBucket(this.perSec, this.perSec * 2, now), seen: now }
      this.buckets.set(ip, entry)
    }
    entry.seen = now
    return entry.bucket.take(now)
  }
}

/**
 * A byte budget per key (a user's history replies on this node): `perSec` bytes a second, up to
 * `burst`. Spending may run into debt (a reply is sent whole), which later requests wait out.
 * Keys idle long enough to be full again are forgotten.
 */
export class ByteBudgets {
  private readonly buckets = new Map<string, { tokens: number; last: number }>()
  private lastPrune = 0

  constructor(
    private readonly perSec: number,
    private readonly burst: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** How long `key` must wait before it may spend again, ms (0 = now). */
  waitMs(key: string): number {
    const b = this.refill(key)
    return b.tokens > 0 ? 0 : Math.ceil(((1 - b.tokens) / this.perSec) * 1000)
  }

  spend(key: string, bytes: number): void {
    this.refill(key).tokens -= bytes
  }

  get size(): number {
    return this.buckets.size
  }

  private refill(key: string): { tokens: number; last: number } {
    const now = this.clock()
    const fullAfterMs = (this.burst / this.perSec) * 1000
    if (now - this.lastPrune > 60_000) {
      this.lastPrune = now
      for (const [k, b] of this.buckets) if (b.last < now - fullAfterMs - 60_000) this.buckets.delete(k)
    }
    let b = this.buckets.get(key)
    if (!b) {
      b = { tokens: this.burst, last: now }
      this.buckets.set(key, b)
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.last) / 1000) * this.perSec)
    b.last = now
    return b
  }
}

/** The gates every CONNECT passes after its token verified, in order. */
export function connectGates(
  config: HeraldConfig,
  rates: RateStore,
  tracker: ConnectionTracker,
): ConnectGate[] {
  const gates: ConnectGate[] = []
  const window = { windowMs: config.flapWindowMs, cooldownMs: config.flapCooldownMs }
  // the device's limit, then its user's: one call (one round trip, in Redis one script)
  const limits = [
    {
      on: config.flapConnects > 0,
      reason: 'flapping',
      limit: config.flapConnects,
      key: (a: ConnectAttempt) => `c:${a.client.id}`,
    },
    {
      on: config.userConnects > 0,
      reason: 'user-connect-rate',
      limit: config.userConnects,
      key: (a: ConnectAttempt) => `u:${a.userId}`,
    },
  ].filter((l) => l.on)
  if (limits.length > 0) {
    gates.push(async (attempt: ConnectAttempt) => {
      const refused = await rates.hit(limits.map((l) => ({ key: l.key(attempt), limit: l.limit, ...window })))
      return refused ? { reason: limits[refused.index]!.reason, retryAfterMs: refused.waitMs } : undefined
    })
  }
  if (config.maxConnectionsPerUser > 0) {
    gates.push(async ({ userId, client }: ConnectAttempt) => {
      // a takeover of one of the user's own devices replaces a connection, it does not add one
      let open = 0
      for (const conn of tracker.ofUser(userId)) if (conn.clientId !== client.id) open += 1
      return open >= config.maxConnectionsPerUser ? { reason: 'too-many-connections' } : undefined
    })
  }
  return gates
}

/**
 * Closes connections whose token expired more than `graceMs` ago. Connections are filed by
 * the second they become due, so a tick touches only those.
 */
export class ExpiryWatch {
  private readonly due = new Map<number, Set<TrackedConn>>()
  private timer: NodeJS.Timeout | undefined
  private nextSecond: number

  constructor(
    private readonly graceMs: number,
    private readonly expire: (conn: TrackedConn) => void,
    private readonly clock: () => number = Date.now,
  ) {
    this.nextSecond = Math.floor(clock() / 1000)
  }

  start(): void {
    this.nextSecond = Math.floor(this.clock() / 1000)
    this.timer = setInterval(() => this.tick(), 1000)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  add(conn: TrackedConn): void {
    const due = this.dueSecond(conn)
    if (due === undefined) return
    const second = Math.max(this.nextSecond, due)
    let set = this.due.get(second)
    if (!set) {
      set = new Set()
      this.due.set(second, set)
    }
    set.add(conn)
  }

  /**
   * A connection that ended is let go now, not when its token would have expired: it holds its
   * Aedes client, socket and buffers, and tokens live for hours. (One filed under an earlier
   * second, its token already due when it was added, goes at the next tick.)
   */
  remove(conn: TrackedConn): void {
    const second = this.dueSecond(conn)
    if (second === undefined) return
    const set = this.due.get(second)
    if (!set?.delete(conn) || set.size > 0) return
    this.due.delete(second)
  }

  /** Connections waiting for their token's expiry. */
  get size(): number {
    let n = 0
    for (const set of this.due.values()) n += set.size
    return n
  }

  private dueSecond(conn: TrackedConn): number | undefined {
    const exp = conn.principal.exp
    return exp === undefined ? undefined : Math.floor((exp * 1000 + this.graceMs) / 1000)
  }

  tick(): void {
    const now = Math.floor(this.clock() / 1000)
    // catch up from the last tick; a long pause (or a token already due) is one sweep of the map
    if (now - this.nextSecond > 3600) {
      for (const second of [...this.due.keys()]) if (second <= now) this.fire(second)
    } else {
      for (let s = Math.min(this.nextSecond, now); s <= now; s++) this.fire(s)
    }
    this.nextSecond = now + 1
  }

  private fire(second: number): void {
    const set = this.due.get(second)
    if (!set) return
    this.due.delete(second)
    for (const conn of set) if (!conn.closed) this.expire(conn)
  }
}
