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
  /**
   * A session is connected again (`persistent`), or was discarded by a clean connect: it is no
   * longer idle, nor held by a node that may have died.
   */
  active(clientId: string, persistent: boolean): Promise<void>
  /** Idle sessions, oldest first: since before `before`. */
  idleBefore(before: number, limit: number): Promise<string[]>
  /**
   * Every idle session, `size` or so at a time (a session idle throughout comes at least once;
   * one that goes or comes meanwhile may or may not).
   */
  idlePages(size: number): AsyncIterable<string[]>
  /** Takes one session off the idle list; true for the one caller that removed it. */
  claim(clientId: string): Promise<boolean>
  /**
   * Shared registries (Redis): these sessions are connected to this node now. A node refreshes
   * its connected persistent sessions every janitor pass, so one whose node died without
   * closing them (SIGKILL, a lost machine) stops being refreshed and is found by `orphans`.
   */
  refresh?(clientIds: string[], at: number): Promise<void>
  /**
   * Sessions held by a node that stopped refreshing them before `staleBefore` become idle,
   * since their last refresh (at most `limit` per call); returns how many.
   */
  orphans?(staleBefore: number, limit: number): Promise<number>
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
  async *idlePages(size: number) {
    const ids = [...this.since.keys()]
    for (let i = 0; i < ids.length; i += size) yield ids.slice(i, i + size)
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
  /** Connected persistent sessions: clientId -> when its node last said it holds it, ms. */
  private readonly liveKey: string
  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = `${prefix}sessions:idle`
    this.liveKey = `${prefix}sessions:live`
  }
  async idle(clientId: string, at: number) {
    await this.redis.multi().zrem(this.liveKey, clientId).zadd(this.key, at, clientId).exec()
  }
  async active(clientId: string, persistent: boolean) {
    // one command for a clean connect (every connect runs this): it holds no session. A
    // `sessions:live` entry a dead node left under its clientId turns idle and is swept later,
    // which finds nothing to remove (Aedes discarded that session at this connect).
    if (!persistent) {
      await this.redis.zrem(this.key, clientId)
      return
    }
    await this.redis.multi().zrem(this.key, clientId).zadd(this.liveKey, Date.now(), clientId).exec()
  }
  async refresh(clientIds: string[], at: number) {
    for (let i = 0; i < clientIds.length; i += 500) {
      const page = clientIds.slice(i, i + 500)
      const flat = page.flatMap((id) => [at, id])
      await this.redis
        .multi()
        .zrem(this.key, ...page)
        .zadd(this.liveKey, ...flat)
        .exec()
    }
  }
  async orphans(staleBefore: number, limit: number) {
    const flat = await this.redis.zrangebyscore(
      this.liveKey,
      '-inf',
      `(${staleBefore}`,
      'WITHSCORES',
      'LIMIT',
      0,
      limit,
    )
    if (flat.length === 0) return 0
    // a node that refreshes one of these meanwhile takes it back at its next pass (refresh)
    const tx = this.redis.multi()
    for (let i = 0; i < flat.length; i += 2) {
      tx.zrem(this.liveKey, flat[i]!)
      tx.zadd(this.key, flat[i + 1]!, flat[i]!)
    }
    await tx.exec()
    return flat.length / 2
  }
  async idleBefore(before: number, limit: number) {
    return this.redis.zrangebyscore(this.key, '-inf', `(${before}`, 'LIMIT', 0, limit)
  }
  async *idlePages(size: number) {
    // ZSCAN, not ranges by rank: a session leaving the set while the pass runs would shift the
    // ranks after it and hide the next one from this pass
    let cursor = '0'
    do {
      const [next, flat] = await this.redis.zscan(this.key, cursor, 'COUNT', size)
      cursor = next
      const ids = flat.filter((_, i) => i % 2 === 0) // member, score, member, score…
      if (ids.length > 0) yield ids
    } while (cursor !== '0')
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
  /** Keeps at most `max` queued messages of each of these offline sessions. */
  trimQueues(clientIds: string[], max: number): Promise<void>
}

export interface SessionBounds {
  maxIdleMs: number
  maxQueue: number
}

/** Idle sessions read, and their queues trimmed, per round trip of a janitor pass. */
const PAGE = 500

/**
 * Expires idle sessions and, in Redis mode, caps their queues. The cap is a pass over every idle
 * session rather than a bound at enqueue time (as memory mode has): aedes-persistence-redis
 * enqueues in several round trips per packet and cannot tell a connected session from an
 * offline one, so a bound there would add a read of the idle set and an LTRIM to every QoS 1
 * delivery to a persistent session — the hot path — whereas a pass costs one ZSCAN and one
 * pipelined batch of LTRIMs (O(1) on a short or missing list) per 500 idle sessions, off that
 * path, and a page at a time holds neither the event loop nor Redis for long.
 */
export class SessionJanitor {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<number> | undefined
  private stopped = false
  private readonly log: Logger

  /** Time between passes, ms. */
  readonly every: number

  constructor(
    private readonly registry: SessionRegistry,
    private readonly storage: SessionStorage,
    private readonly bounds: SessionBounds,
    logger: Logger,
    /** The persistent sessions connected to this node now (refreshed in a shared registry). */
    private readonly held?: () => string[],
  ) {
    this.log = logger.child({ component: 'sessions' })
    this.every = Math.min(Math.max(Math.floor(this.bounds.maxIdleMs / 4), 1000), 60_000)
  }

  start(): void {
    const every = this.every
    this.timer = setInterval(() => {
      // a pass over many idle sessions may outlast the interval: the timer never starts a second
      if (this.running) return
      this.running = this.sweep().finally(() => {
        this.running = undefined
      })
    }, every)
    this.timer.unref()
  }

  /** No new pass; a running one ends after its current page. */
  stop(): void {
    this.stopped = true
    clearInterval(this.timer)
  }

  async sweep(now = Date.now()): Promise<number> {
    let expired = 0
    try {
      // sessions of a node that died without closing them (SIGKILL) were never marked idle:
      // each live node says which it holds, and those no node has held for 3 passes go idle
      // (capped, then expired, as any other)
      // (by the real clock, not the pass's `now`: that is the idle clock tests move forward)
      const wall = Date.now()
      if (this.registry.refresh && this.held) await this.registry.refresh(this.held(), wall)
      if (this.registry.orphans) {
        let orphaned = 0
        for (let more = true; more && !this.stopped; ) {
          const n = await this.registry.orphans(wall - 3 * this.every, PAGE)
          orphaned += n
          more = n === PAGE
        }
        if (orphaned > 0)
          this.log.info(
            { orphaned },
            'persistent sessions whose node went away are idle from their last refresh',
          )
      }
      // every session idle too long, a page at a time: each one read leaves the idle set (claimed
      // here or by another node), so the next read finds the next ones
      for (let more = true; more && !this.stopped; ) {
        const due = await this.registry.idleBefore(now - this.bounds.maxIdleMs, PAGE)
        for (const clientId of due) {
          if (!(await this.registry.claim(clientId))) continue // another node took it
          await this.storage.cleanSubscriptions({ id: clientId })
          await this.storage.dropQueue(clientId)
          expired += 1
        }
        more = due.length === PAGE
      }
      if (expired > 0)
        this.log.info({ expired, maxIdleMs: this.bounds.maxIdleMs }, 'idle persistent sessions removed')
      // every idle session, not the oldest few: one that went idle after the first page would
      // otherwise keep an uncapped queue until the older ones expire (days)
      for await (const page of this.registry.idlePages(PAGE)) {
        if (this.stopped) break
        await this.storage.trimQueues(page, this.bounds.maxQueue)
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'session sweep failed; will retry')
    }
    return expired
  }
}
