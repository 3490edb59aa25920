/**
 * The presence store in Redis. Every per-user operation is one Lua script (scripts/*.lua); a
 * user's keys share the hash tag `{userId}`. A live event's script also writes what the event
 * changes elsewhere (the node's index, the counts, a held user's deadline), so the store needs
 * one Redis, not a Redis Cluster (docs/cluster.md). Per-node records (epoch fencing,
 * generations) are written by the single writer around them. A node's sweep (a dead node, a
 * re-sync's leftovers) runs in Redis, a page of the node's index per script
 * (sweep-node-3.lua), which builds the users' key names from the index itself — the key names
 * below are written twice, here and there.
 *
 * Keys (prefix `herald:` by default):
 *   u:{<userId>}        hash  online, since, lastSeen, reason, status, meta, sts (the status's
 *                             time: last write wins by it), pend, pr, pt, we
 *   u:{<userId>}:c      hash  token -> "<gen>|<record json>"
 *   u:{<userId>}:t      hash  token -> ms (tombstones)
 *   n:{<nodeId>}        hash  epoch, minEpoch, gen, liveGen, hb, conns, retired, and where a restarted
 *                             service resumes the node's log: rid (entry id), rseq, rep (its epoch)
 *   n:{<nodeId>}:idx    hash  token -> "<userId>|<gen>"
 *   nodes               set   node ids
 *   stats               hash  onlineUsers, connections
 *   pending             zset  userId -> deadline of a takeover that left the user without connections
 *   intents             hash  write id -> json [userId...]: a two-step write of an earlier version (see repair)
 */
import type { ChainableCommander, Redis, Result } from 'ioredis'
import { defineScripts, readScripts, sourceAsset } from '../core/redis.js'
import {
  type Change,
  type ChangeKind,
  type LogMark,
  type LogResume,
  type NodeRecord,
  type PresenceStore,
  StaleWriterError,
  type StoreOp,
  type StoreRepair,
  type StoreStats,
} from './store.js'
import {
  type ConnRecord,
  type OfflineReason,
  type PresenceDoc,
  type PresenceView,
  parseFenceToken,
} from './types.js'
import { buildView, everSeen, TOMBSTONE_LIMIT, TOMBSTONE_TTL_MS } from './view.js'

/** Bump when a script changes incompatibly: commands are defined under a version-suffixed name. */
const SCRIPT_VERSION = 3

type ScriptReply = Array<string | number>

declare module 'ioredis' {
  interface RedisCommander<Context> {
    heraldConnectV3(
      doc: string,
      conns: string,
      tombs: string,
      index: string,
      stats: string,
      token: string,
      record: string,
      gen: number,
      now: number,
      writer: number,
      respectTombstone: '0' | '1',
      indexEntry: string,
    ): Result<ScriptReply, Context>
    heraldRemoveV3(
      doc: string,
      conns: string,
      tombs: string,
      index: string,
      stats: string,
      pending: string,
      ...args: Array<string | number>
    ): Result<ScriptReply, Context>
    heraldStatusV3(
      doc: string,
      status: string,
      meta: string,
      writer: number,
      ts: number,
    ): Result<ScriptReply, Context>
    heraldNodeV3(
      node: string,
      nodes: string,
      writer: number,
      nodeId: string,
      ...fields: Array<string | number>
    ): Result<number, Context>
    heraldSnapshotV3(numKeys: number, ...keysThenArgs: Array<string | number>): Result<number[], Context>
    heraldSettleV3(numKeys: number, ...keysThenArgs: Array<string | number>): Result<ScriptReply, Context>
    heraldSweepNodeV3(
      index: string,
      stats: string,
      pending: string,
      ...args: Array<string | number>
    ): Result<ScriptReply, Context>
  }
}

const CODE_KIND: Record<number, ChangeKind> = {
  1: 'online',
  2: 'offline',
  3: 'status',
  4: 'pending',
}
const SWEEP_CHUNK = 500
/** Index entries per sweep script call (sweep-node-3.lua): ~3 ms of Redis per 500. */
const SWEEP_PAGE = 500
/** Snapshot records per script call (snapshot-n.lua): one call blocks Redis ~2 ms per 500. */
const SNAPSHOT_BATCH = 500
/** Users per call of the batched settle script (settle-n.lua). */
const SCRIPT_BATCH = 250

export class RedisKeys {
  constructor(readonly prefix: string) {}
  doc = (userId: string) => `${this.prefix}u:{${userId}}`
  conns = (userId: string) => `${this.prefix}u:{${userId}}:c`
  tombs = (userId: string) => `${this.prefix}u:{${userId}}:t`
  node = (nodeId: string) => `${this.prefix}n:{${nodeId}}`
  index = (nodeId: string) => `${this.prefix}n:{${nodeId}}:idx`
  /** The first keys of a live connect or disconnect (connect-5.lua, remove-6.lua), in their order. */
  live = (userId: string, nodeId: string) =>
    [this.doc(userId), this.conns(userId), this.tombs(userId), this.index(nodeId), this.stats] as const
  get nodes() {
    return `${this.prefix}nodes`
  }
  get stats() {
    return `${this.prefix}stats`
  }
  get pending() {
    return `${this.prefix}pending`
  }
  get intents() {
    return `${this.prefix}intents`
  }
}

export interface RedisStoreOptions {
  redis: Redis
  prefix: string
  takeoverGraceMs?: number
}

interface Applied {
  code: number
  delta: number
  doc: PresenceDoc | undefined
}

export class RedisPresenceStore implements PresenceStore {
  private readonly redis: Redis
  readonly keys: RedisKeys
  private writerEpoch = 0
  private readonly takeoverGraceMs: number
  /** The writer's view of node fencing state; the single writer keeps it in step with Redis. */
  private readonly nodeCache = new Map<string, NodeRecord>()

  constructor(opts: RedisStoreOptions) {
    this.redis = opts.redis
    this.keys = new RedisKeys(opts.prefix)
    this.takeoverGraceMs = opts.takeoverGraceMs ?? 3000
    defineScripts(
      this.redis,
      readScripts(sourceAsset(import.meta.url, './scripts/'), SCRIPT_VERSION, 'herald'),
    )
  }

  setWriterEpoch(epoch: number): void {
    this.writerEpoch = epoch
    this.nodeCache.clear()
  }

  async apply(ops: StoreOp[], marks: LogMark[] = []): Promise<Array<Change | null>> {
    if (ops.length === 0) return []
    const nodes = new Map<string, NodeRecord>()
    for (const op of ops) {
      const nodeId = opNode(op)
      if (nodeId !== undefined && !nodes.has(nodeId)) nodes.set(nodeId, await this.writerNode(nodeId))
    }
    // one script per op, each whole — the user, the node's index, the counts, a held user's
    // deadline (scripts/connect-5.lua, remove-6.lua) — so nothing is left to announce or repair
    const pipe = this.redis.pipeline()
    const queued: Array<StoreOp | null> = []
    for (const op of ops) {
      if (op.op === 'connect') {
        const node = nodes.get(op.conn.nodeId)!
        if (op.conn.epoch < node.minEpoch) {
          queued.push(null) // stale epoch: that incarnation of the node is gone
          continue
        }
        if (op.conn.epoch > node.epoch) node.epoch = op.conn.epoch
        this.queueConnect(pipe, op.conn, node.gen, op.ts)
      } else if (op.op === 'disconnect') {
        const hold = op.reason === 'takeover' || op.defer === true
        this.queueRemove(pipe, op, hold ? (op.now ?? op.ts) + this.takeoverGraceMs : 0)
      } else {
        const k = this.keys
        pipe.heraldStatusV3(
          k.doc(op.userId),
          op.status ?? '',
          op.meta ? JSON.stringify(op.meta) : '',
          this.writerEpoch,
          op.ts,
        )
      }
      queued.push(op)
    }
    // the resume points behind the operations, in the same round trip: sent after them, they
    // are written after them (a writer that dies before sending leaves neither)
    for (const { nodeId, at } of marks) {
      pipe.heraldNodeV3(
        this.keys.node(nodeId),
        this.keys.nodes,
        this.writerEpoch,
        nodeId,
        'rid',
        at.id,
        'rseq',
        at.seq,
        'rep',
        at.epoch,
      )
    }
    const replies = await execPipeline(pipe)
    const out: Array<Change | null> = []
    let r = 0
    for (const op of queued) {
      if (!op) {
        out.push(null)
        continue
      }
      const applied = parseReply(opUser(op), replies[r++]!)
      if (applied.code === -1) throw new StaleWriterError(this.writerEpoch)
      out.push(toChange(applied))
    }
    for (const { nodeId, at } of marks) {
      if (replies[r++] === -1) throw new StaleWriterError(this.writerEpoch)
      const node = await this.writerNode(nodeId)
      node.resume = { ...at }
    }
    return out
  }

  async beginReplace(nodeId: string, epoch: number): Promise<number> {
    const node = await this.writerNode(nodeId)
    // Never a generation an earlier writer may have used: after a data loss the node's `gen`
    // is gone from Redis, while records that writer wrote before it noticed (its cached gen,
    // counted from 1 again) may not be; writer epochs only grow, so starting at ours cannot collide
    const [gen, newest] = [Math.max(node.gen + 1, this.writerEpoch), Math.max(epoch, node.epoch)]
    await this.writeNode(nodeId, 'gen', gen, 'epoch', newest, 'retired', 0)
    Object.assign(node, { gen, epoch: newest, retired: false })
    return gen
  }

  async putSnapshot(nodeId: string, gen: number, conns: ConnRecord[], ts: number): Promise<Change[]> {
    const node = await this.writerNode(nodeId)
    const live = conns.filter((c) => c.epoch >= node.minEpoch)
    const changes: Change[] = []
    if (live.length === 0) return changes
    // one snapshot chunk (a thousand records) in one round trip: each script writes its
    // records, their index entries and the counts at once
    const pipe = this.redis.pipeline()
    for (let b = 0; b < live.length; b += SNAPSHOT_BATCH) {
      this.queueSnapshot(pipe, nodeId, live.slice(b, b + SNAPSHOT_BATCH), gen, ts)
    }
    const codes = (await execPipeline(pipe)).flat() as number[]
    live.forEach((conn, j) => {
      const code = codes[j]!
      if (code === -1) throw new StaleWriterError(this.writerEpoch)
      if (code === 1)
        changes.push({ kind: 'online', doc: { userId: conn.userId, online: true, since: ts, lastSeen: ts } })
    })
    return changes
  }

  async endReplace(
    nodeId: string,
    gen: number,
    reason: OfflineReason,
    ts: number,
    deferUntil?: number,
  ): Promise<Change[]> {
    const node = await this.writerNode(nodeId)
    const liveGen = Math.max(gen, node.liveGen)
    await this.writeNode(nodeId, 'liveGen', liveGen)
    node.liveGen = liveGen
    // every other generation goes: older ones, and any newer one, which only a writer whose
    // cached generation outlived the node's record in Redis (a data loss) can have written
    return this.sweepIndex(nodeId, { gen: liveGen }, reason, ts, deferUntil ?? 0)
  }

  async retireNode(
    nodeId: string,
    belowEpoch: number,
    reason: OfflineReason,
    ts: number,
    deferUntil?: number,
  ): Promise<Change[]> {
    const node = await this.writerNode(nodeId)
    const minEpoch = Math.max(belowEpoch, node.minEpoch)
    const retired = node.retired || node.epoch < belowEpoch
    await this.writeNode(nodeId, 'minEpoch', minEpoch, 'retired', retired ? 1 : 0)
    Object.assign(node, { minEpoch, retired })
    return this.sweepIndex(nodeId, { epoch: node.minEpoch }, reason, ts, deferUntil ?? 0)
  }

  async settle(userId: string, ts: number, early = false): Promise<Change | null> {
    return (await this.settleMany([userId], ts, early))[0]!
  }

  async settleMany(userIds: string[], ts: number, early = false): Promise<Array<Change | null>> {
    const out: Array<Change | null> = []
    for (let i = 0; i < userIds.length; i += SWEEP_CHUNK) {
      const chunk = userIds.slice(i, i + SWEEP_CHUNK)
      const pipe = this.redis.pipeline()
      for (let b = 0; b < chunk.length; b += SCRIPT_BATCH) {
        const keys = chunk.slice(b, b + SCRIPT_BATCH).flatMap((u) => [this.keys.doc(u), this.keys.conns(u)])
        pipe.heraldSettleV3(keys.length, ...keys, ts, this.writerEpoch, early ? '1' : '0')
      }
      const replies = (await execPipeline(pipe)).flat() as ScriptReply
      const follow = this.redis.pipeline()
      const settled: string[] = []
      let offline = 0
      chunk.forEach((userId, j) => {
        const [code, held, reason, since, lastSeen] = replies.slice(5 * j, 5 * j + 5)
        if (Number(code) === -1) throw new StaleWriterError(this.writerEpoch)
        // a tear here (the script ran, this did not) leaves a deadline that settles nothing
        if (Number(held) === 0) settled.push(userId)
        if (Number(code) !== 2) {
          out.push(null)
          return
        }
        offline += 1
        out.push({
          kind: 'offline',
          doc: {
            userId,
            online: false,
            since: Number(since),
            lastSeen: Number(lastSeen),
            reason: reason as OfflineReason,
          },
        })
      })
      if (settled.length > 0) follow.zrem(this.keys.pending, ...settled)
      if (offline > 0) follow.hincrby(this.keys.stats, 'onlineUsers', -offline)
      await execPipeline(follow)
    }
    return out
  }

  async noteHeartbeat(
    nodeId: string,
    epoch: number,
    connections: number,
    ts: number,
    resume?: LogResume,
  ): Promise<void> {
    const node = await this.writerNode(nodeId)
    if (epoch < node.minEpoch) return
    const newest = Math.max(epoch, node.epoch)
    // `rid` empty: no position to resume from
    const at = resume ? [resume.id, resume.seq, resume.epoch] : ['', 0, 0]
    await this.writeNode(
      nodeId,
      'hb',
      ts,
      'conns',
      connections,
      'epoch',
      newest,
      'retired',
      0,
      'rid',
      at[0]!,
      'rseq',
      at[1]!,
      'rep',
      at[2]!,
    )
    // retired no more: a live incarnation
    Object.assign(node, { epoch: newest, lastHeartbeat: ts, connections, retired: false, resume })
  }

  /**
   * Writes fields of a node's record, fenced by the writer epoch (scripts/node-2.lua). Callers
   * update their cached copy only after it succeeded.
   */
  private async writeNode(nodeId: string, ...fields: Array<string | number>): Promise<void> {
    const code = await this.redis.heraldNodeV3(
      this.keys.node(nodeId),
      this.keys.nodes,
      this.writerEpoch,
      nodeId,
      ...fields,
    )
    if (code === -1) throw new StaleWriterError(this.writerEpoch)
  }

  async node(nodeId: string): Promise<NodeRecord | undefined> {
    const h = await this.redis.hgetall(this.keys.node(nodeId))
    return Object.keys(h).length === 0 ? undefined : parseNode(nodeId, h)
  }

  async nodes(): Promise<NodeRecord[]> {
    const ids = (await this.redis.smembers(this.keys.nodes)).sort()
    if (ids.length === 0) return []
    const pipe = this.redis.pipeline()
    for (const id of ids) pipe.hgetall(this.keys.node(id))
    const replies = await execPipeline(pipe)
    return ids.map((id, i) => parseNode(id, replies[i] as Record<string, string>))
  }

  async nodeConnections(nodeId: string): Promise<ConnRecord[]> {
    const node = await this.node(nodeId)
    const index = await this.redis.hgetall(this.keys.index(nodeId))
    const tokensByUser = new Map<string, string[]>()
    for (const [token, value] of Object.entries(index)) {
      const userId = value.slice(0, value.lastIndexOf('|'))
      tokensByUser.set(userId, [...(tokensByUser.get(userId) ?? []), token])
    }
    const out: ConnRecord[] = []
    for (const [userId, tokens] of tokensByUser) {
      const values = await this.redis.hmget(this.keys.conns(userId), ...tokens)
      for (const v of values) {
        const stored = v ? parseStored(v) : undefined
        if (stored && (!node || countsFor(node, stored))) out.push(stored.rec)
      }
    }
    return out
  }

  async nodeTokens(nodeId: string): Promise<string[]> {
    const node = await this.node(nodeId)
    const out: string[] = []
    let cursor = '0'
    do {
      const [next, flat] = await this.redis.hscan(this.keys.index(nodeId), cursor, 'COUNT', 2000)
      cursor = next
      for (let i = 0; i < flat.length; i += 2) {
        const token = flat[i]!
        const value = flat[i + 1]!
        const gen = Number(value.slice(value.lastIndexOf('|') + 1))
        if (!node || (gen >= node.liveGen && (parseFenceToken(token)?.epoch ?? 0) >= node.minEpoch))
          out.push(token)
      }
    } while (cursor !== '0')
    return out
  }

  /**
   * For a new writer at start: the users of every write a killed writer of an earlier version
   * left half done, re-indexed. Such a writer announced each write that took two steps (a
   * snapshot's per-user scripts, then the pipeline that indexed what they wrote; before that,
   * live events too) in `intents` and removed the announcement in the last step; every write
   * is one script now, and none is announced —
   * - a held user ('pend' in its document) missing from the deadline index: nothing would ever
   *   settle it;
   * - a connection in a user's hash missing from its node's index: a re-sync sweeps a node by
   *   that index, so the record would keep its user online forever.
   * Its cost is that of the writes that were in flight, not of the size of the store.
   */
  async repair(): Promise<StoreRepair> {
    const repaired: StoreRepair = { pending: 0, indexes: 0 }
    const intents = await this.redis.hgetall(this.keys.intents)
    const ids = Object.keys(intents)
    if (ids.length === 0) return repaired
    const users = [...new Set(Object.values(intents).flatMap((v) => JSON.parse(v) as string[]))]
    for (let i = 0; i < users.length; i += SWEEP_CHUNK) {
      const chunk = users.slice(i, i + SWEEP_CHUNK)
      const read = this.redis.pipeline()
      for (const userId of chunk) read.hget(this.keys.doc(userId), 'pend').hgetall(this.keys.conns(userId))
      const replies = await execPipeline(read)
      const write = this.redis.pipeline()
      const kinds: Array<keyof StoreRepair> = []
      chunk.forEach((userId, j) => {
        const pend = replies[2 * j] as string | null
        if (pend) {
          write.zadd(this.keys.pending, 'NX', pend, userId)
          kinds.push('pending')
        }
        for (const [token, value] of Object.entries(replies[2 * j + 1] as Record<string, string>)) {
          const nodeId = token.split(':')[0]!
          const gen = value.slice(0, value.indexOf('|'))
          write.hsetnx(this.keys.index(nodeId), token, `${userId}|${gen}`)
          kinds.push('indexes')
        }
      })
      if (kinds.length === 0) continue
      const results = await execPipeline(write)
      results.forEach((r, k) => {
        repaired[kinds[k]!] += Number(r)
      })
    }
    await this.redis.hdel(this.keys.intents, ...ids)
    return repaired
  }

  async writable(): Promise<boolean> {
    try {
      // SET is refused as the nodes' log appends are (OOM, MISCONF, NOREPLICAS, READONLY)
      await this.redis.set(`${this.keys.prefix}probe`, Date.now(), 'PX', 60_000)
      return true
    } catch {
      return false
    }
  }

  async duePending(now: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.pending, '-inf', now, 'LIMIT', 0, 1000)
  }

  async get(userId: string): Promise<PresenceView> {
    return (await this.getMany([userId]))[0]!
  }

  async getMany(userIds: string[]): Promise<PresenceView[]> {
    if (userIds.length === 0) return []
    const pipe = this.redis.pipeline()
    for (const id of userIds) {
      pipe.hgetall(this.keys.doc(id))
      pipe.hgetall(this.keys.conns(id))
    }
    const [replies, nodes] = await Promise.all([execPipeline(pipe), this.nodes()])
    const byId = new Map(nodes.map((n) => [n.nodeId, n]))
    return userIds.map((userId, i) => {
      const doc = parseDoc(userId, replies[2 * i] as Record<string, string>)
      const conns = Object.values(replies[2 * i + 1] as Record<string, string>)
        .map(parseStored)
        .filter((s) => {
          const node = byId.get(s.rec.nodeId)
          return !node || countsFor(node, s)
        })
        .map((s) => s.rec)
      return buildView(doc, conns)
    })
  }

  async docs(userIds: string[]): Promise<Array<PresenceDoc | null>> {
    if (userIds.length === 0) return []
    const pipe = this.redis.pipeline()
    for (const id of userIds) pipe.hgetall(this.keys.doc(id))
    const replies = await execPipeline(pipe)
    return userIds.map((id, i) => {
      const doc = parseDoc(id, replies[i] as Record<string, string>)
      return everSeen(doc) ? doc : null
    })
  }

  async stats(): Promise<StoreStats> {
    const [online, connections] = await this.redis.hmget(this.keys.stats, 'onlineUsers', 'connections')
    return {
      onlineUsers: Number(online ?? 0),
      connections: Number(connections ?? 0),
    }
  }

  async close(): Promise<void> {}

  // --- internals ---

  /** A live connect: a token with a tombstone (its disconnect came first) is not added. */
  private queueConnect(pipe: ChainableCommander, conn: ConnRecord, gen: number, ts: number) {
    pipe.heraldConnectV3(
      ...this.keys.live(conn.userId, conn.nodeId),
      conn.token,
      JSON.stringify(conn),
      gen,
      ts,
      this.writerEpoch,
      '1',
      `${conn.userId}|${gen}`,
    )
  }

  /** One snapshot-n.lua call for a batch of records: two keys and two arguments per record. */
  private queueSnapshot(
    pipe: ChainableCommander,
    nodeId: string,
    conns: ConnRecord[],
    gen: number,
    ts: number,
  ) {
    const keys: string[] = [this.keys.index(nodeId), this.keys.stats]
    const args: Array<string | number> = [this.writerEpoch, ts, gen]
    for (const conn of conns) {
      keys.push(this.keys.doc(conn.userId), this.keys.conns(conn.userId))
      args.push(conn.token, `${gen}|${JSON.stringify(conn)}`, conn.userId)
    }
    pipe.heraldSnapshotV3(keys.length, ...keys, ...args)
  }

  /** A live disconnect: a token not there yet gets a tombstone (its connect may still come). */
  private queueRemove(
    pipe: ChainableCommander,
    op: Extract<StoreOp, { op: 'disconnect' }>,
    /** Hold an emptying user's offline edge until then (0 = publish it now). */
    holdUntil: number,
  ) {
    pipe.heraldRemoveV3(
      ...this.keys.live(op.userId, op.nodeId),
      this.keys.pending,
      op.reason,
      op.ts,
      this.writerEpoch,
      holdUntil,
      '1',
      TOMBSTONE_TTL_MS,
      TOMBSTONE_LIMIT,
      op.userId,
      op.token,
    )
  }

  /**
   * Sweeps a node's index page by page in Redis (scripts/sweep-node-3.lua): every connection
   * it names that is doomed — an older generation than `liveGen` (`gen`), or an epoch below
   * `minEpoch` (`epoch`) — leaves its user, its index entry and the counts in the same script;
   * returns the user-level edges. One script per page holds every write of that page, so a
   * writer killed mid-sweep leaves nothing half done.
   */
  private async sweepIndex(
    nodeId: string,
    doomed: { gen: number } | { epoch: number },
    reason: OfflineReason,
    ts: number,
    holdUntil: number,
  ): Promise<Change[]> {
    const k = this.keys
    const [mode, bar] = 'gen' in doomed ? ['gen', doomed.gen] : ['epoch', doomed.epoch]
    const changes: Change[] = []
    let cursor = '0'
    do {
      const reply = await this.redis.heraldSweepNodeV3(
        k.index(nodeId),
        k.stats,
        k.pending,
        k.prefix,
        cursor,
        SWEEP_PAGE,
        mode,
        bar,
        reason,
        ts,
        this.writerEpoch,
        holdUntil,
      )
      cursor = String(reply[0])
      for (let i = 2; i < reply.length; i += 3) {
        const userId = String(reply[i])
        const lastSeen = Number(reply[i + 2])
        changes.push(
          Number(reply[i + 1]) === 4
            ? // not an edge (its document is not published): the user is held, still online
              { kind: 'pending', doc: { userId, online: true, since: 0, lastSeen } }
            : { kind: 'offline', doc: { userId, online: false, since: ts, lastSeen, reason } },
        )
      }
      if (Number(reply[1]) === 1) throw new StaleWriterError(this.writerEpoch)
    } while (cursor !== '0')
    return changes
  }

  private async writerNode(nodeId: string): Promise<NodeRecord> {
    let node = this.nodeCache.get(nodeId)
    if (!node) {
      node = (await this.node(nodeId)) ?? emptyNode(nodeId)
      this.nodeCache.set(nodeId, node)
    }
    return node
  }
}

function opNode(op: StoreOp): string | undefined {
  if (op.op === 'connect') return op.conn.nodeId
  if (op.op === 'disconnect') return op.nodeId
  return undefined
}

function opUser(op: StoreOp): string {
  return op.op === 'connect' ? op.conn.userId : op.userId
}

async function execPipeline(pipe: ChainableCommander): Promise<unknown[]> {
  const results = (await pipe.exec()) ?? []
  return results.map(([err, value]) => {
    if (err) throw err
    return value
  })
}

function parseReply(userId: string, raw: unknown): Applied {
  const reply = raw as ScriptReply
  const code = Number(reply[0])
  const delta = Number(reply[1])
  if (reply.length < 8) return { code, delta, doc: undefined }
  const doc: PresenceDoc = {
    userId,
    online: reply[2] === '1',
    since: Number(reply[3]),
    lastSeen: Number(reply[4]),
  }
  if (reply[5]) doc.reason = reply[5] as OfflineReason
  if (reply[6]) doc.status = String(reply[6])
  if (reply[7]) doc.meta = JSON.parse(String(reply[7])) as Record<string, unknown>
  return { code, delta, doc }
}

function toChange(applied: Applied): Change | null {
  const kind = CODE_KIND[applied.code]
  return kind && applied.doc ? { kind, doc: applied.doc } : null
}

function parseDoc(userId: string, h: Record<string, string>): PresenceDoc {
  const doc: PresenceDoc = {
    userId,
    online: h.online === '1',
    since: Number(h.since ?? 0),
    lastSeen: Number(h.lastSeen ?? 0),
  }
  if (h.reason && !doc.online) doc.reason = h.reason as OfflineReason
  if (h.status) doc.status = h.status
  if (h.meta) doc.meta = JSON.parse(h.meta) as Record<string, unknown>
  return doc
}

interface Stored {
  rec: ConnRecord
  gen: number
}

function parseStored(value: string): Stored {
  const bar = value.indexOf('|')
  return {
    gen: Number(value.slice(0, bar)),
    rec: JSON.parse(value.slice(bar + 1)) as ConnRecord,
  }
}

function countsFor(node: NodeRecord, s: Stored): boolean {
  return s.rec.epoch >= node.minEpoch && s.gen >= node.liveGen
}

function emptyNode(nodeId: string): NodeRecord {
  return {
    nodeId,
    epoch: 0,
    minEpoch: 0,
    gen: 0,
    liveGen: 0,
    lastHeartbeat: 0,
    connections: 0,
    retired: false,
  }
}

function parseNode(nodeId: string, h: Record<string, string>): NodeRecord {
  return {
    nodeId,
    epoch: Number(h.epoch ?? 0),
    minEpoch: Number(h.minEpoch ?? 0),
    gen: Number(h.gen ?? 0),
    liveGen: Number(h.liveGen ?? 0),
    lastHeartbeat: Number(h.hb ?? 0),
    connections: Number(h.conns ?? 0),
    retired: h.retired === '1',
    ...(h.rid ? { resume: { id: h.rid, seq: Number(h.rseq ?? 0), epoch: Number(h.rep ?? 0) } } : {}),
  }
}
