/**
 * The message store in Redis. Keys (prefix `herald:` by default):
 *   m:{<to>}:h                  stream  the recipient's history; entry field `e` = envelope json
 *   m:{<from>}:s:<id>           hash    status of a sent message: to, offset, ts (of the recipient
 *                                       recorded last), r:<to> -> offset for every recipient (also
 *                                       the de-duplication), d:<to>:<device> -> status|ms
 */
import type { Redis, Result } from 'ioredis'
import type { Envelope } from '../core/envelope.js'
import { defineScripts, readScripts, sourceAsset } from '../core/redis.js'
import {
  compareOffsets,
  DEFAULT_MESSAGE_LIMITS,
  type DeviceStatus,
  type DeviceStatuses,
  type HistoryPage,
  historyJson,
  type MessageStatus,
  type MessageStore,
  type MessageStoreLimits,
  messageStatus,
  type ReceiptInput,
  type ReceiptVerdict,
  type RecordResult,
  visibleTo,
} from './store.js'

const SCRIPT_VERSION = 3

declare module 'ioredis' {
  interface RedisCommander<Context> {
    heraldRecordV3(
      numKeys: number,
      ...keysThenArgs: Array<string | number>
    ): Result<Array<[number, string]>, Context>
    heraldReceiptV3(
      status: string,
      by: string,
      deviceId: string,
      st: string,
      ts: number,
    ): Result<number, Context>
  }
}

/**
 * Entries per history read after a page's first read came back short of visible messages
 * (those of other devices filtered out): bounded, as every read is, but not so small that a
 * long run of another device's pushes costs a round trip per few entries.
 */
const SCAN_COUNT = 500

/** At most this many messages per record script (two keys and four arguments each). */
const RECORD_BATCH = 256

/**
 * A history is trimmed by age at most this often (and at least once per maxAge): the trim
 * only frees memory, since reads skip what is older themselves, and on every append it was
 * ~1.3 us of Redis per message (an XTRIM that almost always finds nothing to cut).
 */
const AGE_TRIM_EVERY_MS = 60_000
/** Histories remembered as trimmed in the current period; past this the memory resets early. */
const AGE_TRIM_REMEMBERED = 100_000

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
  /** Histories trimmed by age since `trimmedSince`. */
  private trimmed = new Set<string>()
  private trimmedSince = 0

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly limits: MessageStoreLimits = DEFAULT_MESSAGE_LIMITS,
  ) {
    defineScripts(redis, readScripts(sourceAsset(import.meta.url, './scripts/'), SCRIPT_VERSION, 'herald'))
  }

  private history_ = (userId: string) => `${this.prefix}m:{${userId}}:h`
  private statusKey = (from: string, id: string) => `${this.prefix}m:{${from}}:s:${id}`

  /**
   * Messages recorded in one event-loop turn (the publishes Aedes read from every socket that
   * was readable) go to Redis as one script, each message still atomic on its own and a
   * failure its own (scripts/record-n.lua). Order is kept: batches leave in order on one
   * connection, and a batch records in arrival order.
   */
  record(env: Envelope, json = historyJson(env)): Promise<RecordResult> {
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
    const now = Date.now()
    const { historyMaxAgeMs } = this.limits
    if (
      now - this.trimmedSince >= Math.min(AGE_TRIM_EVERY_MS, historyMaxAgeMs) ||
      this.trimmed.size >= AGE_TRIM_REMEMBERED
    ) {
      this.trimmed.clear()
      this.trimmedSince = now
    }
    const keys: string[] = []
    const args: Array<string | number> = [
      this.limits.historyMaxLen,
      `${now - historyMaxAgeMs}-0`,
      this.limits.dedupWindowMs,
    ]
    for (const { env, json } of batch) {
      const history = this.history_(env.to)
      const trim = !this.trimmed.has(history)
      if (trim) this.trimmed.add(history)
      keys.push(history, this.statusKey(env.from, env.id))
      args.push(json, env.to, env.ts, trim ? '1' : '0')
    }
    this.redis.heraldRecordV3(keys.length, ...keys, ...args).then(
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
    opts: { after?: string; limit: number; deviceId?: string; maxBytes?: number },
  ): Promise<HistoryPage> {
    const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY
    let bytes = 0
    // entries older than the age limit may still be there (trimmed about once a minute, and
    // approximately): start at the oldest one kept
    const oldest = `${Date.now() - this.limits.historyMaxAgeMs}-0`
    const after = opts.after && opts.after !== '0' ? opts.after : '0-0'
    let start = compareOffsets(after, oldest) < 0 ? oldest : `(${after}`
    const key = this.history_(userId)
    const messages: Envelope[] = []
    let next = opts.after || '0'
    // The device filter runs here, after the read: a read of `limit` entries can hold none
    // for this device (a page of another device's pushes), and an empty page would read as
    // the end of the history to a client. So read on, a bounded batch at a time, until the
    // page is full or the stream ends. The first read asks for exactly `limit` (no filter, or
    // few filtered: one read); later ones for at least SCAN_COUNT, not one round trip per
    // missing message.
    let count = opts.limit
    for (;;) {
      const entries = await this.redis.xrange(key, start, '+', 'COUNT', count)
      for (const [offset, fields] of entries) {
        // a full page ends at its last message: what follows is read from there next time
        if (messages.length >= opts.limit) return { messages, next }
        const raw = fields[1]
        if (!raw) {
          next = offset
          continue
        }
        const env = JSON.parse(raw) as Envelope
        env.offset = offset
        if (visibleTo(env, opts.deviceId)) {
          // full by size: this one starts the next page
          if (messages.length > 0 && bytes + raw.length > maxBytes) return { messages, next }
          bytes += raw.length
          messages.push(env)
        }
        next = offset
      }
      if (entries.length < count || messages.length >= opts.limit) return { messages, next }
      start = `(${next}`
      count = Math.max(opts.limit, SCAN_COUNT)
    }
  }

  async receipt(r: ReceiptInput): Promise<ReceiptVerdict> {
    const code = await this.redis.heraldReceiptV3(
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
    const to = h.to
    if (!to) return undefined
    const recipients: Record<string, { offset: string; devices: DeviceStatuses }> = {}
    // a hash of a version before `r:` fields names its one recipient in `to` alone
    recipients[to] = { offset: h.offset ?? '', devices: {} }
    for (const [field, value] of Object.entries(h)) {
      if (field.startsWith('r:')) recipients[field.slice(2)] ??= { offset: value, devices: {} }
    }
    for (const [field, value] of Object.entries(h)) {
      if (!field.startsWith('d:')) continue
      const [status, ts] = value.split('|')
      const device = { status: status as DeviceStatus, ts: Number(ts) }
      const colon = field.indexOf(':', 2)
      if (colon < 0) {
        // d:<deviceId>, from a version before statuses per recipient: `to`'s, unless a
        // receipt since wrote the same device per recipient
        recipients[to]!.devices[field.slice(2)] ??= device
      } else {
        const r = recipients[field.slice(2, colon)]
        if (r) r.devices[field.slice(colon + 1)] = device
      }
    }
    return messageStatus({ id, from, to, ts: Number(h.ts ?? 0) }, recipients)
  }

  async close(): Promise<void> {}
}
