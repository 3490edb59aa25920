/**
 * The message store: stream-first messaging (DESIGN.md invariant 7). Every message is recorded
 * — de-duplicated on (from, id), stamped, appended to the recipient's bounded history stream —
 * in one atomic step keyed on the recipient, before its sender is acknowledged. Live delivery
 * and MQTT sessions are a cache on top; a device that missed anything catches up by offset.
 *
 * Two implementations (memory, Redis) pass one contract suite (test/messaging/contract.ts).
 */
import type { Envelope, ReceiptStatus } from '../core/envelope.js'

/** Offsets order messages in a history (stream ids); the event logs use the same order. */
export { compareOffsets } from '../core/envelope.js'

export interface MessageStoreLimits {
  /** Most messages kept per user history stream (approximate trim). */
  historyMaxLen: number
  /** Oldest message kept, ms. */
  historyMaxAgeMs: number
  /** How long (from, id) is remembered for de-duplication, ms. */
  dedupWindowMs: number
  /**
   * Memory mode: the most bytes of messages all histories may hold together (0 = no bound).
   * Past it a new message is refused as Redis refuses a write at maxmemory (`OOM ...`: not
   * acknowledged over MQTT, 503 over HTTP) until older ones age out.
   */
  historyMaxBytes?: number
}

export const DEFAULT_MESSAGE_LIMITS: MessageStoreLimits = {
  historyMaxLen: 10_000,
  historyMaxAgeMs: 7 * 24 * 3600_000,
  dedupWindowMs: 24 * 3600_000,
}

export interface RecordResult {
  /** Position in the recipient's history: strictly increasing per recipient. */
  offset: string
  /** (from, id) was recorded before: the earlier offset is returned, nothing new is stored. */
  duplicate: boolean
}

export interface HistoryPage {
  /** Envelopes with `offset`, oldest first. */
  messages: Envelope[]
  /** Pass as `after` to continue; equals `after` when there is nothing newer. */
  next: string
}

export type DeviceStatus = Exclude<ReceiptStatus, 'rejected'>

export type DeviceStatuses = Record<string, { status: DeviceStatus; ts: number }>

/** One recipient's view of a message. */
export interface RecipientStatus {
  /** Position in this recipient's history. */
  offset: string
  /** sent | delivered (to at least one of this recipient's devices) | read (on at least one). */
  status: 'sent' | DeviceStatus
  devices: DeviceStatuses
}

/**
 * The sender's view of a message (from, id). One id may go to several recipients (a batch
 * send): each is a message of its own in its own history, with receipts of its own, in
 * `recipients`. The top-level `to`, `offset`, `status` and `devices` are those of the
 * recipient recorded last — for a message to one user, that user (the shape before
 * `recipients` existed).
 */
export interface MessageStatus extends RecipientStatus {
  id: string
  from: string
  to: string
  ts: number
  recipients: Record<string, RecipientStatus>
}

/** A MessageStatus from what a store keeps: every recipient's offset and device statuses. */
export function messageStatus(
  m: { id: string; from: string; to: string; ts: number },
  recipients: Record<string, { offset: string; devices: DeviceStatuses }>,
): MessageStatus | undefined {
  const out: Record<string, RecipientStatus> = {}
  for (const [to, r] of Object.entries(recipients)) {
    out[to] = { offset: r.offset, status: overallStatus(r.devices), devices: r.devices }
  }
  const last = out[m.to]
  if (!last) return undefined
  return {
    id: m.id,
    from: m.from,
    to: m.to,
    offset: last.offset,
    ts: m.ts,
    status: last.status,
    devices: last.devices,
    recipients: out,
  }
}

/** A recipient's receipt for one message, as a store records it. */
export interface ReceiptInput {
  /** The message's sender and id. */
  from: string
  id: string
  /** The recipient, and the device of hers that sent it. */
  by: string
  deviceId: string
  status: DeviceStatus
  ts: number
}

export type ReceiptVerdict = 'recorded' | 'unchanged' | 'unknown-message' | 'not-recipient'

export interface MessageStore {
  /**
   * Records an envelope (with `from`, `to` and `ts` already stamped); `json` is its
   * historyJson, for a caller that needs it too (deliveredJson).
   */
  record(env: Envelope, json?: string): Promise<RecordResult>
  /**
   * Messages of `userId` after `after` (exclusive; '' or '0' = from the oldest kept), for one
   * device or all: up to `limit` of them, however many of another device's lie in between (a
   * short page is the end of the history) — and, with `maxBytes`, no more than about that many
   * bytes of their JSON (at least one message): the page ends early and `next` says where to go
   * on. A page of 500 messages of 64 KiB is 32 MB to parse and send; a request costs its sender
   * a few bytes.
   */
  history(
    userId: string,
    opts: { after?: string; limit: number; deviceId?: string; maxBytes?: number },
  ): Promise<HistoryPage>
  /**
   * A recipient's receipt: only a recipient of the message (any of several, for one id sent to
   * several users) may mark it; a device's status, kept per recipient, only moves forward.
   */
  receipt(r: ReceiptInput): Promise<ReceiptVerdict>
  status(from: string, id: string): Promise<MessageStatus | undefined>
  close(): Promise<void>
}

/** Orders stream offsets `<ms>-<seq>`. */

export const RANK: Record<DeviceStatus, number> = { delivered: 1, read: 2 }

export function overallStatus(devices: DeviceStatuses): RecipientStatus['status'] {
  let best: RecipientStatus['status'] = 'sent'
  for (const d of Object.values(devices)) {
    if (d.status === 'read') return 'read'
    best = 'delivered'
  }
  return best
}

/** The device-targeted filter of catch-up: a message for one device is history for that device only. */
export function visibleTo(env: { deviceId?: string | undefined }, deviceId: string | undefined): boolean {
  return env.deviceId === undefined || deviceId === undefined || env.deviceId === deviceId
}

/** An envelope as a history keeps it: JSON without its offset (stringify leaves out undefined). */
export function historyJson(env: Envelope): string {
  return JSON.stringify(env.offset === undefined ? env : { ...env, offset: undefined })
}

/**
 * The envelope as delivered: its historyJson with the offset it was recorded at — spliced in,
 * not a second JSON.stringify of the whole envelope per message.
 */
export function deliveredJson(historyJson: string, offset: string): string {
  return `${historyJson.slice(0, -1)},"offset":${JSON.stringify(offset)}}`
}
