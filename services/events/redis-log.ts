/**
 * The per-node presence event log as a Redis Stream: the node appends (XADD, bounded with
 * MAXLEN ~; a write batch in one script, scripts/append-2.lua), the presence service reads
 * every node's stream in order (XREAD). A stream gives order, durability across a
 * presence-service restart and the queue seed 003 asks for; what pub/sub cannot (at most
 * once, no back-pressure).
 *
 *   ev:{<nodeId>}   stream  one entry per event, field `d` = JSON
 *   evnodes         set     node ids that have a stream
 */

import type { Redis, Result } from 'ioredis'
import { compareOffsets, isOffset } from '../core/envelope.js'
import type { Logger } from '../core/logger.js'
import { defineScripts, readScripts, sourceAsset } from '../core/redis.js'
import type { EventSink, EventSource, HelloEvent, LogEntry, NodeEvent } from './types.js'

/** Bump when a script changes incompatibly: commands are defined under a version-suffixed name. */
const SCRIPT_VERSION = 1

declare module 'ioredis' {
  interface RedisCommander<Context> {
    heraldAppendV1(
      stream: string,
      nodes: string,
      nodeId: string,
      maxLen: number,
      ...events: string[]
    ): Result<number, Context>
  }
}

export interface RedisLogOptions {
  redis: Redis
  prefix: string
  logger: Logger
  /** Entries kept per node stream (approximate trim). Default 100,000. */
  maxLen?: number
  /** Events buffered in the node while Redis is unreachable before the oldest are dropped. */
  maxQueued?: number
  /**
   * A write batch ends once its events' JSON reaches this many characters (the event that
   * crosses it is the batch's last). Default 1 Mi.
   */
  maxBatchChars?: number
}

const BATCH = 500
/**
 * A batch is one script, and Redis runs nothing else while a script runs. Snapshot chunks are
 * large (1,000 connections each, ~230 K characters): without a cap, the snapshot of 100k
 * connections would be one script of ~23 MB, holding Redis for everyone (other nodes' logs,
 * inboxes).
 */
const BATCH_CHARS = 1 << 20

/**
 * The JSON of the events a write batch takes from the head of `queue` (`taken` of them): at
 * most `maxEvents`, and none more once `maxChars` characters are reached (the last one taken
 * may cross it). An event JSON.stringify refuses is taken and left out (`unwritable`): written
 * later it would fail the same way and hold up every event behind it. Its sequence number is
 * then missing from the log, which makes the presence service re-sync this node.
 */
function takeBatch(
  queue: readonly NodeEvent[],
  maxEvents: number,
  maxChars: number,
): { json: string[]; taken: number; unwritable: NodeEvent[] } {
  const json: string[] = []
  const unwritable: NodeEvent[] = []
  let chars = 0
  let taken = 0
  for (const ev of queue) {
    if (taken === maxEvents || chars >= maxChars) break
    taken++
    try {
      const text = JSON.stringify(ev)
      json.push(text)
      chars += text.length
    } catch {
      unwritable.push(ev)
    }
  }
  return { json, taken, unwritable }
}

export const streamKey = (prefix: string, nodeId: string) => `${prefix}ev:{${nodeId}}`
export const streamNodesKey = (prefix: string) => `${prefix}evnodes`
/** The client name of the connection a node writes its log on (CLIENT SETNAME). */
export const sinkConnectionName = (nodeId: string) => `herald-sink-${nodeId}`

export class RedisEventSink implements EventSink {
  private queue: NodeEvent[] = []
  private writing: Promise<void> | undefined
  private closed = false
  private dropped = 0
  private readonly key: string
  private readonly log: Logger

  constructor(
    private readonly opts: RedisLogOptions,
    readonly nodeId: string,
  ) {
    this.key = streamKey(opts.prefix, nodeId)
    this.log = opts.logger.child({ component: 'event-sink', nodeId })
    defineScripts(
      opts.redis,
      readScripts(sourceAsset(import.meta.url, './scripts/'), SCRIPT_VERSION, 'herald'),
    )
  }

  append(ev: NodeEvent): void {
    if (this.closed) return
    const max = this.opts.maxQueued ?? 200_000
    if (this.queue.length >= max) {
      // Redis has been away too long: drop the oldest. The sequence gap makes the presence
      // service re-sync this node once it reads again.
      this.queue.shift()
      if (this.dropped++ === 0)
        this.log.error({ max }, 'event queue full while Redis is unreachable; dropping')
    }
    this.queue.push(ev)
    this.writing ??= this.drain()
  }

  async flush(): Promise<void> {
    while (this.writing) await this.writing
  }

  async close(): Promise<void> {
    await this.flush()
    this.closed = true
  }

  private async drain(): Promise<void> {
    let backoff = 50
    try {
      while (this.queue.length > 0) {
        const batch = takeBatch(this.queue, BATCH, this.opts.maxBatchChars ?? BATCH_CHARS)
        for (const ev of batch.unwritable) {
          this.log.error({ kind: ev.k, seq: ev.s }, 'log event cannot be serialised; left out')
        }
        if (batch.json.length === 0) {
          this.queue.splice(0, batch.taken)
          continue
        }
        try {
          // one script per batch (scripts/append-2.lua): a command per event cost this
          // process measurably more CPU per connect (docs/benchmarks.md, twelfth session)
          await this.opts.redis.heraldAppendV1(
            this.key,
            streamNodesKey(this.opts.prefix),
            this.nodeId,
            this.opts.maxLen ?? 100_000,
            ...batch.json,
          )
          this.queue.splice(0, batch.taken)
          if (this.dropped > 0) {
            this.log.warn({ dropped: this.dropped }, 'event log writable again')
            this.dropped = 0
          }
          backoff = 50
        } catch (err) {
          // keep order: retry the same batch (a partial write repeats entries; the service drops
          // repeated sequence numbers)
          this.log.warn(
            { err: (err as Error).message, queued: this.queue.length },
            'event log write failed; retrying',
          )
          await new Promise((r) => setTimeout(r, backoff))
          backoff = Math.min(backoff * 2, 2000)
          if (this.closed) return
        }
      }
    } finally {
      this.writing = undefined
    }
  }
}

export class RedisEventSource implements EventSource {
  private readonly cursors = new Map<string, string>()
  private running = false
  /** Ends the loop's back-off wait early (stop). */
  private wake: (() => void) | undefined
  private loopDone: Promise<void> | undefined
  private readonly log: Logger

  /** @param reader a connection of its own: XREAD BLOCK holds it. */
  constructor(
    private readonly opts: RedisLogOptions,
    private readonly reader: Redis,
  ) {
    this.log = opts.logger.child({ component: 'event-source' })
  }

  start(handler: (batch: LogEntry[]) => Promise<void>, onNewNode: (nodeId: string) => Promise<void>): void {
    this.running = true
    this.loopDone = this.loop(handler, onNewNode)
  }

  async seekToEnd(nodeId: string): Promise<void> {
    const last = await this.opts.redis.xrevrange(streamKey(this.opts.prefix, nodeId), '+', '-', 'COUNT', 1)
    this.cursors.set(nodeId, last[0]?.[0] ?? '0')
  }

  async seekTo(nodeId: string, id: string): Promise<boolean> {
    // XADD trims the oldest entries (MAXLEN ~): the ones right after `id` must still be there,
    // that is, the oldest entry kept is not newer than `id` (and `id` is a stream id at all)
    if (!isOffset(id)) return false
    const first = await this.opts.redis.xrange(streamKey(this.opts.prefix, nodeId), '-', '+', 'COUNT', 1)
    const oldest = first[0]?.[0]
    if (oldest === undefined || compareOffsets(oldest, id) > 0) return false
    this.cursors.set(nodeId, id)
    return true
  }

  async lastHello(
    nodeId: string,
    within: number,
  ): Promise<{ id: string; hello: HelloEvent; lastAt: number } | undefined> {
    const entries = await this.opts.redis.xrevrange(
      streamKey(this.opts.prefix, nodeId),
      '+',
      '-',
      'COUNT',
      within,
    )
    const lastId = entries[0]?.[0]
    if (lastId === undefined) return undefined
    for (const [id, fields] of entries) {
      const d = fields[1]
      if (!d?.includes('"hello"')) continue // cheap: most entries are not
      try {
        const ev = JSON.parse(d) as NodeEvent
        // a stream id begins with the ms Redis wrote it at
        if (ev.k === 'hello') return { id, hello: ev, lastAt: Number(lastId.split('-')[0]) }
      } catch {
        // an unreadable entry is skipped here as the reader skips it
      }
    }
    return undefined
  }

  async nodes(): Promise<string[]> {
    return this.opts.redis.smembers(streamNodesKey(this.opts.prefix))
  }

  async stop(): Promise<void> {
    this.running = false
    this.wake?.() // a loop backing off after errors (Redis away) ends now, not after its wait
    this.reader.disconnect()
    // while Redis is away a blocked XREAD may never settle: do not wait for it forever
    await Promise.race([this.loopDone, new Promise((r) => setTimeout(r, 1000).unref())])
  }

  async caughtUp(): Promise<boolean> {
    for (const nodeId of this.cursors.keys()) if (await this.behind(nodeId)) return false
    return true
  }

  /** The cursor moves past a batch only once its handler is done: a batch in hand counts as behind. */
  async behind(nodeId: string): Promise<boolean> {
    const cursor = this.cursors.get(nodeId)
    if (cursor === undefined) return false
    const last = await this.opts.redis.xrevrange(streamKey(this.opts.prefix, nodeId), '+', '-', 'COUNT', 1)
    const lastId = last[0]?.[0]
    return lastId !== undefined && lastId !== cursor
  }

  async disconnected(nodeIds: string[], settledMs: number): Promise<Set<string> | undefined> {
    let list: string
    try {
      list = String(await this.opts.redis.client('LIST'))
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'CLIENT LIST refused: liveness by heartbeats only')
      return undefined
    }
    const named = new Set<string>()
    let ownAgeS = -1
    for (const line of list.split('\n')) {
      const name = / name=(\S*)/.exec(line)?.[1]
      if (name) named.add(name)
      // the line of the connection that asked (its command is this CLIENT LIST)
      if (/ cmd=client\|list\b/.test(line)) ownAgeS = Number(/ age=(\d+)/.exec(line)?.[1] ?? -1)
    }
    if (ownAgeS * 1000 < settledMs) return undefined
    return new Set(nodeIds.filter((id) => !named.has(sinkConnectionName(id))))
  }

  /** Forgets every cursor: each node is treated as new again (after a Redis data loss). */
  reset(): void {
    this.cursors.clear()
  }

  private async discover(nodeIds: string[], onNewNode: (nodeId: string) => Promise<void>): Promise<void> {
    for (const nodeId of nodeIds) {
      if (!this.cursors.has(nodeId)) {
        await this.seekToEnd(nodeId)
        await onNewNode(nodeId)
      }
    }
  }

  private async loop(
    handler: (batch: LogEntry[]) => Promise<void>,
    onNewNode: (nodeId: string) => Promise<void>,
  ) {
    let backoff = 50
    while (this.running) {
      try {
        if (this.cursors.size === 0) {
          await this.discover(await this.nodes(), onNewNode)
          if (this.cursors.size === 0) {
            await new Promise((r) => setTimeout(r, 200))
            continue
          }
        }
        const ids = [...this.cursors.keys()]
        const keys = ids.map((id) => streamKey(this.opts.prefix, id))
        // The node set is read right behind the read, on the same connection (one round trip):
        // a node whose log began before the read returned (a takeover's new node, whose claim
        // made the other node's disconnect that is in this read) is known — and re-syncing —
        // before anything of the read is applied, so no offline edge is released while it may
        // hold that user. The same answer serves the next read.
        const [read, members] = ((await this.reader
          .pipeline()
          .xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', ...keys, ...ids.map((id) => this.cursors.get(id)!))
          .smembers(streamNodesKey(this.opts.prefix))
          .exec()) ?? []) as Array<[Error | null, unknown]>
        if (!read || !members) throw new Error('no reply to the read')
        if (read[0]) throw read[0]
        if (members[0]) throw members[0]
        const reply = read[1] as Array<[string, Array<[string, string[]]>]> | null
        backoff = 50
        await this.discover(members[1] as string[], onNewNode)
        if (!reply) continue
        const batch: LogEntry[] = []
        const advanced = new Map<string, string>()
        for (const [key, entries] of reply) {
          const nodeId = ids[keys.indexOf(key)]!
          for (const [id, fields] of entries) {
            advanced.set(nodeId, id)
            const d = fields[1]
            if (!d) continue
            try {
              batch.push({ id, ev: JSON.parse(d) as NodeEvent })
            } catch {
              this.log.error({ nodeId, id }, 'unreadable event entry skipped')
            }
          }
        }
        if (batch.length > 0) await handler(batch)
        // only now: a batch the handler failed on is read again (the service drops repeats)
        for (const [nodeId, id] of advanced) this.cursors.set(nodeId, id)
      } catch (err) {
        if (!this.running) return
        this.log.warn({ err: (err as Error).message }, 'reading presence events failed; retrying')
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoff)
          this.wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        this.wake = undefined
        backoff = Math.min(backoff * 2, 2000)
      }
    }
  }
}
