/** The embedded message store: the Redis store's semantics (scripts/record-n.lua) in memory. */
import type { Envelope } from '../core/envelope.js'
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
  RANK,
  type ReceiptInput,
  type ReceiptVerdict,
  type RecordResult,
  visibleTo,
} from './store.js'

/**
 * What the store keeps per message is kept small and flat — the envelope as its JSON string,
 * expiries read from the offset (`<ms>-<seq>`: recorded at that ms) — because an embedded
 * node holds up to historyMaxLen messages per user on its own heap, and every object there
 * is one more for the garbage collector to trace on every major collection.
 */
interface Stored {
  offset: string
  /** The envelope without its offset (JSON). */
  json: string
  at: number
  deviceId: string | undefined
}

interface StatusEntry {
  /** The recipient recorded last, and its offset (the entry expires from it). */
  to: string
  offset: string
  ts: number
  /**
   * The recipients recorded before `to` (one id sent to several users) -> their offsets;
   * created by the second one, so a message to one user costs no more objects than before.
   */
  earlier: Map<string, string> | undefined
  /** `<to>/<deviceId>` -> status (identifiers hold no `/`); created by the first receipt. */
  devices: DeviceStatuses | undefined
}

/**
 * One line of the message journal (services/messaging/journal.ts):
 *   m  a record as record() made it: offset, the envelope's history JSON
 *   r  a receipt that changed a device's status
 *   s, k, h  the state a compaction wrote: a status, a de-duplication key, a history entry
 *   o        after that state: the newest offset recorded when it was taken (the `m` entries
 *            that follow with an offset up to it are already in it)
 */
export type JournalEntry =
  | ['m', offset: string, json: string]
  | ['r', from: string, id: string, by: string, deviceId: string, status: DeviceStatus, ts: number]
  | [
      's',
      from: string,
      id: string,
      to: string,
      offset: string,
      ts: number,
      earlier: Array<[string, string]> | null,
      devices: DeviceStatuses | null,
    ]
  | ['k', to: string, from: string, id: string, offset: string]
  | ['h', to: string, offset: string, json: string]
  | ['o', offset: string]

/** What a de-duplication key or a status entry costs on the heap, about (held). */
const ENTRY_BYTES = 160

/** How often every history is cut to its bounds at most (sweep). */
const SWEEP_EVERY_MS = 60_000

/** The ms an offset `<ms>-<seq>` was recorded at. */
function offsetMs(offset: string): number {
  return Number(offset.slice(0, offset.indexOf('-')))
}

export class MemoryMessageStore implements MessageStore {
  private readonly histories = new Map<string, Stored[]>()
  /** (to, from, id) -> offset of the first recording. */
  private readonly dedup = new Map<string, string>()
  /** (from, id) -> the sender's view of the message. */
  private readonly statuses = new Map<string, StatusEntry>()
  private lastMs = 0
  private seq = 0
  /** The newest offset in the state a journal rewrite wrote (`s`, `k`, `h` entries), on replay. */
  private stateHigh = '0-0'
  private recorded = 0
  /** Bytes of message JSON in all histories (held, historyMaxBytes). */
  private bytes = 0
  private sweptAt = 0

  constructor(private readonly limits: MessageStoreLimits = DEFAULT_MESSAGE_LIMITS) {}

  async record(env: Envelope, json = historyJson(env)): Promise<RecordResult> {
    return this.recordNow(env, json, Date.now())
  }

  /** `offset`: a journaled record, replayed as it was made (it was no repeat when it was made). */
  private recordNow(env: Envelope, json: string, now: number, offset?: string): RecordResult {
    const key = `${env.to}\u0000${env.from}\u0000${env.id}`
    const seen = this.dedup.get(key)
    if (offset === undefined && seen !== undefined && this.live(seen, now))
      return { offset: seen, duplicate: true }
    if (offset === undefined) {
      // a new message (a replayed one was acknowledged: it always loads)
      const max = this.limits.historyMaxBytes ?? 0
      if (max > 0 && this.held() + json.length > max) {
        this.sweep(now)
        this.expire(now)
        if (this.held() + json.length > max) {
          throw new Error('OOM the message histories are full (HERALD_HISTORY_MAX_BYTES); retry later')
        }
      }
      offset = this.nextOffset(now)
    }
    let history = this.histories.get(env.to)
    if (!history) {
      history = []
      this.histories.set(env.to, history)
    }
    history.push({ offset, json, at: now, deviceId: env.deviceId })
    this.bytes += json.length
    this.trim(history, now)
    // delete first: a re-set key would keep its old place, and expire() relies on the maps
    // being in expiry order
    this.dedup.delete(key)
    this.dedup.set(key, offset)
    // the status is the sender's view of every recipient of this id: a new recipient joins it
    // (and renews its lifetime, as the Redis store's PEXPIRE does), it does not replace it
    const statusKey = `${env.from}\u0000${env.id}`
    const prior = this.statuses.get(statusKey)
    this.statuses.delete(statusKey)
    if (prior && this.live(prior.offset, now)) {
      if (prior.to !== env.to) {
        prior.earlier ??= new Map()
        prior.earlier.set(prior.to, prior.offset)
        prior.earlier.delete(env.to)
      }
      prior.to = env.to
      prior.offset = offset
      prior.ts = env.ts
      this.statuses.set(statusKey, prior)
    } else {
      this.statuses.set(statusKey, { to: env.to, offset, ts: env.ts, earlier: undefined, devices: undefined })
    }
    if (++this.recorded % 256 === 0) this.expire(now)
    return { offset, duplicate: false }
  }

  async history(
    userId: string,
    opts: { after?: string; limit: number; deviceId?: string; maxBytes?: number },
  ): Promise<HistoryPage> {
    const after = opts.after || '0'
    const out: Envelope[] = []
    let next = after
    const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY
    let bytes = 0
    const list = this.histories.get(userId) ?? []
    const minAt = Date.now() - this.limits.historyMaxAgeMs
    // the array may hold a little more than the limit (trim() cuts in batches): skip that part
    for (let i = Math.max(0, list.length - this.limits.historyMaxLen); i < list.length; i++) {
      const s = list[i]!
      if (s.at < minAt || compareOffsets(s.offset, after) <= 0) continue
      if (out.length >= opts.limit) break
      if (visibleTo(s, opts.deviceId)) {
        // full by size: this one starts the next page (read nothing more than the page holds)
        if (out.length > 0 && bytes + s.json.length > maxBytes) break
        bytes += s.json.length
      }
      next = s.offset
      if (!visibleTo(s, opts.deviceId)) continue
      const env = JSON.parse(s.json) as Envelope
      env.offset = s.offset
      out.push(env)
    }
    return { messages: out, next }
  }

  async receipt(r: ReceiptInput): Promise<ReceiptVerdict> {
    const st = this.statuses.get(`${r.from}\u0000${r.id}`)
    if (!st || !this.live(st.offset, Date.now())) return 'unknown-message'
    if (st.to !== r.by && !st.earlier?.has(r.by)) return 'not-recipient'
    const device = `${r.by}/${r.deviceId}`
    const cur = st.devices?.[device]
    if (cur && RANK[cur.status] >= RANK[r.status]) return 'unchanged'
    st.devices ??= {}
    st.devices[device] = { status: r.status, ts: r.ts }
    return 'recorded'
  }

  async status(from: string, id: string): Promise<MessageStatus | undefined> {
    const st = this.statuses.get(`${from}\u0000${id}`)
    if (!st || !this.live(st.offset, Date.now())) return undefined
    const recipients: Record<string, { offset: string; devices: DeviceStatuses }> = {}
    for (const [to, offset] of st.earlier ?? []) recipients[to] = { offset, devices: {} }
    recipients[st.to] = { offset: st.offset, devices: {} }
    for (const [device, v] of Object.entries(st.devices ?? {})) {
      const slash = device.indexOf('/')
      const r = recipients[device.slice(0, slash)]
      if (r) r.devices[device.slice(slash + 1)] = { ...v }
    }
    return messageStatus({ id, from, to: st.to, ts: st.ts }, recipients)
  }

  async close(): Promise<void> {}

  /**
   * The store's state as journal entries (services/messaging/journal.ts), in an order that
   * replay() rebuilds it from: statuses and de-duplication keys in their expiry order, then
   * each history. What has expired is left out.
   */
  *entries(): Generator<JournalEntry> {
    const now = Date.now()
    for (const [key, st] of this.statuses) {
      if (!this.live(st.offset, now)) continue
      const [from, id] = key.split('\u0000') as [string, string]
      yield ['s', from, id, st.to, st.offset, st.ts, st.earlier ? [...st.earlier] : null, st.devices ?? null]
    }
    for (const [key, offset] of this.dedup) {
      if (!this.live(offset, now)) continue
      const [to, from, id] = key.split('\u0000') as [string, string, string]
      yield ['k', to, from, id, offset]
    }
    const minAt = now - this.limits.historyMaxAgeMs
    for (const [to, list] of this.histories) {
      for (let i = Math.max(0, list.length - this.limits.historyMaxLen); i < list.length; i++) {
        const s = list[i]!
        if (s.at >= minAt) yield ['h', to, s.offset, s.json]
      }
    }
    if (this.lastMs > 0) yield ['o', `${this.lastMs}-${this.seq}`]
  }

  /**
   * Applies one journal entry: a record or a receipt as it was made (`m`, `r`), or a piece of
   * the state entries() wrote. Offsets are the recorded ones; new ones continue after them.
   */
  replay(e: JournalEntry): void {
    switch (e[0]) {
      case 'm': {
        const [, offset, json] = e
        // A record is replayed whatever the de-duplication window is now: it was a new message
        // when it was acknowledged (a repeat is never journaled), and a longer window at this
        // start must not turn it into a repeat of an older one. What a rewrite's state already
        // holds (recorded before the rewrite, written after it) is skipped: offsets only grow,
        // and the state ends with the newest offset of its instant (`o`).
        if (compareOffsets(offset, this.stateHigh) <= 0) return
        this.advanceTo(offset)
        this.recordNow(JSON.parse(json) as Envelope, json, offsetMs(offset), offset)
        return
      }
      case 'r': {
        const [, from, id, by, deviceId, status, ts] = e
        void this.receipt({ from, id, by, deviceId, status, ts })
        return
      }
      case 's': {
        const [, from, id, to, offset, ts, earlier, devices] = e
        this.advanceState(offset)
        this.statuses.set(`${from}\u0000${id}`, {
          to,
          offset,
          ts,
          earlier: earlier ? new Map(earlier) : undefined,
          devices: devices ?? undefined,
        })
        return
      }
      case 'k': {
        const [, to, from, id, offset] = e
        this.advanceState(offset)
        this.dedup.set(`${to}\u0000${from}\u0000${id}`, offset)
        return
      }
      case 'h': {
        const [, to, offset, json] = e
        this.advanceState(offset)
        let history = this.histories.get(to)
        if (!history) {
          history = []
          this.histories.set(to, history)
        }
        const env = JSON.parse(json) as Envelope
        history.push({ offset, json, at: offsetMs(offset), deviceId: env.deviceId })
        this.bytes += json.length
        return
      }
      case 'o':
        this.advanceState(e[1])
        return
    }
  }

  private advanceState(offset: string): void {
    this.advanceTo(offset)
    if (compareOffsets(offset, this.stateHigh) > 0) this.stateHigh = offset
  }

  /** New offsets come after a replayed one, whatever the clock says now. */
  private advanceTo(offset: string): void {
    const ms = offsetMs(offset)
    const seq = Number(offset.slice(offset.indexOf('-') + 1))
    if (ms > this.lastMs || (ms === this.lastMs && seq > this.seq)) {
      this.lastMs = ms
      this.seq = seq
    }
  }

  /** Whether a recording at `offset` is still inside the de-duplication window. */
  private live(offset: string, now: number): boolean {
    return offsetMs(offset) + this.limits.dedupWindowMs > now
  }

  private nextOffset(now: number): string {
    if (now > this.lastMs) {
      this.lastMs = now
      this.seq = 0
    } else {
      this.seq += 1
    }
    return `${this.lastMs}-${this.seq}`
  }

  /**
   * Bounds a history by length and age. Arrays shift in O(n), so the excess is cut in batches
   * (up to an eighth of the limit over it); history() never shows the excess.
   */
  private trim(history: Stored[], now: number): void {
    const max = this.limits.historyMaxLen
    const minAt = now - this.limits.historyMaxAgeMs
    if (history.length <= max + Math.max(64, max >> 3) && !(history[0] && history[0].at < minAt)) return
    this.cut(history, minAt)
  }

  /** Cuts a history to its bounds (length, then age before `minAt`); returns what is left. */
  private cut(history: Stored[], minAt: number): number {
    let cut = Math.max(0, history.length - this.limits.historyMaxLen)
    while (cut < history.length && history[cut]!.at < minAt) cut++
    for (let i = 0; i < cut; i++) this.bytes -= history[i]!.json.length
    if (cut > 0) history.splice(0, cut)
    return history.length
  }

  /**
   * About what the store holds, bytes: the messages' JSON, and a de-duplication key and a
   * status per message sent within the de-duplication window (which outlive their message in
   * a history trimmed by length: a flood of small messages fills those maps, not the histories).
   */
  private held(): number {
    return this.bytes + ENTRY_BYTES * (this.dedup.size + this.statuses.size)
  }

  /**
   * Every history cut to its bounds, the empty ones dropped: a history trims itself when its
   * user gets a message, and one that gets none would keep what aged out (at most once a
   * minute, and when the histories are full).
   */
  private sweep(now: number): void {
    this.sweptAt = now
    const minAt = now - this.limits.historyMaxAgeMs
    for (const [to, history] of this.histories) {
      if (this.cut(history, minAt) === 0) this.histories.delete(to)
    }
  }

  /** Both maps are in expiry order (the window is fixed, offsets only grow): stop at the first live entry. */
  private expire(now: number) {
    if (now - this.sweptAt >= SWEEP_EVERY_MS) this.sweep(now)
    for (const [k, offset] of this.dedup) {
      if (this.live(offset, now)) break
      this.dedup.delete(k)
    }
    for (const [k, v] of this.statuses) {
      if (this.live(v.offset, now)) break
      this.statuses.delete(k)
    }
  }
}
