/**
 * The message store in Redis. Keys (prefix `herald:` by default):
 *   m:{<to>}:h                  stream  the recipient's history; entry field `e` = envelope json
 *   m:{<to>}:d:<from>:<id>      string  de-duplication: offset of the first recording (PX window)
 *   m:{<from>}:s:<id>           hash    status of a sent message: to, offset, ts, d:<device> -> status|ms
 */
import type { Redis, Result } from 'ioredis'
import type { Envelope } from '../core/envelope.js'
import { defineScripts, readScripts, sourceAsset } from '../core/redis.js'
import {
  DEFAULT_MESSAGE_LIMITS,
  type DeviceStatus,
  type HistoryPage,
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
      history: string,
      dedup: string,
      status: string,
      envelope: string,
      maxLen: number,
      minId: string,
      windowMs: number,
      to: string,
      ts: number,
    ): Result<[number, string], Context>
    heraldReceiptV1(
      status: string,
      by: string,
      deviceId: string,
      st: string,
      ts: number,
    ): Result<number, Context>
  }
}

const RECEIPT: Record<number, ReceiptVerdict> = {
  1: 'recorded',
  0: 'unchanged',
  [-1]: 'unknown-message',
  [-2]: 'not-recipient',
}

export class RedisMessageStore implements MessageStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly limits: MessageStoreLimits = DEFAULT_MESSAGE_LIMITS,
  ) {
    defineScripts(redis, readScripts(sourceAsset(import.meta.url, './scripts/'), SCRIPT_VERSION, 'herald'))
  }

  private history_ = (userId: string) => `${this.prefix}m:{${userId}}:h`
  private dedup = (to: string, from: string, id: string) => `${this.prefix}m:{${to}}:d:${from}:${id}`
  private statusKey = (from: string, id: string) => `${this.prefix}m:{${from}}:s:${id}`

  async record(env: Envelope): Promise<RecordResult> {
    const { offset: _o, ...clean } = env
    const now = Date.now()
    const [dup, offset] = await this.redis.heraldRecordV1(
      this.history_(env.to),
      this.dedup(env.to, env.from, env.id),
      this.statusKey(env.from, env.id),
      JSON.stringify(clean),
      this.limits.historyMaxLen,
      `${now - this.limits.historyMaxAgeMs}-0`,
      this.limits.dedupWindowMs,
      env.to,
      env.ts,
    )
    return { offset, duplicate: dup === 1 }
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
