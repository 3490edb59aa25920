/**
 * The presence store: one interface, two implementations (memory, Redis) that pass one shared
 * contract suite (test/store/contract.ts). Only the presence service writes; it is the single
 * writer, fenced by its own epoch (`writerEpoch`), and every per-user operation is atomic.
 *
 * Node fencing lives here too: records of a node epoch below the node's `minEpoch` are stale
 * (the node restarted or was declared dead), and after a replace only records of the newest
 * generation count.
 */
import type { ConnRecord, DisconnectReason, OfflineReason, PresenceDoc, PresenceView } from './types.js'

export type StoreOp =
  | { op: 'connect'; conn: ConnRecord; ts: number }
  | {
      op: 'disconnect'
      nodeId: string
      epoch: number
      token: string
      userId: string
      reason: DisconnectReason
      /** When the node saw it end (last-seen, since). */
      ts: number
      /** The writer's clock when applying: a takeover's grace runs from here. Default `ts`. */
      now?: number
      /**
       * The writer cannot see every node right now (one is re-syncing): if this empties the
       * user, hold the offline edge (pending, with its reason and `ts`) instead of publishing it.
       */
      defer?: boolean
    }
  | {
      op: 'status'
      userId: string
      status: string | null
      meta: Record<string, unknown> | undefined
      /**
       * When the node received the change (its clock): last write wins per user by this time,
       * whatever order the nodes' logs are read in. Older than the status the store holds:
       * refused (no change); equal: applied.
       */
      ts: number
    }

/**
 * What an operation did at the user level:
 * - `online` / `offline`: a user-level edge, watchers must hear it;
 * - `status`: the user's status or meta changed while online;
 * - `pending`: a takeover left the user without connections; the replacement is expected on
 *   another node within the takeover grace, after which `settle` decides.
 */
export type ChangeKind = 'online' | 'offline' | 'status' | 'pending'

export interface StoreRepair {
  pending: number
  indexes: number
}

export interface Change {
  kind: ChangeKind
  doc: PresenceDoc
}

export interface NodeRecord {
  nodeId: string
  /** Newest epoch seen for this node. */
  epoch: number
  /** Records and events with an epoch below this are stale. */
  minEpoch: number
  /** Generation being written (a replace in progress writes `gen`, older ones still count). */
  gen: number
  /** Records of a generation below this no longer count. */
  liveGen: number
  /** Last heartbeat seen, ms (0 = none). */
  lastHeartbeat: number
  /** Connections the node reported in its last heartbeat. */
  connections: number
  /** Set when the node was declared dead or shut down. */
  retired: boolean
  /**
   * Where a restarted presence service may resume reading this node's log: every entry up to
   * it was applied (written at a heartbeat while the node was certain). Undefined when there
   * is none (never written, or written while the node was being re-synced).
   */
  resume?: LogResume
}

/**
 * With a batch of operations (`apply`): every entry of a node's log up to this one is applied
 * once these operations are — where a restarted service resumes that log (NodeRecord.resume).
 */
export interface LogMark {
  nodeId: string
  at: LogResume
}

/** A position in a node's log and what it stands for. */
export interface LogResume {
  /** Log entry id (a stream id in Redis mode). */
  id: string
  /** The node's sequence number as of that entry. */
  seq: number
  /** The node epoch of that entry. */
  epoch: number
}

export interface StoreStats {
  onlineUsers: number
  connections: number
}

export interface PresenceStore {
  /** Fences every later write: a write from a lower writer epoch is refused (StaleWriterError). */
  setWriterEpoch(epoch: number): void

  /**
   * Applies operations in order; one result per operation (null = no user-level change). With
   * `marks`, each node's resume point moves there in the same round trip.
   */
  apply(ops: StoreOp[], marks?: LogMark[]): Promise<Array<Change | null>>

  /** Starts replacing a node's records: returns the new generation. Older generations still count until `endReplace`. */
  beginReplace(nodeId: string, epoch: number): Promise<number>
  /** Writes part of a node's full online set under generation `gen`. */
  putSnapshot(nodeId: string, gen: number, conns: ConnRecord[], ts: number): Promise<Change[]>
  /**
   * Ends a replace: records of every other generation stop counting and are swept (offline
   * with `reason`; pending until `deferUntil` when given, see StoreOp `defer`) — older ones,
   * and newer ones a writer wrote under a generation the store has since lost.
   */
  endReplace(
    nodeId: string,
    gen: number,
    reason: OfflineReason,
    ts: number,
    deferUntil?: number,
  ): Promise<Change[]>

  /** Records of `nodeId` with an epoch below `belowEpoch` become stale and are removed with `reason`. */
  retireNode(
    nodeId: string,
    belowEpoch: number,
    reason: OfflineReason,
    ts: number,
    deferUntil?: number,
  ): Promise<Change[]>

  /**
   * A user left pending (a held offline edge) whose time ran out — or, `early`, whom the writer
   * releases before that: offline, with the held reason, if still without connections. The
   * edge's `since` (and `lastSeen`, if later) is when the user's last connection ended — the
   * disconnect's `ts`, or the sweep's — not `ts` here: a release can come seconds later.
   */
  settle(userId: string, ts: number, early?: boolean): Promise<Change | null>

  /** `settle` for many users at once, in order (one round trip or two, not one per user). */
  settleMany(userIds: string[], ts: number, early?: boolean): Promise<Array<Change | null>>

  /**
   * Records a node heartbeat (epoch, connection count), and where its log may be resumed from
   * (`resume`; none clears it).
   */
  noteHeartbeat(
    nodeId: string,
    epoch: number,
    connections: number,
    ts: number,
    resume?: LogResume,
  ): Promise<void>

  node(nodeId: string): Promise<NodeRecord | undefined>
  nodes(): Promise<NodeRecord[]>

  /** Every live record of one node (tests, admin). */
  nodeConnections(nodeId: string): Promise<ConnRecord[]>

  /** Fence tokens of one node's live records, from the node index alone (cheap; for digests). */
  nodeTokens(nodeId: string): Promise<string[]>

  /** Users left pending by a takeover whose grace ends at or before `now`. */
  duePending(now: number): Promise<string[]>

  /**
   * For a new writer at start, before any re-sync: re-indexes what a writer killed mid-write
   * left out of an index — held users missing from the deadline index (nothing would settle
   * them), connection records missing from their node's index (no re-sync would sweep them).
   * Returns how many of each it had to add. (The memory store cannot tear.)
   */
  repair?(): Promise<StoreRepair>
  /**
   * Whether the store takes writes now (a probe write). Redis can answer reads while it refuses
   * every write (maxmemory with noeviction, a failed save with stop-writes-on-bgsave-error,
   * min-replicas): the nodes' heartbeats cannot be written then, and their silence says
   * nothing about them. Absent: always writable (memory).
   */
  writable?(): Promise<boolean>

  get(userId: string): Promise<PresenceView>
  getMany(userIds: string[]): Promise<PresenceView[]>
  /**
   * The documents alone, as a new subscriber to `presence/<userId>` receives them (the access
   * nodes serve that retained topic from here); null for a user never seen online.
   */
  docs(userIds: string[]): Promise<Array<PresenceDoc | null>>
  stats(): Promise<StoreStats>

  close(): Promise<void>
}

export class StaleWriterError extends Error {
  override name = 'StaleWriterError'
  constructor(readonly writerEpoch: number) {
    super(`a newer presence service wrote this user; writer epoch ${writerEpoch} is stale`)
  }
}
