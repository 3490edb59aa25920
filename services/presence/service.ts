/**
 * The presence service: reads every access node's event log in order and applies it to the
 * store with fencing; publishes the retained presence document on user-level edges; notices
 * gaps, drift and dead nodes; re-syncs a node by asking it for its whole online set.
 *
 * Per node it keeps a small state machine:
 *   live            applying events in sequence order (repeats dropped, a gap -> resync)
 *   awaiting        a resync was requested; events are covered by the coming snapshot
 *   snapshot        a snapshot is being applied under a new generation
 */
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import { Digest } from '../events/digest.js'
import type {
  ControlCommand,
  EventSource,
  LogEntry,
  NodeEvent,
  SnapshotEvent,
  StatusEvent,
} from '../events/types.js'
import type { KeptWill, StoredWill, WillStore } from '../wills/store.js'
import {
  type Change,
  type LogMark,
  type LogResume,
  type PresenceStore,
  StaleWriterError,
  type StoreOp,
} from './store.js'
import { type ConnRecord, type PresenceDoc, parseFenceToken } from './types.js'
import type { ActivityLookup } from './view.js'

/** Where the service's outputs go: retained presence documents and commands to nodes. */
export interface PresencePublisher {
  presence(doc: PresenceDoc): void
  /** Several documents as one message, each delivered as `presence()` would (optional). */
  presenceMany?(docs: PresenceDoc[]): void
  control(nodeId: string, cmd: ControlCommand): void
}

export interface PresenceServiceOptions {
  store: PresenceStore
  source: EventSource
  publisher: PresencePublisher
  logger: Logger
  metrics: Metrics
  /** This service's writer epoch (fences its writes). */
  epoch: number
  /** Default node heartbeat interval, until a node says its own. */
  heartbeatMs: number
  /** Check the store against node digests every this many heartbeats (0 = never). */
  digestEvery?: number
  /** Live activity of connections this process holds (the all-in-one process). */
  activity?: ActivityLookup
  /** Herald's wills: published at most once when a connection ends abruptly or its node dies. */
  wills?: { store: WillStore; publish: (will: StoredWill) => Promise<void> }
  /** Time source (tests drive it by hand). Default Date.now. */
  clock?: () => number
  /** Run the housekeeping timer (dead nodes, retries, takeover grace). Default true; tests call tick(). */
  autoTick?: boolean
  /** A newer presence service wrote the store: this one must stop writing. */
  onSuperseded?: () => void
  /**
   * The longest an offline edge is held waiting for certainty (then it is published anyway),
   * ms: longer than a dead node takes to be declared dead.
   */
  holdMs: number
}

/** At most one watermark request to the nodes per this many ms. */
const MARK_EVERY_MS = 50
/** Presence documents published per event-loop turn when many are due at once. */
const PUBLISH_SLICE = 1000
/** Heartbeats of silence after which a node whose log connection is gone is dead (unplugged). */
const QUICK_SILENCE = 1.5
/**
 * Snapshot chunks whose store write is under way while the next one is read and prepared: a
 * chunk's write is a round trip of ~12 ms per 1,000 records, as long as this process's own work
 * on a chunk, so one in flight makes a re-sync's Redis and this process work side by side.
 */
const CHUNKS_IN_FLIGHT = 1
const UNPLUGGED_EVERY_MS = 200

type Mode = 'live' | 'awaiting' | 'snapshot'

/** How far back in a node's log its hello is looked for (startedMoments). */
const HELLO_WITHIN = 1000

interface NodeView {
  nodeId: string
  epoch: number
  /** Last sequence number applied. */
  applied: number
  mode: Mode
  req: string | undefined
  /**
   * The request of a re-sync that follows a resume (discovered): while it is awaited the
   * node's events are applied, not skipped — they are read from where the store was right.
   */
  replayReq: string | undefined
  reqAt: number
  gen: number
  asOf: number
  /** Sequenced events newer than the snapshot being applied. */
  buffered: NodeEvent[]
  /** An older incarnation to retire before this entry is applied (applyEntries), or 0. */
  retireBelow: number
  /**
   * Each user's last status change read while a re-sync was awaited: a snapshot carries
   * connections, not statuses, so these are applied once the node's records are right again.
   */
  awaitedStatus: Map<string, StatusEvent>
  lastHeartbeat: number
  every: number
  heartbeats: number
  /** The newest node-clock time seen in this node's log (its watermark). */
  mark: number
  /** Unanswered resync requests in a row. */
  retries: number
  dead: boolean
  gone: boolean
  snapStarted: number
  /** When the snapshot being applied last moved (begin, a chunk): a stalled one is asked again. */
  snapProgressAt: number
  /**
   * Of the snapshot being applied: ms waiting for the store (its chunks are written while the
   * next is prepared) and publishing edges (where its time went).
   */
  snapStoreMs: number
  snapPublishMs: number
  /**
   * The node delivers documents in bulk, as its last hello, heartbeat or snapshot said;
   * undefined until one is read (a node found through its log's end, not its hello).
   */
  bulk: boolean | undefined
}

/**
 * Store writes begun and not yet awaited, at most `depth` while the caller goes on; awaited in
 * the order begun. Every write is awaited before the batch that began it ends (`drain`).
 */
class InFlight {
  private writes: Array<Promise<void>> = []
  constructor(private readonly depth: number) {}

  get size(): number {
    return this.writes.length
  }

  /** Takes a write under way; waits for the oldest ones while more than `depth` are. */
  async add(write: Promise<void>): Promise<void> {
    write.catch(() => {}) // awaited below or by drain; not an unhandled rejection meanwhile
    this.writes.push(write)
    while (this.writes.length > this.depth) await this.writes.shift()
  }

  /** Waits for every write; the first failure is thrown once all have settled. */
  async drain(): Promise<void> {
    let failure: unknown
    for (const write of this.writes.splice(0)) {
      try {
        await write
      } catch (err) {
        failure ??= err
      }
    }
    if (failure !== undefined) throw failure
  }
}

/** Runs store work one piece at a time: the service is the single writer. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve()
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn)
    this.tail = next.catch(() => {})
    return next
  }
}

export class PresenceService {
  private readonly views = new Map<string, NodeView>()
  /** Nodes the store held as retired when this service started, until their logs are found. */
  private readonly retiredAtStart = new Set<string>()
  /** Where the store says each node's log may be resumed (start), until its log is found. */
  private readonly resumable = new Map<string, LogResume>()
  private readonly serial = new Serial()
  /** Snapshot chunks being written while the next is prepared (only chunks overlap). */
  private readonly chunkWrites = new InFlight(CHUNKS_IN_FLIGHT)
  private readonly log: Logger
  private timer: NodeJS.Timeout | undefined
  /** The tick interval (autoTick), ms; 0 without the timer. */
  private tickEvery = 0
  /** A tick due the moment a node's silence reaches 1.5 or 3 heartbeats (scheduleSilence). */
  private silenceTimer: NodeJS.Timeout | undefined
  private reqCounter = 0
  private stopped = false
  /** Users whose edge may have been lost by a failed write: their document is re-published. */
  private readonly republish = new Set<string>()
  private idleWaiters: Array<() => void> = []
  /** Users whose offline edge is held, and the node-clock time they emptied. */
  private readonly held = new Map<string, number>()
  /** Per node, the fence tokens of due wills whose publish failed: kept, tried again each tick. */
  private readonly willsUnpublished = new Map<string, Set<string>>()
  /** Nodes declared dead whose sweep waits for the other nodes' watermarks (sweepDead). */
  private readonly dying = new Map<NodeView, { at: number; belowEpoch: number }>()
  private markAskedAt = 0
  /** The last connection check (unplugged) and its answer. */
  private unpluggedAt = Number.NEGATIVE_INFINITY
  private unpluggedLast = new Set<string>()
  private inFlight = 0
  private ticking = false
  /**
   * The last time the store was found unreachable or refusing writes (node clock of this
   * service): the nodes' heartbeats could not be written then, so their silence is counted
   * from here, not from their last heartbeat read.
   */
  private storeTroubleAt = Number.NEGATIVE_INFINITY
  private storeTroubleLogged = false
  /** Presence documents to publish, in order (flushOutbox). */
  private readonly outbox: PresenceDoc[] = []
  private flushing: Promise<void> | undefined

  private readonly now: () => number

  constructor(private readonly opts: PresenceServiceOptions) {
    this.now = opts.clock ?? Date.now
    this.log = opts.logger.child({ component: 'presence-service', epoch: opts.epoch })
    opts.store.setWriterEpoch(opts.epoch)
  }

  get epoch(): number {
    return this.opts.epoch
  }

  async start(): Promise<void> {
    // what a writer killed mid-write left out of an index, first (the re-syncs and the held
    // edges below go by those indexes)
    const repaired = await this.opts.store.repair?.()
    if (repaired && repaired.pending + repaired.indexes > 0)
      this.log.warn(repaired, 'index entries a previous writer left unwritten were repaired')
    // the liveness clocks start after that repair, which takes a while on a large store: a
    // node must not be declared dead for the time this service spent starting
    const now = this.now()
    // nodes known from before this service started: resync the living, time out the dead
    for (const node of await this.opts.store.nodes()) {
      if (node.retired) {
        this.retiredAtStart.add(node.nodeId)
        continue
      }
      if (node.resume) this.resumable.set(node.nodeId, node.resume)
      const view = this.view(node.nodeId)
      view.epoch = node.epoch
      view.lastHeartbeat = now
    }
    // edges a previous writer held: released once every node is certain again
    for (const userId of await this.opts.store.duePending(Number.MAX_SAFE_INTEGER)) this.held.set(userId, now)
    this.opts.source.start(
      (batch) => this.onBatch(batch),
      (nodeId) => this.discovered(nodeId),
    )
    if (this.opts.autoTick ?? true) {
      // housekeeping every 100 ms at most (two cheap store reads per tick); a dead node is
      // checked the moment its third heartbeat is missed (scheduleSilence)
      const every = Math.max(25, Math.min(100, Math.floor(this.opts.heartbeatMs / 4)))
      this.tickEvery = every
      this.timer = setInterval(() => void this.tick(), every)
      this.timer.unref()
    }
    this.log.info({ nodes: this.views.size }, 'presence service up')
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    clearTimeout(this.silenceTimer)
    await this.opts.source.stop()
    await this.serial.run(async () => {})
    await this.flushing
  }

  /**
   * A node's log was found (at start or later): read on from where the store was right, if it
   * says where and the log still holds what follows; else from the log's end. Either way, ask
   * for the node's online set.
   */
  async discovered(nodeId: string): Promise<void> {
    const resume = this.resumable.get(nodeId)
    this.resumable.delete(nodeId)
    const retired = this.retiredAtStart.delete(nodeId)
    const { source } = this.opts
    if (resume && (await source.seekTo?.(nodeId, resume.id))) return this.resumed(nodeId, resume, 'resume')
    const started = retired ? undefined : await this.startedMoments(nodeId)
    if (started && (await source.seekTo?.(nodeId, started.id))) return this.resumed(nodeId, started, 'start')
    await source.seekToEnd(nodeId)
    const view = this.view(nodeId)
    // a node that had shut down (or was replaced) before this service started still has its
    // log: gone until an incarnation of it speaks (acceptEpoch). Counted as possibly live, it
    // held every other node's offline edges until it timed out (alone)
    if (retired && view.epoch === 0) view.gone = true
    // its liveness clock starts now: a node that dies before its next heartbeat still dies
    if (view.lastHeartbeat === 0) view.lastHeartbeat = this.now()
    this.requestResync(view, 'discovered')
  }

  /**
   * Reads a node's log on from `at` (this service restarted): what the node logged meanwhile
   * is applied in order — disconnects with their own reasons and times, status changes, wills
   * due — where a re-sync alone would sweep every connection that ended as `connection-lost`
   * at the re-sync's time and lose every status change. A held re-sync is asked for at once
   * (the design's re-publish on restart; no full snapshot from the nodes' proactive turn): its
   * begin comes after every entry before it, so it finds the store agreeing — or replaces.
   * `at` moves with every batch applied (PresenceStore.apply's marks), so what the previous
   * service had applied is not read again — but for a batch whose writes it sent and whose
   * mark it did not, which the store takes as repeats (a status change as nothing: the same,
   * or older than it holds).
   */
  private resumed(nodeId: string, at: LogResume, from: 'resume' | 'start'): void {
    const view = this.view(nodeId)
    const known = view.epoch // the store's newest for this node (start), or 0
    view.epoch = at.epoch
    if (known > 0 && known < at.epoch) {
      // the node restarted while no service read its log, and the old incarnation's end is not
      // in what is read (the log from the new one's hello): its connections went with it, as
      // when a new incarnation is read after the old one (acceptEpoch)
      this.serial
        .run(() => this.retire(nodeId, at.epoch, 'node-lost'))
        .catch((err: Error) => this.writeFailed(err, 'retiring an old incarnation failed'))
    }
    view.applied = at.seq
    if (view.lastHeartbeat === 0) view.lastHeartbeat = this.now()
    this.log.info(
      { nodeId, seq: at.seq, entry: at.id },
      from === 'resume'
        ? "reading the node's log from where the store was right"
        : "reading the node's log from its start: it began moments ago",
    )
    this.requestResync(view, from)
    view.replayReq = view.req
  }

  /**
   * Where a node that started moments ago began its log (its hello), when the store has not
   * seen that incarnation: read from there, what it logged before this service found its log
   * is applied — a status set right after a connect, which a snapshot does not carry, would
   * otherwise be lost. Only a live log (written to within 3 heartbeats) whose hello is among
   * its last entries: an older or silent one is left to the re-sync (and the dead-node sweep),
   * not replayed.
   */
  private async startedMoments(nodeId: string): Promise<LogResume | undefined> {
    const found = await this.opts.source.lastHello?.(nodeId, HELLO_WITHIN)
    if (!found || this.now() - found.lastAt > 3 * found.hello.every) return undefined
    const known = await this.opts.store.node(nodeId)
    if (known && known.epoch >= found.hello.e) return undefined
    return { id: found.id, seq: found.hello.s, epoch: found.hello.e }
  }

  /** Resolves when every event read so far has been applied and its documents published. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve))
      else if (this.flushing) await this.flushing
      else return
    }
  }

  /** Waits (bounded) until every node's log has been read to its end and applied. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      await this.idle()
      if (await this.opts.source.caughtUp()) {
        await this.idle()
        return true
      }
      await new Promise((r) => setTimeout(r, 10))
    }
    return false
  }

  nodeViews(): ReadonlyMap<string, Readonly<NodeView>> {
    return this.views
  }

  // --- reading the logs ---

  private async onBatch(batch: LogEntry[]): Promise<void> {
    this.inFlight += 1
    try {
      await this.serial.run(() => this.applyBatch(batch))
    } catch (err) {
      // a node record or a document a newer service wrote: this one stops (the batch is not
      // read again); anything else is retried by the source
      if (err instanceof StaleWriterError) this.superseded()
      throw err
    } finally {
      this.inFlight -= 1
      if (this.inFlight === 0) {
        const waiters = this.idleWaiters
        this.idleWaiters = []
        for (const w of waiters) w()
      }
    }
  }

  private async applyBatch(batch: LogEntry[]): Promise<void> {
    try {
      await this.applyEntries(batch)
    } catch (err) {
      // nothing of a failed batch is still being written when it is read again
      await this.chunkWrites.drain().catch(() => {})
      throw err
    }
  }

  private async applyEntries(batch: LogEntry[]): Promise<void> {
    let ops: StoreOp[] = []
    // wills of connections that ended: due (abrupt end) or void (logout, takeover…)
    let willsDue: string[] = []
    let willsVoid: string[] = []
    /** Wills that arrived with their connections: stored before anything else of the batch. */
    let willsNew: ConnRecord[] = []
    /** Per node, the last sequence number queued in `ops` (applied once the flush succeeds). */
    let queued = new Map<NodeView, number>()
    /** Per node, the log entry of the last op queued: its resume point once they are applied. */
    let marks = new Map<NodeView, LogResume>()
    /** The node every entry of the batch comes from, if one does. */
    const sole = batch.every((entry) => entry.ev.n === batch[0]?.ev.n) ? batch[0]?.ev.n : undefined
    const flush = async () => {
      if (ops.length === 0 && willsNew.length + willsDue.length + willsVoid.length === 0) return
      await this.chunkWrites.drain() // live events are applied after the snapshot writes before them
      const current = ops
      const upTo = queued
      const at = [...marks].map(([view, mark]) => ({ nodeId: view.nodeId, at: mark }))
      ops = []
      queued = new Map()
      marks = new Map()
      const fresh = willsNew
      willsNew = []
      await this.keepWills(fresh)
      // the wills first: the resume points go with the operations, and a service that dies
      // after them must not leave a will due unpublished (a will is dropped only once it is
      // published, and one published again is the same message, de-duplicated by its id)
      const [due, dead] = [willsDue, willsVoid]
      willsDue = []
      willsVoid = []
      if (due.length > 0 || dead.length > 0) await this.settleWills(due, dead)
      await this.applyOps(current, at)
      for (const [view, s] of upTo) if (s > view.applied) view.applied = s
    }
    for (const { id, ev } of batch) {
      const view = this.view(ev.n)
      if (!this.acceptEpoch(view, ev)) continue
      if (view.retireBelow > 0) {
        // a new incarnation: the old one's connections go before anything of the new one is
        // applied — its re-sync's replace would otherwise sweep them first, as connection-lost
        const below = view.retireBelow
        view.retireBelow = 0
        await flush()
        await this.retire(view.nodeId, below, 'node-lost')
      }
      if (ev.ts > view.mark) view.mark = ev.ts
      switch (ev.k) {
        case 'conn':
        case 'disc':
        case 'status': {
          // the snapshot on its way covers it (unless this log is being resumed: resumed())
          if (view.mode === 'awaiting' && !applying(view)) {
            if (ev.k === 'status') {
              view.awaitedStatus.delete(ev.userId) // the newest last
              view.awaitedStatus.set(ev.userId, ev)
            }
            // a will's fate does not wait for the snapshot: kept with its connection, taken
            // (an end without DISCONNECT) or dropped at its end, as when applied
            if (ev.k === 'conn' && ev.c.will) willsNew.push(ev.c)
            if (ev.k === 'disc' && ev.will) (ev.abrupt ? willsDue : willsVoid).push(ev.token)
            continue
          }
          if (view.mode === 'snapshot') {
            if (ev.s > view.asOf) view.buffered.push(ev)
            continue
          }
          const expected = (queued.get(view) ?? view.applied) + 1
          if (ev.s < expected) continue // a repeat
          if (ev.s > expected) {
            await flush()
            this.requestResync(view, 'gap')
            continue
          }
          ops.push(toOp(ev, this.now(), ev.k === 'disc' && !this.alone(view, sole)))
          queued.set(view, ev.s)
          // (entries re-applied after a snapshot have no id: the next heartbeat marks them)
          if (id !== '') marks.set(view, { id, seq: ev.s, epoch: ev.e })
          if (ev.k === 'conn' && ev.c.will) willsNew.push(ev.c)
          if (ev.k === 'disc' && ev.will) (ev.abrupt ? willsDue : willsVoid).push(ev.token)
          this.opts.metrics.eventsApplied.inc({ kind: ev.k })
          break
        }
        default:
          await flush()
          if (ev.k !== 'snap') await this.chunkWrites.drain() // a snapshot's own phases: snapshot()
          await this.control(view, ev, id)
      }
    }
    await flush()
    await this.chunkWrites.drain()
    await this.sweepDead()
    await this.releaseHeld()
  }

  /** Stores the wills that came with connections (events or snapshots). */
  private async keepWills(conns: ConnRecord[]): Promise<void> {
    const wills = this.opts.wills
    for (const c of conns) if (c.will && wills) await wills.store.put(c.nodeId, c.token, c.will)
  }

  /** Publishes the wills that are due and drops the others (tokens carry their node). */
  private async settleWills(due: string[], dead: string[]): Promise<void> {
    const wills = this.opts.wills

    if (!wills) return
    for (const [nodeId, tokens] of byNode(dead)) await wills.store.drop(nodeId, tokens)
    for (const [nodeId, tokens] of byNode(due))
      await this.publishWills(nodeId, await wills.store.peek(nodeId, tokens))
  }

  /**
   * Publishes wills, then drops them: a service killed before the drop leaves them for the
   * next one, which publishes them again under the same ids (de-duplicated by the message
   * store: recorded and delivered once). Taking them first lost them to such a kill.
   */
  private async publishWills(nodeId: string, list: KeptWill[]): Promise<void> {
    const wills = this.opts.wills
    if (!wills || list.length === 0) return
    const published: string[] = []
    for (const { token, will } of list) {
      try {
        await wills.publish(will)
        published.push(token)
        this.willsUnpublished.get(nodeId)?.delete(token)
        this.log.info({ clientId: will.clientId, to: will.to }, 'will published')
      } catch (err) {
        // not recorded (the message store refused it: full, or away): kept, and tried again
        // on the next tick, not dropped as if it had gone
        let retry = this.willsUnpublished.get(nodeId)
        if (!retry) {
          retry = new Set()
          this.willsUnpublished.set(nodeId, retry)
        }
        if (retry.has(token)) continue // said once, not once a tick
        retry.add(token)
        this.log.error({ clientId: will.clientId, err: (err as Error).message }, 'could not publish a will')
      }
    }
    await wills.store.drop(nodeId, published)
  }

  /** The wills whose publish failed, tried again (each tick): those still kept are published. */
  private async retryWills(): Promise<void> {
    const wills = this.opts.wills
    if (!wills || this.willsUnpublished.size === 0) return
    for (const [nodeId, tokens] of [...this.willsUnpublished]) {
      const kept = await wills.store.peek(nodeId, [...tokens])
      // dropped meanwhile (a successor published it, the node's sweep): nothing to retry
      const still = new Set(kept.map((k) => k.token))
      for (const t of tokens) if (!still.has(t)) tokens.delete(t)
      await this.publishWills(nodeId, kept)
      if (tokens.size === 0) this.willsUnpublished.delete(nodeId)
    }
  }

  /** Epoch fencing at the door: older incarnations are ignored, a newer one retires the old. */
  private acceptEpoch(view: NodeView, ev: NodeEvent): boolean {
    if (ev.e < view.epoch || (ev.e === view.epoch && view.dead)) {
      // an incarnation declared dead is still talking (it was only cut off): it must take a
      // new epoch and re-publish, its old connections are already offline
      if (ev.k === 'hb' && ev.e === view.epoch) {
        this.opts.publisher.control(ev.n, { cmd: 'rejoin', nodeId: ev.n, epoch: view.epoch })
      }
      return false
    }
    if (ev.e > view.epoch) {
      const previous = view.epoch
      view.epoch = ev.e
      view.dead = false
      view.gone = false
      this.dying.delete(view) // the retire this sets off sweeps what it would have
      if (previous > 0) {
        view.retireBelow = ev.e // a new incarnation: whatever the old one left behind is gone
      } else if (view.mode === 'awaiting') {
        return true // first sight of the node: the snapshot already asked for covers it
      }
      view.mode = 'live'
      view.buffered = []
      // the old incarnation's connections are gone, and their users' statuses with them
      view.awaitedStatus.clear()
      view.applied = ev.k === 'hello' ? ev.s : 0
      if (ev.k !== 'hello') this.requestResync(view, 'new-epoch')
    }
    return true
  }

  private async control(view: NodeView, ev: NodeEvent, id: string): Promise<void> {
    if (ev.k === 'hello' || ev.k === 'hb' || (ev.k === 'snap' && ev.phase === 'begin'))
      this.noteBulk(view, ev)
    switch (ev.k) {
      case 'hello':
        view.every = ev.every
        view.lastHeartbeat = this.now()
        await this.opts.store.noteHeartbeat(view.nodeId, ev.e, 0, ev.ts)
        if (ev.s > view.applied) this.requestResync(view, 'rejoin')
        return
      case 'hb':
        return this.heartbeat(view, ev, id)
      case 'snap':
        return this.snapshot(view, ev)
      case 'bye':
        view.gone = true
        await this.retire(view.nodeId, view.epoch + 1, 'node-shutdown')
        this.log.info({ nodeId: view.nodeId }, 'node shut down')
        return
      default:
        return
    }
  }

  private noteBulk(view: NodeView, ev: { bulk?: true }): void {
    const bulk = ev.bulk === true
    if (!bulk && view.bulk !== false) {
      this.log.info(
        { nodeId: view.nodeId },
        'node does not read presence documents in bulk (an older version): each goes on its own while it is live',
      )
    }
    view.bulk = bulk
  }

  /** Every live node delivers documents in bulk (`bulk` in services/events/types.ts). */
  private bulkReadable(): boolean {
    for (const view of this.views.values()) if (!view.dead && !view.gone && view.bulk !== true) return false
    return true
  }

  private async heartbeat(view: NodeView, ev: Extract<NodeEvent, { k: 'hb' }>, id: string): Promise<void> {
    view.lastHeartbeat = this.now()
    view.every = ev.every
    view.heartbeats += 1
    // every entry of this log up to this one is in the store (the batch's writes before it are
    // done) when the node is certain and nothing of it is missing: a restarted service may
    // resume reading here. Otherwise (a re-sync under way) it may not, and must re-sync.
    const resume =
      applying(view) && !view.dead && ev.s === view.applied ? { id, seq: ev.s, epoch: ev.e } : undefined
    await this.opts.store.noteHeartbeat(view.nodeId, ev.e, ev.count, ev.ts, resume)
    if (view.mode !== 'live') return
    if (ev.s > view.applied) {
      // a lost *last* event is visible only here: the log is ordered, so this is a loss
      this.requestResync(view, 'missing-tail')
      return
    }
    const every = this.opts.digestEvery ?? 6
    if (every > 0 && view.heartbeats % every === 0 && ev.s === view.applied) {
      const digest = Digest.of(await this.opts.store.nodeTokens(view.nodeId))
      if (digest.count !== ev.count || digest.value !== ev.digest) {
        this.log.warn(
          { nodeId: view.nodeId, store: { count: digest.count }, node: { count: ev.count } },
          'presence drifted from the node; re-syncing it',
        )
        this.requestResync(view, 'digest')
      }
    }
  }

  private async snapshot(view: NodeView, ev: SnapshotEvent): Promise<void> {
    const now = this.now()
    if (ev.phase !== 'chunk') {
      // the writes of chunks before (this snapshot's, or an abandoned one's) are done first
      const waited = performance.now()
      await this.chunkWrites.drain()
      if (view.mode === 'snapshot') view.snapStoreMs += performance.now() - waited
    }
    if (ev.phase === 'begin') {
      // Any snapshot this service asked for will do while awaiting one: it was taken after
      // every event before it in the log, and every event after it is applied on top.
      if (view.mode !== 'awaiting' || !ev.req.startsWith(`${this.opts.epoch}.`)) return
      view.retries = 0
      view.replayReq = undefined // what follows the snapshot is applied on top, as after any
      // a held snapshot's records wait on the node for this verdict: dropped when the store
      // already agrees, sent once the replace has begun
      const verdict = (send: boolean) => {
        if (ev.held)
          this.opts.publisher.control(view.nodeId, {
            cmd: 'snapshot',
            req: ev.req,
            nodeId: view.nodeId,
            send,
          })
      }
      if (await this.storeAgrees(view, ev)) {
        verdict(false)
        await this.applyAwaitedStatus(view)
        return
      }
      view.req = ev.req
      view.mode = 'snapshot'
      view.asOf = ev.s
      view.buffered = []
      view.snapStarted = now
      view.snapProgressAt = now
      view.snapStoreMs = 0
      view.snapPublishMs = 0
      view.gen = await this.opts.metrics.time('beginReplace', () =>
        this.opts.store.beginReplace(view.nodeId, ev.e),
      )
      verdict(true)
      return
    }
    if (view.mode !== 'snapshot' || ev.req !== view.req) return
    view.snapProgressAt = now
    if (ev.phase === 'chunk') {
      // written while the next chunk is read and prepared; every write of the snapshot is
      // done before its end (drained before any other event) and before the batch ends
      const waited = performance.now()
      await this.chunkWrites.add(this.putChunk(view, view.gen, ev.conns ?? [], now))
      view.snapStoreMs += performance.now() - waited
      return
    }
    view.mode = 'live' // this node is certain again; others may not be
    const swept = await this.opts.metrics.time('endReplace', () =>
      this.opts.store.endReplace(view.nodeId, view.gen, 'connection-lost', now, now + this.opts.holdMs),
    )
    this.publish(swept)
    this.hold(swept, () => ev.ts)
    await this.dropUnseenWills(view)
    view.mode = 'live'
    view.req = undefined
    view.applied = view.asOf
    const buffered = view.buffered
    view.buffered = []
    this.log.info(
      {
        nodeId: view.nodeId,
        connections: ev.count,
        ms: this.now() - view.snapStarted,
        storeMs: Math.round(view.snapStoreMs),
        publishMs: Math.round(view.snapPublishMs),
        swept: swept.length,
        // who the node's set no longer had (a re-sync after drift says what drifted)
        ...(swept.length > 0 && { sweptUsers: swept.slice(0, 10).map((c) => c.doc.userId) }),
      },
      'node re-synced',
    )
    await this.applyAwaitedStatus(view)
    if (buffered.length > 0) await this.applyBatch(buffered.map((b) => ({ id: '', ev: b })))
  }

  /**
   * After a replace: a will still kept for a connection of this incarnation that the node no
   * longer has belongs to a connection that ended where this service could not read how (the
   * log trimmed past it, or its events lost). A will is for an end without DISCONNECT, and
   * this end is unknown: the will is dropped, with a log line — not left for a later death of
   * the node to publish, long after. (Older incarnations' wills are the dead-node sweep's.)
   */
  private async dropUnseenWills(view: NodeView): Promise<void> {
    const wills = this.opts.wills?.store
    if (!wills) return
    const kept = (await wills.tokens(view.nodeId)).filter(
      (token) => parseFenceToken(token)?.epoch === view.epoch,
    )
    if (kept.length === 0) return
    const live = new Set(await this.opts.store.nodeTokens(view.nodeId))
    const unseen = kept.filter((token) => !live.has(token))
    if (unseen.length === 0) return
    await wills.drop(view.nodeId, unseen)
    this.log.warn(
      { nodeId: view.nodeId, wills: unseen.length, tokens: unseen.slice(0, 10) },
      'wills dropped: their connections ended while how they ended could not be read',
    )
  }

  /**
   * The status changes read while the re-sync was awaited, now that the node's records are
   * right: a user still online takes the last one, unless the store holds a newer one (made on
   * another node, by the time each node received it); for one who went offline meanwhile it is
   * nothing (a status is cleared on offline).
   */
  private async applyAwaitedStatus(view: NodeView): Promise<void> {
    if (view.awaitedStatus.size === 0) return
    const changes = [...view.awaitedStatus.values()]
    view.awaitedStatus.clear()
    await this.applyOps(changes.map((ev) => toOp(ev, this.now(), false)))
  }

  /** One chunk of a snapshot into the store, then its edges out. */
  private async putChunk(view: NodeView, gen: number, conns: ConnRecord[], now: number): Promise<void> {
    await this.keepWills(conns)
    const records = conns.map(({ will: _w, ...rec }) => rec)
    const changes = await this.opts.metrics.time('putSnapshot', () =>
      this.opts.store.putSnapshot(view.nodeId, gen, records, now),
    )
    const published = performance.now()
    this.publish(changes)
    view.snapPublishMs += performance.now() - published
  }

  /**
   * The warm shortcut: when the store already holds exactly the node's online set — the same
   * count and digest over its live tokens as the snapshot announces — there is nothing to
   * replace, and the node is certain again at the snapshot's sequence number. A restarted
   * service over a store that kept its data then costs one read of the node's index, not a
   * write per connection. (Each connection's record is written before its index entry, so an
   * indexed token has its record; a token whose index entry a killed writer never wrote was
   * re-indexed by the start-up repair, so it shows here as a difference.) The chunks that
   * follow no longer match a request and are dropped.
   */
  private async storeAgrees(view: NodeView, ev: SnapshotEvent): Promise<boolean> {
    if (ev.count === undefined || ev.digest === undefined) return false
    const started = this.now()
    const store = Digest.of(await this.opts.store.nodeTokens(view.nodeId))
    if (store.count !== ev.count || store.value !== ev.digest) return false
    view.mode = 'live'
    view.req = undefined
    view.buffered = []
    view.applied = ev.s
    this.log.info(
      { nodeId: view.nodeId, connections: ev.count, ms: this.now() - started, swept: 0, shortcut: 'digest' },
      'node re-synced',
    )
    return true
  }

  private requestResync(view: NodeView, cause: string): void {
    if (this.stopped) return
    if (cause === 'retry') view.retries += 1
    else view.retries = 0
    view.mode = 'awaiting'
    view.req = `${this.opts.epoch}.${++this.reqCounter}`
    view.reqAt = this.now()
    view.buffered = []
    this.opts.metrics.resyncs.inc({ cause })
    this.log.info({ nodeId: view.nodeId, cause, req: view.req }, 'requesting the node online set')
    // hold: the node sends its count and digest first, the records only if the store differs
    this.opts.publisher.control(view.nodeId, {
      cmd: 'resync',
      req: view.req,
      nodeId: view.nodeId,
      hold: true,
    })
  }

  // --- writing ---

  private async applyOps(ops: StoreOp[], marks?: LogMark[]): Promise<void> {
    let results: Array<Change | null>
    try {
      results = await this.opts.metrics.time('apply', () => this.opts.store.apply(ops, marks))
    } catch (err) {
      // the batch fails with it: onBatch stops a stale writer, the source retries anything else
      for (const op of ops) this.republish.add(op.op === 'connect' ? op.conn.userId : op.userId)
      throw err
    }
    const stored = this.now()
    for (const op of ops) this.opts.metrics.presenceLag.observe(Math.max(0, stored - op.ts) / 1000)
    this.publish(results)
    this.hold(results, (i) => ops[i]!.ts)
    if (this.republish.size > 0) await this.republishDocs()
  }

  private async republishDocs(): Promise<void> {
    const users = [...this.republish]
    this.republish.clear()
    for (const view of await this.opts.store.getMany(users)) {
      const { connections: _c, devices: _d, connectionsDetail: _cd, ...doc } = view
      this.outbox.push(doc)
    }
    this.flushOutbox()
  }

  private publish(changes: Array<Change | null>): void {
    for (const change of changes) {
      if (!change) continue
      this.opts.metrics.edges.inc({ kind: change.kind })
      if (change.kind === 'pending') continue // not an edge: the replacement is on its way
      this.outbox.push(change.doc)
    }
    this.flushOutbox()
  }

  /**
   * Publishes the outbox in order, several documents as one batch (publisher.presenceMany). A
   * few go at once; a flood (a cold re-sync or a dead node: 100k edges) goes a slice per
   * event-loop turn, so the service keeps reading heartbeats and answering the HTTP API
   * meanwhile. Everything published later queues behind it, and single documents and batches
   * go out on one connection, so every user's documents keep their order.
   */
  private flushOutbox(): void {
    if (this.flushing) return
    if (this.outbox.length <= PUBLISH_SLICE) {
      this.publishSlice(this.outbox.length)
      return
    }
    let done!: () => void
    this.flushing = new Promise<void>((resolve) => {
      done = resolve
    })
    const next = () => {
      this.publishSlice(PUBLISH_SLICE)
      if (this.outbox.length > 0) {
        setImmediate(next)
        return
      }
      // cleared in the same turn as the last check: a document queued later starts a new flush
      this.flushing = undefined
      done()
    }
    next()
  }

  private publishSlice(n: number): void {
    const docs = this.outbox.splice(0, n)
    const { publisher } = this.opts
    if (docs.length > 1 && publisher.presenceMany && this.bulkReadable()) {
      try {
        publisher.presenceMany(docs)
      } catch (err) {
        this.log.error(
          { documents: docs.length, err: (err as Error).message },
          'could not publish presence documents',
        )
      }
      return
    }
    for (const doc of docs) {
      try {
        publisher.presence(doc)
      } catch (err) {
        this.log.error(
          { userId: doc.userId, err: (err as Error).message },
          'could not publish a presence document',
        )
      }
    }
  }

  private async retire(
    nodeId: string,
    belowEpoch: number,
    reason: 'node-lost' | 'node-shutdown',
    hold?: boolean,
  ): Promise<void> {
    // a node that died takes its connections with it, abruptly: their wills are due — published
    // before the sweep, which marks the node retired: a service killed after that would not
    // sweep it again, and wills still kept then would never go
    if (reason === 'node-lost' && this.opts.wills)
      await this.publishWills(nodeId, await this.opts.wills.store.peekNode(nodeId, belowEpoch))
    // Held (see releaseHeld) while some live node — another one, or this one's new incarnation —
    // may hold a connection of these users that is not read yet. With none, or once every live
    // node has been read past the death (`hold` false, declareDead), there is nothing to wait
    // for: the offline edges go out with the sweep, not after a second pass over every user.
    const mayHold = hold ?? [...this.views.values()].some((v) => !v.dead && !v.gone)
    const holdUntil = mayHold ? this.now() + this.opts.holdMs : undefined
    const started = Date.now()
    const changes = await this.opts.metrics.time('retireNode', () =>
      this.opts.store.retireNode(nodeId, belowEpoch, reason, this.now(), holdUntil),
    )
    const held = changes.filter((c) => c.kind === 'pending').length
    this.log.info(
      { nodeId, reason, offline: changes.length - held, held, ms: Date.now() - started },
      "node's connections swept",
    )
    this.publish(changes)
    const at = this.now()
    this.hold(changes, () => at)
  }

  // --- timers: dead nodes, resync retries, takeovers that found no replacement ---

  /** Housekeeping: dead nodes, unanswered resyncs, takeovers whose grace ran out. */
  async tick(): Promise<void> {
    // one pass at a time: a pass can wait on Redis for seconds, and passes that overlapped
    // would each declare the same node dead — or act after this service was stopped
    if (this.stopped || this.ticking) return
    this.ticking = true
    const now = this.now()
    try {
      const unplugged = await this.unplugged(now)
      // why a node is dead: silent for 3 heartbeats, or for 1.5 with its log connection gone
      const deadBy = (view: NodeView) => {
        // silent since its last heartbeat, or since the store last failed, whichever is later:
        // a node cannot write its heartbeats while Redis is away or refuses writes, and after
        // it comes back each node writes what it queued on its own retry schedule
        const silence = now - Math.max(view.lastHeartbeat, this.storeTroubleAt)
        if (silence > 3 * view.every) return 'silent'
        if (unplugged.has(view.nodeId) && silence > QUICK_SILENCE * view.every) return 'connection-gone'
        return undefined
      }
      for (const view of this.views.values()) {
        if (view.dead || view.gone) continue
        // a node that does not answer is asked again, less and less often (a huge snapshot
        // behind a long queue must not be asked for again and again)
        const patience = Math.min(Math.max(2 * view.every, 2000) * 2 ** view.retries, 60_000)
        if (view.mode === 'awaiting' && now - view.reqAt > patience) this.requestResync(view, 'retry')
        // a snapshot that stopped coming (a verdict lost on the bus, the node's records
        // dropped): asked for again — unless its next part is only unread
        const stalled = () => view.mode === 'snapshot' && now - view.snapProgressAt > patience
        if (stalled() && !(await this.readerBehind(view.nodeId))) {
          // what the wait may have changed: stopped, or the next part read meanwhile
          if (!this.stopped && stalled()) this.requestResync(view, 'retry')
        }
        if (view.lastHeartbeat > 0 && deadBy(view)) {
          // silent, or only unread? This service may be behind on the node's log (applying a
          // large snapshot) with the heartbeats waiting in it: then the node is alive, and
          // declaring it dead would retire it, make it rejoin and re-send the same snapshot
          if (await this.readerBehind(view.nodeId)) continue
          // what the wait may have changed: stopped, or a heartbeat read meanwhile
          if (this.stopped) return
          // the store refusing writes silences every node at once: none of them is dead by it
          if (!(await this.storeWritable())) continue
          const cause = deadBy(view)
          if (view.dead || view.gone || !cause) continue
          view.dead = true
          view.mode = 'live'
          this.log.warn(
            { nodeId: view.nodeId, silentMs: now - view.lastHeartbeat, cause },
            'node is dead; its connections go offline',
          )
          await this.serial.run(() => this.declareDead(view))
        }
      }
      await this.serial.run(async () => {
        await this.sweepDead()
        await this.releaseHeld()
        await this.retryWills()
      })
      // the fallback: a held edge whose deadline passed is published whatever the watermarks say
      const due = await this.opts.store.duePending(now)
      for (const userId of due) this.held.delete(userId)
      if (due.length > 0) this.publish(await this.serial.run(() => this.opts.store.settleMany(due, now)))
      const stats = await this.opts.store.stats()
      this.opts.metrics.onlineUsers.set(stats.onlineUsers)
    } catch (err) {
      if (!(err instanceof StaleWriterError)) this.storeTroubleAt = this.now()
      this.writeFailed(err as Error, 'presence housekeeping failed; will retry')
    } finally {
      this.ticking = false
      this.scheduleSilence()
    }
  }

  /** Probes the store before a node is declared dead (PresenceStore.writable). */
  private async storeWritable(): Promise<boolean> {
    const probe = this.opts.store.writable
    if (!probe || (await probe.call(this.opts.store))) {
      if (this.storeTroubleLogged)
        this.log.info('the store takes writes again: node liveness by heartbeats resumes')
      this.storeTroubleLogged = false
      return true
    }
    this.storeTroubleAt = this.now()
    if (!this.storeTroubleLogged)
      this.log.warn(
        'the store refuses writes: no node is declared dead while it does (their heartbeats cannot be written)',
      )
    this.storeTroubleLogged = true
    return false
  }

  /**
   * Nodes late by more than 1.5 heartbeats whose log connection is gone from Redis: a process
   * that died (its sockets closed with it), not one that stalls — a stalled or cut-off node
   * keeps its connection and is declared dead by 3 heartbeats of silence, as before. Empty
   * when nobody is late or that cannot be told (one process, or Redis just came back: this
   * service's own connection is younger than 3 heartbeats).
   */
  private async unplugged(now: number): Promise<Set<string>> {
    const late = [...this.views.values()].filter(
      (v) => !v.dead && !v.gone && v.lastHeartbeat > 0 && now - v.lastHeartbeat > QUICK_SILENCE * v.every,
    )
    if (late.length === 0 || !this.opts.source.disconnected) return new Set()
    // CLIENT LIST costs Redis as many lines as it has clients: a few times a second at most
    if (now - this.unpluggedAt < UNPLUGGED_EVERY_MS) return this.unpluggedLast
    this.unpluggedAt = now
    const settled = 3 * Math.max(...late.map((v) => v.every))
    const ids = late.map((v) => v.nodeId)
    try {
      this.unpluggedLast = (await this.opts.source.disconnected(ids, settled)) ?? new Set()
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'could not tell which nodes are connected')
      this.unpluggedLast = new Set()
    }
    return this.unpluggedLast
  }

  /**
   * A node whose silence reaches 1.5 heartbeats (the connection check) or three before the
   * next tick is checked at that moment, not up to a tick later: the bound on a node's death
   * (3 heartbeats + 1 s) has no room for the tick's granularity on top of the sweep.
   */
  private scheduleSilence(): void {
    if (this.tickEvery === 0 || this.stopped) return
    const now = this.now()
    let due = Number.POSITIVE_INFINITY
    for (const view of this.views.values()) {
      if (view.dead || view.gone || view.lastHeartbeat === 0) continue
      for (const beats of [QUICK_SILENCE, 3]) {
        const at = view.lastHeartbeat + beats * view.every + 1
        if (at > now) due = Math.min(due, at)
      }
    }
    clearTimeout(this.silenceTimer)
    this.silenceTimer = undefined
    // past due: this tick saw it (a node only unread stays alive); the interval's ticks go on
    if (due <= now || due - now >= this.tickEvery) return
    this.silenceTimer = setTimeout(() => void this.tick(), due - now)
    this.silenceTimer.unref()
  }

  /**
   * A dead node's users go offline in one pass when no other live node can hold an unread
   * reconnection of theirs: once every other node's log has been read past the moment of death
   * (a `mark` is asked for now), the sweep publishes the offline edges itself. Holding every
   * user and settling them all in a second pass (releaseHeld) is left for when that cannot be
   * known within a heartbeat: a node that does not answer, or one re-syncing. At 100k users
   * the second pass cost ~2 s (docs/benchmarks.md).
   */
  private async declareDead(view: NodeView): Promise<void> {
    const belowEpoch = view.epoch + 1
    const others = [...this.views.values()].some((v) => v !== view && !v.dead && !v.gone)
    if (!others) return this.retire(view.nodeId, belowEpoch, 'node-lost', false)
    this.dying.set(view, { at: this.now(), belowEpoch })
    this.markAskedAt = this.now()
    this.opts.publisher.control('all', { cmd: 'mark' })
  }

  /** Sweeps the nodes declared dead whose wait (declareDead) is over: certain, or out of time. */
  private async sweepDead(): Promise<void> {
    if (this.dying.size === 0) return
    const now = this.now()
    const watermark = this.watermark()
    for (const [view, { at, belowEpoch }] of this.dying) {
      // strictly later, as for held users (releaseHeld); the dead node itself does not count
      const certain = watermark !== undefined && watermark > at
      if (!certain && now - at < view.every) continue
      this.dying.delete(view)
      await this.retire(view.nodeId, belowEpoch, 'node-lost', !certain)
    }
  }

  /**
   * How far every live node's log has been read (the lowest node-clock time seen; infinity with
   * no live node): no live node holds a connection the store has not seen that began before
   * it. Undefined while a node re-syncs: it may hold anyone.
   */
  private watermark(): number | undefined {
    let watermark = Number.POSITIVE_INFINITY
    for (const view of this.views.values()) {
      if (view.dead || view.gone) continue
      if (view.mode !== 'live') return undefined
      if (view.mark < watermark) watermark = view.mark
    }
    return watermark
  }

  /** Whether unread entries wait in a node's log (false when that cannot be told now). */
  private async readerBehind(nodeId: string): Promise<boolean> {
    try {
      return await this.opts.source.behind(nodeId)
    } catch (err) {
      // the log is unreachable (Redis away): the node's silence is all there is to go by
      this.log.debug({ nodeId, err: (err as Error).message }, 'could not tell whether the log is unread')
      return false
    }
  }

  /**
   * Offline edges are held (the store keeps the user pending) until no node can still hold an
   * earlier connection of that user: every other live node's log has been read past the moment
   * the user emptied (its watermark), and no node is re-syncing. Two devices switching between
   * nodes, a takeover, an event lost on the way: none of them is ever an offline edge. Nodes
   * are asked for a fresh watermark (`mark`) so an idle cluster does not wait for heartbeats.
   * The store's deadline (`holdMs`) publishes a held edge in the end whatever happens.
   */
  private async releaseHeld(): Promise<void> {
    if (this.held.size === 0) return
    const watermark = this.watermark()
    if (watermark === undefined) return // a node re-syncing may hold anyone: wait for it
    const now = this.now()
    const due: string[] = []
    for (const [userId, since] of this.held) {
      if (since >= watermark) continue // strictly later: a tie may hide a connect in the same ms
      this.held.delete(userId)
      due.push(userId)
    }
    // in slices, each published as it is decided: a dead node's 100k users reach watchers
    // while the rest are still being settled
    for (let i = 0; i < due.length; i += PUBLISH_SLICE) {
      this.publish(await this.opts.store.settleMany(due.slice(i, i + PUBLISH_SLICE), now, true))
    }
    if (this.held.size > 0 && now - this.markAskedAt >= MARK_EVERY_MS) {
      this.markAskedAt = now
      this.opts.publisher.control('all', { cmd: 'mark' })
    }
  }

  /**
   * Whether `self` is the only live node: then its log is the whole truth, in order, and an
   * offline edge it reports is certain when it is applied — a lone node's offline edges are not
   * held (no pending write, no settle, no wait for the next mark). With another live node they
   * are (releaseHeld): the store may have applied that node's later removals first (its log
   * read further ahead), so a user can look empty while this node's own next entry is the
   * connection that took the other one over. A node still being discovered or re-synced is
   * not live: held (one whose log is read on from a resume point is: its events are applied
   * in order, as a live node's). So is anything in a batch with another node's entries
   * (`sole`, the node every entry of the batch comes from, if one does): a node gone or dead
   * may come back in it, its first entries read after this one. A takeover is held whatever
   * this says (the store's rule).
   */
  private alone(self: NodeView, sole: string | undefined): boolean {
    if (self.nodeId !== sole || !applying(self)) return false
    for (const view of this.views.values()) {
      if (view !== self && !view.dead && !view.gone) return false
    }
    return true
  }

  /** Remembers which users a write left pending, and since when (node clock). */
  private hold(changes: Array<Change | null>, since: (i: number) => number): void {
    changes.forEach((change, i) => {
      if (change?.kind === 'pending') this.held.set(change.doc.userId, since(i))
    })
  }

  /** A write outside the event path (housekeeping, retiring) failed: a stale writer stops, anything else is logged. */
  private writeFailed(err: Error, what: string): void {
    if (err instanceof StaleWriterError) this.superseded()
    else this.log.warn({ err: err.message }, what)
  }

  private superseded(): void {
    if (this.stopped) return
    this.log.error('a newer presence service wrote the store; this one stops writing')
    this.stopped = true
    clearInterval(this.timer)
    clearTimeout(this.silenceTimer)
    void this.opts.source.stop()
    this.opts.onSuperseded?.()
  }

  private view(nodeId: string): NodeView {
    let view = this.views.get(nodeId)
    if (!view) {
      view = {
        nodeId,
        epoch: 0,
        applied: 0,
        mode: 'live',
        req: undefined,
        replayReq: undefined,
        reqAt: 0,
        gen: 0,
        asOf: 0,
        buffered: [],
        retireBelow: 0,
        awaitedStatus: new Map(),
        lastHeartbeat: 0,
        every: this.opts.heartbeatMs,
        heartbeats: 0,
        mark: 0,
        retries: 0,
        dead: false,
        gone: false,
        snapStarted: 0,
        snapProgressAt: 0,
        snapStoreMs: 0,
        snapPublishMs: 0,
        bulk: undefined,
      }
      this.views.set(nodeId, view)
    }
    return view
  }
}

function byNode(tokens: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const token of tokens) {
    const nodeId = parseFenceToken(token)?.nodeId
    if (!nodeId) continue
    out.set(nodeId, [...(out.get(nodeId) ?? []), token])
  }
  return out
}

/** The node's events are applied as they are read: it is certain, or its log is being resumed. */
function applying(view: NodeView): boolean {
  return view.mode === 'live' || (view.mode === 'awaiting' && view.req === view.replayReq)
}

function toOp(
  ev: Extract<NodeEvent, { k: 'conn' | 'disc' | 'status' }>,
  now: number,
  defer: boolean,
): StoreOp {
  switch (ev.k) {
    case 'conn': {
      const { will: _w, ...conn } = ev.c // wills are kept apart from presence records
      return { op: 'connect', conn, ts: ev.ts }
    }
    case 'disc':
      return {
        op: 'disconnect',
        nodeId: ev.n,
        epoch: ev.e,
        token: ev.token,
        userId: ev.userId,
        reason: ev.reason,
        ts: ev.ts,
        now,
        defer,
      }
    case 'status':
      return { op: 'status', userId: ev.userId, status: ev.status, meta: ev.meta, ts: ev.ts }
  }
}
