/**
 * Presence events: what an access node tells the presence service, in order, over its own
 * per-node log (a Redis Stream in Redis mode, an in-process queue in memory mode).
 *
 * `s` is the node's event sequence number. `conn`, `disc` and `status` each take the next
 * number, so a gap is visible; `hb`, `snap`, `hello` and `bye` carry the last number taken.
 */
import type { ConnRecord, DisconnectReason } from '../presence/types.js'

interface Base {
  /** Node id. */
  n: string
  /** Node epoch. */
  e: number
  /** Sequence number (see above). */
  s: number
  /**
   * Wall-clock time at the node, ms. The order of a log's events never uses it; a user's status
   * changes do (last write wins by it across nodes: StatusEvent).
   */
  ts: number
}

export interface ConnEvent extends Base {
  k: 'conn'
  c: ConnRecord
}

export interface DiscEvent extends Base {
  k: 'disc'
  token: string
  userId: string
  clientId: string
  reason: DisconnectReason
  /** For a takeover: the node that took the client over (same node for a local takeover). */
  by?: string
  /** The connection ended without a DISCONNECT: its will (if any) is due. */
  abrupt?: boolean
  /** Herald holds a will for this connection. */
  will?: boolean
}

/**
 * A user's own status change. Its `ts` orders it against the user's changes on other nodes
 * (the store refuses one older than the status it holds); one node stamps its status changes
 * in log order, never back in time (ConnectionTracker.status).
 */
export interface StatusEvent extends Base {
  k: 'status'
  userId: string
  token: string
  status: string | null
  meta?: Record<string, unknown>
}

export interface HeartbeatEvent extends Base {
  k: 'hb'
  /** Live connections on the node as of `s`. */
  count: number
  /** XOR of fnv1a-32 of every live fence token as of `s` (see digest.ts). */
  digest: number
  /** Heartbeat interval the node runs with, ms. */
  every: number
  /**
   * The node delivers presence documents that come in bulk (`$SYS/herald/presence-batch`) to
   * its own watchers. Nodes older than that say nothing, and would drop a batch: while one of
   * them is live, the presence service publishes every document on its own.
   */
  bulk?: true
}

export interface SnapshotEvent extends Base {
  k: 'snap'
  phase: 'begin' | 'chunk' | 'end'
  /** The resync request this answers. */
  req: string
  conns?: ConnRecord[]
  /** begin/end: number of connections in the whole snapshot and its digest. */
  count?: number
  digest?: number
  /**
   * begin: the records wait on the node until the service sends `snapshot` (send or drop),
   * asked for by `hold` in the request.
   */
  held?: true
  /**
   * begin: as in a heartbeat, so that a node found through its log's end (its hello skipped) is
   * known to read documents in bulk before its re-sync's documents go out.
   */
  bulk?: true
}

export interface HelloEvent extends Base {
  k: 'hello'
  every: number
  /** As in a heartbeat. */
  bulk?: true
}

export interface ByeEvent extends Base {
  k: 'bye'
}

export type NodeEvent =
  | ConnEvent
  | DiscEvent
  | StatusEvent
  | HeartbeatEvent
  | SnapshotEvent
  | HelloEvent
  | ByeEvent

/** Events that take a sequence number. */
export function isSequenced(ev: NodeEvent): ev is ConnEvent | DiscEvent | StatusEvent {
  return ev.k === 'conn' || ev.k === 'disc' || ev.k === 'status'
}

/** The node side of the log: ordered, never blocks the caller. */
export interface EventSink {
  append(ev: NodeEvent): void
  /** Resolves once everything appended so far is durably in the log. */
  flush(): Promise<void>
  close(): Promise<void>
}

export interface LogEntry {
  /** Log position (a stream id in Redis mode). */
  id: string
  ev: NodeEvent
}

/** The service side: delivers each node's entries in log order, one batch at a time. */
export interface EventSource {
  /**
   * Starts reading; `handler` is awaited before the next batch is read (a batch it fails on is
   * delivered again). `onNewNode` is called for a node whose log has history this reader did
   * not follow: the reader skips that history, and the caller asks the node for its online set.
   * A node whose log began before a read returned is discovered before that read is handled:
   * while the service applies what it read, no node it has not heard of holds a connection
   * that began before it (a node writes its log's first entry before taking connections).
   */
  start(handler: (batch: LogEntry[]) => Promise<void>, onNewNode: (nodeId: string) => Promise<void>): void
  /**
   * Positions a node's reading at its current end (entries after this call are delivered).
   * Used before requesting a snapshot.
   */
  seekToEnd(nodeId: string): Promise<void>
  /**
   * Positions a node's reading just after entry `id` (entries after it are delivered), when
   * the log still holds every entry after it; false (and nothing moved) when it does not: the
   * log was trimmed past it, or lost. Absent where a log does not outlive the reader (memory).
   */
  seekTo?(nodeId: string, id: string): Promise<boolean>
  /**
   * The node's newest hello among its last `within` entries (its entry id), and when its log
   * was last written to (ms). Absent where a log does not outlive the reader (memory).
   */
  lastHello?(
    nodeId: string,
    within: number,
  ): Promise<{ id: string; hello: HelloEvent; lastAt: number } | undefined>
  /** Node ids that have a log. */
  nodes(): Promise<string[]>
  /** True when every known node's log has been delivered up to its current end. */
  caughtUp(): Promise<boolean>
  /**
   * True when this node's log holds entries not yet delivered *and handled*: the reader is
   * behind (busy applying a large batch, a re-sync of 100k connections), so a heartbeat may be
   * waiting in the log. A node is declared dead by its silence, never by the reader's delay.
   */
  behind(nodeId: string): Promise<boolean>
  /**
   * Which of these nodes hold no connection for writing their log now. A process that died
   * has its sockets closed by the kernel at once, long before its heartbeats are missed (as a
   * cluster learns a node is down when its connection drops). Undefined when that cannot be
   * told: no such signal (one process), the check refused, or this reader's own connection
   * younger than `settledMs` (Redis restarted or came back: every node may be reconnecting).
   */
  disconnected?(nodeIds: string[], settledMs: number): Promise<Set<string> | undefined>
  stop(): Promise<void>
}

/** Commands from the presence service (and the HTTP API) to access nodes. */
export type ControlCommand =
  /** `hold`: send the begin (count, digest) and keep the records until `snapshot` says. */
  | { cmd: 'resync'; req: string; nodeId: string; hold?: boolean }
  /** The verdict on a held snapshot: `send` its records (the store differs), or drop them. */
  | { cmd: 'snapshot'; req: string; nodeId: string; send: boolean }
  | { cmd: 'kick'; userId: string; deviceId?: string; revokedBefore?: number }
  | { cmd: 'rejoin'; nodeId: string; epoch: number }
  /** Append a heartbeat now: the presence service wants every node's watermark. */
  | { cmd: 'mark' }
