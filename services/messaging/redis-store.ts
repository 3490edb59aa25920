/**
 * The message store in Redis. Keys (prefix `herald:` by default):
 *   m:{<to>}:h                  stream  the recipient's history; entry field `e` = envelope json
 *   m:{<from>}:s:<id>           hash    status of a sent message: to, offset, ts, d:<device> -> status|ms,
 *                                       and de-duplication: r:<to> -> offset of the first recording
 *   m:{<to>}:d:<from>:<id>      string  de-duplication as earlier versions kept it: read, never written
 */
import type { Redis, Result } from 'ioredis'
import type { Envelope } from '../core/envelope.js'
import { defineScripts, readScripts, sourceAsset } from '../core/redis.js'
import {
  DEFAULT_MESSAGE_LIMITS,
  type DeviceStatus,
  type HistoryPage,
  historyJson,
  type MessageStatus,
  type MessageStore,
  type MessageStoreLimits,
  overallStatus,
  type ReceiptVerdict,
  type RecordResult,
  visibleTo,
} from './store.js'

const SCRIPT_VERSION = 1

declare module 'ioredis' {
  interface RedisCommander<Context> {
    heraldRecordV1(
      numKeys: number,
      ...keysThenArgs: Array<string | number>
    ): Result<Array<[number, string]>, Context>
    heraldReceiptV1(
      status: string,
      by: string,
      deviceId: string,
      st: string,
      ts: number,
    ): Result<number, Context>
  }
}

/** At most this many messages per record script (three keys and three arguments each). */
const RECORD_BATCH = 256

interface PendingRecord {
  env: Envelope
  /** The envelope without its offset (JSON), as the history keeps it. */
  json: string
  resolve: (r: RecordResult) => void
  reject: (err: Error) => void
}

const RECEIPT: Record<number, ReceiptVerdict> = {
  1: 'recorded',
  0: 'unchanged',
  [-1]: 'unknown-message',
  [-2]: 'not-recipient',
}

export class RedisMessageStore implements MessageStore {
  /** Records waiting for this event-loop turn's script. */
  private pending: PendingRecord[] = []

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly limits: MessageStoreLimits = DEFAULT_MESSAGE_LIMITS,
  ) {
    defineScripts(redis, readScripts(sourceAsset(import.meta.url, './scripts/'), SCRIPT_VERSION, 'herald'))
  }

  private history_ = (userId: string) => `${this.prefix}m:{${userId}}:h`
  /** Where earlier versions kept de-duplication (scripts/record-n.lua reads it, for upgrades). */
  private legacyDedup = (to: string, from: string, id: string) => `${this.prefix}m:{${to}}:d:${from}:${id}`
  private statusKey = (from: string, id: string) => `${this.prefix}m:{${from}}:s:${id}`

  /**
   * Messages recorded in one event-loop turn (the publishes Aedes read from every socket that
   * was readable) go to Redis as one script, each message still atomic on its own and a
   * failure its own (scripts/record-n.lua). Order is kept: batches leave in order on one
   * connection, and a batch records in arrival order.
   */
  record(env: Envelope): Promise<RecordResult> {
    const json = historyJson(env)
    return new Promise((resolve, reject) => {
      this.pending.push({ env, json, resolve, reject })
      if (this.pending.length === 1) setImmediate(this.flush)
    })
  }

  private readonly flush = () => {
    const all = this.pending
    this.pending = []
    for (let b = 0; b < all.length; b += RECORD_BATCH) this.recordBatch(all.slice(b, b + RECORD_BATCH))
  }

  private recordBatch(batch: PendingRecord[]) {
    const keys: string[] = []
    const args: Array<string | number> = [
      this.limits.historyMaxLen,
      `${Date.now() - this.limits.historyMaxAgeMs}-0`,
      this.limits.dedupWindowMs,
    ]
    for (const { env, json } of batch) {
      keys.push(
        this.history_(env.to),
        this.legacyDedup(env.to, env.from, env.id),
        this.statusKey(env.from, env.id),
      )
      args.push(json, env.to, env.ts)
    }
    this.redis.heraldRecordV1(keys.length, ...keys, ...args).then(
      (replies) => {
        batch.forEach((p, i) => {
          const [code, value] = replies[i] ?? [-1, 'no reply']
          if (code === -1) p.reject(new Error(value))
          else p.resolve({ offset: value, duplicate: code === 1 })
        })
      },
      (err: Error) => {
        for (const p of batch) p.reject(err)
      },
    )
  }

  async history(
    userId: string,
    opts: { after?: string; limit: number; deviceId?: string },
  ): Promise<HistoryPage> {
    const after = opts.after && opts.after !== '0' ? opts.after : '0-0'
    const entries = await this.redis.xrange(this.history_(userId), `(${after}`, '+', 'COUNT', opts.limit)
    const messages: Envelope[] = []
    let next = opts.after || '0'
    for (const [offset, fields] of entries) {
      next = offset
      const raw = fields[1]
      if (!raw) continue
      const env = JSON.parse(raw) as Envelope
      if (visibleTo(env, opts.deviceId)) messages.push({ ...env, offset })
    }
    return { messages, next }
  }

  async receipt(r: {
    from: string
    id: string
    by: string
    deviceId: string
    status: DeviceStatus
    ts: number
  }): Promise<ReceiptVerdict> {
    const code = await this.redis.heraldReceiptV1(
      this.statusKey(r.from, r.id),
      r.by,
      r.deviceId,
      r.status,
      r.ts,
    )
    return RECEIPT[code] ?? 'unknown-message'
  }

  async status(from: string, id: string): Promise<MessageStatus | undefined> {
    const h = await this.redis.hgetall(this.statusKey(from, id))
    if (!h.to) return undefined
    const devices: MessageStatus['devices'] = {}
    for (const [field, value] of Object.entries(h)) {
      if (!field.startsWith('d:')) continue
      const [status, ts] = value.split('|')
      devices[field.slice(2)] = { status: status as DeviceStatus, ts: Number(ts) }
    }
    return {
      id,
      from,
      to: h.to,
      offset: h.offset ?? '',
      ts: Number(h.ts ?? 0),
      devices,
      status: overallStatus(devices),
    }
  }

  async close(): Promise<void> {}
}
