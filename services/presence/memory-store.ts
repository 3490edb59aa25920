/**
 * The embedded presence store: the same semantics as the Redis store's Lua scripts
 * (services/presence/scripts), kept in process memory for a single-machine Herald.
 */
import {
  type Change,
  type LogMark,
  type LogResume,
  type NodeRecord,
  type PresenceStore,
  StaleWriterError,
  type StoreOp,
  type StoreStats,
} from './store.js'
import {
  type ConnRecord,
  type DisconnectReason,
  type OfflineReason,
  type PresenceDoc,
  type PresenceView,
  parseFenceToken,
} from './types.js'
import { buildView, everSeen, TOMBSTONE_LIMIT, TOMBSTONE_TTL_MS } from './view.js'

interface StoredConn {
  rec: ConnRecord
  gen: number
}

interface UserState {
  doc: PresenceDoc
  conns: Map<string, StoredConn>
  /** Tokens whose disconnect came first; made at the first one (most users never need it; 167 bytes each). */
  tombs: Map<string, number> | undefined
  /** Deadline of a pending offline edge (takeover, or held while a node re-synced; 0 = none). */
  pending: number
  /** The reason the held edge will carry. */
  pendReason: OfflineReason
  /**
   * When the user's last connection ended (the disconnect's time, or the sweep's): the held
   * edge's `since` when it is settled, not the time it is released.
   */
  pendAt: number
  /**
   * When the node received the status the document holds (its clock; 0 = none): an older
   * change is refused (status-1.lua's `sts`). Cleared with the status, on every edge.
   */
  statusAt: number
  writer: number
}

interface NodeState extends NodeRecord {
  /** token -> userId and generation: the node -> connections index used by replace and retire. */
  index: Map<string, { userId: string; gen: number }>
  /** The writer epoch that last wrote this record (a stale writer is refused, as for users). */
  writer: number
}

export interface MemoryStoreOptions {
  /** How long a takeover may leave a user without connections, ms. */
  takeoverGraceMs?: number
}

export class MemoryPresenceStore implements PresenceStore {
  private readonly users = new Map<string, UserState>()
  private readonly nodeStates = new Map<string, NodeState>()
  private readonly pendingUsers = new Map<string, UserState>()
  private writerEpoch = 0
  private onlineUsers = 0
  private connections = 0
  private readonly takeoverGraceMs: number

  constructor(opts: MemoryStoreOptions = {}) {
    this.takeoverGraceMs = opts.takeoverGraceMs ?? 3000
  }

  setWriterEpoch(epoch: number): void {
    this.writerEpoch = epoch
  }

  async apply(ops: StoreOp[], marks: LogMark[] = []): Promise<Array<Change | null>> {
    const changes = ops.map((op) => {
      switch (op.op) {
        case 'connect':
          return this.connect(op.conn, op.ts)
        case 'disconnect':
          return this.disconnect(
            op.userId,
            op.nodeId,
            op.token,
            op.reason,
            op.ts,
            op.now ?? op.ts,
            op.defer === true,
          )
        case 'status':
          return this.status(op.userId, op.status, op.meta, op.ts)
      }
      return null
    })
    for (const { nodeId, at } of marks) this.writableNode(nodeId).resume = { ...at }
    return changes
  }

  async beginReplace(nodeId: string, epoch: number): Promise<number> {
    const node = this.writableNode(nodeId)
    if (epoch > node.epoch) node.epoch = epoch
    node.gen = Math.max(node.gen + 1, this.writerEpoch) // as the Redis store: see there
    node.retired = false
    return node.gen
  }

  async putSnapshot(nodeId: string, gen: number, conns: ConnRecord[], ts: number): Promise<Change[]> {
    const node = this.nodeState(nodeId)
    const changes: Change[] = []
    for (const conn of conns) {
      if (conn.epoch < node.minEpoch) continue
      const change = this.upsert(conn, gen, ts, false)
      if (change) changes.push(change)
    }
    return changes
  }

  async endReplace(
    nodeId: string,
    gen: number,
    reason: OfflineReason,
    ts: number,
    deferUntil?: number,
  ): Promise<Change[]> {
    const node = this.writableNode(nodeId)
    if (gen > node.liveGen) node.liveGen = gen
    return this.sweep(node, (entry) => entry.gen !== node.liveGen, reason, ts, deferUntil)
  }

  async retireNode(
    nodeId: string,
    belowEpoch: number,
    reason: OfflineReason,
    ts: number,
    deferUntil?: number,
  ): Promise<Change[]> {
    const node = this.writableNode(nodeId)
    if (belowEpoch > node.minEpoch) node.minEpoch = belowEpoch
    if (node.epoch < belowEpoch) node.retired = true
    return this.sweep(
      node,
      (_entry, token) => (parseFenceToken(token)?.epoch ?? 0) < node.minEpoch,
      reason,
      ts,
      deferUntil,
    )
  }

  async settle(userId: string, ts: number, early = false): Promise<Change | null> {
    const user = this.users.get(userId)
    if (!user || user.pending === 0) return null
    if (user.conns.size > 0) {
      user.pending = 0
      return null
    }
    if (user.pending > ts && !early) return null
    user.pending = 0
    return this.goOffline(user, user.pendReason, user.pendAt)
  }

  async settleMany(userIds: string[], ts: number, early = false): Promise<Array<Change | null>> {
    const out: Array<Change | null> = []
    for (const userId of userIds) out.push(await this.settle(userId, ts, early))
    return out
  }

  async noteHeartbeat(
    nodeId: string,
    epoch: number,
    connections: number,
    ts: number,
    resume?: LogResume,
  ): Promise<void> {
    if (epoch < this.nodeState(nodeId).minEpoch) return
    const node = this.writableNode(nodeId)
    if (epoch > node.epoch) node.epoch = epoch
    node.retired = false // a live incarnation
    node.lastHeartbeat = ts
    node.connections = connections
    if (resume) node.resume = { ...resume }
    else delete node.resume
  }

  async node(nodeId: string): Promise<NodeRecord | undefined> {
    const node = this.nodeStates.get(nodeId)
    return node ? publicNode(node) : undefined
  }

  async nodes(): Promise<NodeRecord[]> {
    return [...this.nodeStates.values()].map(publicNode)
  }

  async nodeConnections(nodeId: string): Promise<ConnRecord[]> {
    const node = this.nodeStates.get(nodeId)
    if (!node) return []
    const out: ConnRecord[] = []
    for (const [token, entry] of node.index) {
      const stored = this.users.get(entry.userId)?.conns.get(token)
      if (stored && this.counts(stored)) out.push(stored.rec)
    }
    return out
  }

  async nodeTokens(nodeId: string): Promise<string[]> {
    const node = this.nodeStates.get(nodeId)
    if (!node) return []
    const out: string[] = []
    for (const [token, entry] of node.index) {
      if (entry.gen >= node.liveGen && (parseFenceToken(token)?.epoch ?? 0) >= node.minEpoch) out.push(token)
    }
    return out
  }

  async duePending(now: number): Promise<string[]> {
    const out: string[] = []
    for (const [userId, user] of this.pendingUsers) {
      if (user.pending === 0) this.pendingUsers.delete(userId)
      else if (user.pending <= now) out.push(userId)
    }
    return out
  }

  async get(userId: string): Promise<PresenceView> {
    const user = this.users.get(userId)
    if (!user) return buildView({ userId, online: false, since: 0, lastSeen: 0 }, [])
    const live = [...user.conns.values()].filter((c) => this.counts(c)).map((c) => c.rec)
    return buildView(user.doc, live)
  }

  async getMany(userIds: string[]): Promise<PresenceView[]> {
    return Promise.all(userIds.map((id) => this.get(id)))
  }

  async docs(userIds: string[]): Promise<Array<PresenceDoc | null>> {
    return userIds.map((id) => {
      const doc = this.users.get(id)?.doc
      return doc && everSeen(doc) ? { ...doc } : null
    })
  }

  async stats(): Promise<StoreStats> {
    return { onlineUsers: this.onlineUsers, connections: this.connections }
  }

  async close(): Promise<void> {}

  // --- per-user operations (mirror the Lua scripts) ---

  private connect(conn: ConnRecord, ts: number): Change | null {
    const node = this.nodeState(conn.nodeId)
    if (conn.epoch < node.minEpoch) return null // stale epoch: the node restarted or died since
    if (conn.epoch > node.epoch) node.epoch = conn.epoch
    return this.upsert(conn, node.gen, ts, true)
  }

  private upsert(conn: ConnRecord, gen: number, ts: number, respectTombstone: boolean): Change | null {
    const user = this.user(conn.userId)
    if (respectTombstone && user.tombs?.has(conn.token)) return null // its disconnect came first
    const node = this.nodeState(conn.nodeId)
    const existed = user.conns.has(conn.token)
    user.conns.set(conn.token, { rec: conn, gen })
    node.index.set(conn.token, { userId: conn.userId, gen })
    if (existed) return null
    this.connections += 1
    if (ts > user.doc.lastSeen) user.doc.lastSeen = ts
    if (user.doc.online) {
      user.pending = 0
      return null
    }
    user.doc = { userId: conn.userId, online: true, since: ts, lastSeen: ts }
    user.statusAt = 0
    this.onlineUsers += 1
    return { kind: 'online', doc: { ...user.doc } }
  }

  private disconnect(
    userId: string,
    nodeId: string,
    token: string,
    reason: DisconnectReason,
    ts: number,
    now: number,
    defer: boolean,
  ): Change | null {
    const user = this.user(userId)
    const node = this.nodeState(nodeId)
    if (!user.conns.delete(token)) {
      user.tombs ??= new Map()
      user.tombs.set(token, ts) // a connect for this token may still be on its way
      pruneTombstones(user.tombs, ts)
      return null
    }
    node.index.delete(token)
    this.connections -= 1
    if (ts > user.doc.lastSeen) user.doc.lastSeen = ts
    if (user.conns.size > 0 || !user.doc.online) return null
    if (reason === 'takeover' || defer) {
      return this.hold(
        user,
        now + this.takeoverGraceMs,
        reason === 'takeover' ? 'connection-lost' : reason,
        ts,
      )
    }
    return this.goOffline(user, reason, ts)
  }

  private status(
    userId: string,
    status: string | null,
    meta: Record<string, unknown> | undefined,
    ts: number,
  ): Change | null {
    const user = this.users.get(userId)
    if (!user?.doc.online) return null
    this.checkWriter(user)
    // last write wins by the time the node received it, not by the order the logs are read
    if (ts < user.statusAt) return null
    // the time moves on even when the value does not: a change between the two, read later, is older
    user.statusAt = ts
    const nextStatus = status ?? undefined
    if (user.doc.status === nextStatus && JSON.stringify(user.doc.meta) === JSON.stringify(meta)) return null
    user.doc = { ...user.doc }
    if (nextStatus === undefined) delete user.doc.status
    else user.doc.status = nextStatus
    if (meta === undefined) delete user.doc.meta
    else user.doc.meta = meta
    return { kind: 'status', doc: { ...user.doc } }
  }

  private hold(user: UserState, until: number, reason: OfflineReason, at: number): Change {
    user.pending = until
    user.pendReason = reason
    user.pendAt = at
    this.pendingUsers.set(user.doc.userId, user)
    return { kind: 'pending', doc: { ...user.doc } }
  }

  private goOffline(user: UserState, reason: OfflineReason, ts: number): Change {
    user.pending = 0
    user.statusAt = 0
    user.doc = {
      userId: user.doc.userId,
      online: false,
      since: ts,
      lastSeen: Math.max(ts, user.doc.lastSeen),
      reason,
    }
    this.onlineUsers -= 1
    return { kind: 'offline', doc: { ...user.doc } }
  }

  private sweep(
    node: NodeState,
    doomed: (entry: { userId: string; gen: number }, token: string) => boolean,
    reason: OfflineReason,
    ts: number,
    deferUntil: number | undefined,
  ): Change[] {
    const byUser = new Map<string, string[]>()
    for (const [token, entry] of node.index) {
      if (!doomed(entry, token)) continue
      const list = byUser.get(entry.userId)
      if (list) list.push(token)
      else byUser.set(entry.userId, [token])
    }
    const changes: Change[] = []
    for (const [userId, tokens] of byUser) {
      const user = this.user(userId)
      for (const token of tokens) {
        node.index.delete(token)
        if (user.conns.delete(token)) this.connections -= 1
      }
      if (user.conns.size > 0 || !user.doc.online) continue
      changes.push(
        deferUntil === undefined ? this.goOffline(user, reason, ts) : this.hold(user, deferUntil, reason, ts),
      )
    }
    return changes
  }

  private counts(c: StoredConn): boolean {
    const node = this.nodeStates.get(c.rec.nodeId)
    return !node || (c.rec.epoch >= node.minEpoch && c.gen >= node.liveGen)
  }

  private user(userId: string): UserState {
    let user = this.users.get(userId)
    if (!user) {
      user = {
        doc: { userId, online: false, since: 0, lastSeen: 0 },
        conns: new Map(),
        tombs: undefined,
        pending: 0,
        pendReason: 'connection-lost',
        pendAt: 0,
        statusAt: 0,
        writer: 0,
      }
      this.users.set(userId, user)
    }
    this.checkWriter(user)
    return user
  }

  private checkWriter(user: UserState) {
    if (user.writer > this.writerEpoch) throw new StaleWriterError(this.writerEpoch)
    user.writer = this.writerEpoch
  }

  /** A node's record, for writing: refused to a writer older than the one that wrote it last. */
  private writableNode(nodeId: string): NodeState {
    const node = this.nodeState(nodeId)
    if (node.writer > this.writerEpoch) throw new StaleWriterError(this.writerEpoch)
    node.writer = this.writerEpoch
    return node
  }

  private nodeState(nodeId: string): NodeState {
    let node = this.nodeStates.get(nodeId)
    if (!node) {
      node = {
        nodeId,
        epoch: 0,
        minEpoch: 0,
        gen: 0,
        liveGen: 0,
        lastHeartbeat: 0,
        connections: 0,
        retired: false,
        index: new Map(),
        writer: 0,
      }
      this.nodeStates.set(nodeId, node)
    }
    return node
  }
}

function publicNode(node: NodeState): NodeRecord {
  const { index: _index, writer: _writer, ...rest } = node
  return { ...rest }
}

function pruneTombstones(tombs: Map<string, number>, now: number) {
  for (const [token, at] of tombs) {
    if (tombs.size <= TOMBSTONE_LIMIT && now - at < TOMBSTONE_TTL_MS) break
    tombs.delete(token)
  }
}
