/** The embedded message store: the Redis store's semantics (scripts/record-2.lua) in memory. */
import type { Envelope } from '../core/envelope.js'
import {
  compareOffsets,
  DEFAULT_MESSAGE_LIMITS,
  type DeviceStatus,
  type HistoryPage,
  type MessageStatus,
  type MessageStore,
  type MessageStoreLimits,
  overallStatus,
  RANK,
  type ReceiptVerdict,
  type RecordResult,
  visibleTo,
} from './store.js'

interface Stored {
  offset: string
  env: Envelope
  at: number
}

export class MemoryMessageStore implements MessageStore {
  private readonly histories = new Map<string, Stored[]>()
  private readonly dedup = new Map<string, { offset: string; expires: number }>()
  private readonly statuses = new Map<string, Omit<MessageStatus, 'status'> & { expires: number }>()
  private lastMs = 0
  private seq = 0

  constructor(private readonly limits: MessageStoreLimits = DEFAULT_MESSAGE_LIMITS) {}

  async record(env: Envelope): Promise<RecordResult> {
    const now = Date.now()
    const key = `${env.to}\u0000${env.from}\u0000${env.id}`
    const seen = this.dedup.get(key)
    if (seen && seen.expires > now) return { offset: seen.offset, duplicate: true }
    const offset = this.nextOffset(now)
    let history = this.histories.get(env.to)
    if (!history) {
      history = []
      this.histories.set(env.to, history)
    }
    const { offset: _o, ...clean } = env
    history.push({ offset, env: clean, at: now })
    const minAt = now - this.limits.historyMaxAgeMs
    while (history.length > this.limits.historyMaxLen || (history[0] && history[0].at < minAt))
      history.shift()
    this.dedup.set(key, { offset, expires: now + this.limits.dedupWindowMs })
    this.statuses.set(`${env.from}\u0000${env.id}`, {
      id: env.id,
      from: env.from,
      to: env.to,
      offset,
      ts: env.ts,
      devices: {},
      expires: now + this.limits.dedupWindowMs,
    })
    if (this.dedup.size % 1024 === 0) this.expire(now)
    return { offset, duplicate: false }
  }

  async history(
    userId: string,
    opts: { after?: string; limit: number; deviceId?: string },
  ): Promise<HistoryPage> {
    const after = opts.after || '0'
    const out: Envelope[] = []
    let next = after
    for (const s of this.histories.get(userId) ?? []) {
      if (compareOffsets(s.offset, after) <= 0) continue
      if (out.length >= opts.limit) break
      next = s.offset
      if (visibleTo(s.env, opts.deviceId)) out.push({ ...s.env, offset: s.offset })
    }
    return { messages: out, next }
  }

  async receipt(r: {
    from: string
    id: string
    by: string
    deviceId: string
    status: DeviceStatus
    ts: number
  }): Promise<ReceiptVerdict> {
    const st = this.statuses.get(`${r.from}\u0000${r.id}`)
    if (!st || st.expires < Date.now()) return 'unknown-message'
    if (st.to !== r.by) return 'not-recipient'
    const cur = st.devices[r.deviceId]
    if (cur && RANK[cur.status] >= RANK[r.status]) return 'unchanged'
    st.devices[r.deviceId] = { status: r.status, ts: r.ts }
    return 'recorded'
  }

  async status(from: string, id: string): Promise<MessageStatus | undefined> {
    const st = this.statuses.get(`${from}\u0000${id}`)
    if (!st || st.expires < Date.now()) return undefined
    const { expires: _e, ...rest } = st
    return { ...rest, devices: { ...rest.devices }, status: overallStatus(rest.devices) }
  }

  async close(): Promise<void> {}

  private nextOffset(now: number): string {
    if (now > this.lastMs) {
      this.lastMs = now
      this.seq = 0
    } else {
      this.seq += 1
    }
    return `${this.lastMs}-${this.seq}`
  }

  private expire(now: number) {
    for (const [k, v] of this.dedup) if (v.expires <= now) this.dedup.delete(k)
    for (const [k, v] of this.statuses) if (v.expires <= now) this.statuses.delete(k)
  }
}
