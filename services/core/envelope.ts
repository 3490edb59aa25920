/**
 * Message envelopes and receipts (CONTRACT.md). Parsing never throws: it returns a refusal
 * with a code that goes into the `rejected` receipt, the log line and the metric label.
 */
import { isIdentifier } from './identity.js'

export interface Envelope {
  id: string
  from: string
  to: string
  ts: number
  type?: string
  body: unknown
  /** Set for an envelope addressed to one device. */
  deviceId?: string
  /** Position in the recipient's history stream, once recorded. */
  offset?: string
}

export type ReceiptStatus = 'delivered' | 'read' | 'rejected'

export interface Receipt {
  id: string
  status: ReceiptStatus
  by: string
  ts: number
  reason?: string
  /** For delivered/read: the device that received or read it. */
  deviceId?: string
}

export type RefusalCode =
  | 'invalid-json'
  | 'too-deep'
  | 'not-an-object'
  | 'missing-id'
  | 'bad-id'
  | 'bad-type'
  | 'too-large'
  | 'not-allowed'
  | 'retain-not-allowed'
  | 'bad-status'
  | 'bad-receipt'
  | 'bad-request'
  | 'unavailable'
  | 'rate-limited'

export interface Refusal {
  code: RefusalCode
  message: string
  /** The refused envelope's id, when it had a readable one (so the receipt can name it). */
  id?: string
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; refusal: Refusal }

function refuse(code: RefusalCode, message: string, id?: unknown): { ok: false; refusal: Refusal } {
  const refusal: Refusal = { code, message }
  if (typeof id === 'string' && isIdentifier(id)) refusal.id = id
  return { ok: false, refusal }
}

/**
 * How deeply a message's JSON may nest. V8 parses any depth, but JSON.stringify recurses: a
 * 60 KB payload of 30,000 nested arrays parsed fine and then threw `Maximum call stack size
 * exceeded` wherever Herald serialised it again — the history record (the sender's publish
 * failed without a PUBACK, so it was re-sent forever), the node's event log (a will: the
 * process died). 64 levels is far more than any message needs.
 */
export const MAX_JSON_DEPTH = 64

/**
 * True when JSON text nests objects and arrays deeper than `max` (brackets inside strings do
 * not count). One pass over the text, before JSON.parse builds anything.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // a backslash: the next character is escaped
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return false
}

function parseObject(payload: Uint8Array, maxBytes: number): Parsed<Record<string, unknown>> {
  if (payload.byteLength > maxBytes)
    return refuse('too-large', `payload of ${payload.byteLength} bytes exceeds ${maxBytes}`)
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8')
  if (nestsDeeperThan(text, MAX_JSON_DEPTH))
    return refuse('too-deep', `payload nests deeper than ${MAX_JSON_DEPTH} levels`)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return refuse('invalid-json', 'payload is not valid JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return refuse('not-an-object', 'payload must be a JSON object')
  }
  return { ok: true, value: value as Record<string, unknown> }
}

/** What a sender may put in an envelope; `from`, `to` and `ts` are Herald's to stamp. */
export interface EnvelopeInput {
  id: string
  type?: string
  body: unknown
}

export function parseEnvelope(payload: Uint8Array, maxBytes: number): Parsed<EnvelopeInput> {
  const parsed = parseObject(payload, maxBytes)
  if (!parsed.ok) return parsed
  const o = parsed.value
  if (o.id === undefined || o.id === null || o.id === '') return refuse('missing-id', 'envelope has no id')
  if (!isIdentifier(o.id)) return refuse('bad-id', 'id must match [A-Za-z0-9._-]{1,64}')
  if (o.type !== undefined && (typeof o.type !== 'string' || o.type.length > 64)) {
    return refuse('bad-type', 'type must be a string of at most 64 characters', o.id)
  }
  const input: EnvelopeInput = { id: o.id, body: o.body ?? null }
  if (typeof o.type === 'string') input.type = o.type
  return { ok: true, value: input }
}

/**
 * The `id` of a payload refused before it is validated (the ACL refused its topic, or its
 * retain flag), so the `rejected` receipt can name it (docs/security.md): read as
 * parseEnvelope reads it — a JSON object within `maxBytes` and MAX_JSON_DEPTH — and only when
 * it is an identifier. Best effort: undefined for anything else, and it never throws.
 */
export function envelopeIdOf(payload: Uint8Array, maxBytes: number): string | undefined {
  try {
    const parsed = parseObject(payload, maxBytes)
    return parsed.ok && isIdentifier(parsed.value.id) ? parsed.value.id : undefined
  } catch {
    return undefined // a refusal must go out whatever the payload is
  }
}

export interface StatusInput {
  status: string | null
  meta?: Record<string, unknown>
}

export const MAX_STATUS_LENGTH = 32
export const MAX_META_BYTES = 1024

export function parseStatus(payload: Uint8Array): Parsed<StatusInput> {
  const parsed = parseObject(payload, 4096)
  if (!parsed.ok) return parsed
  const o = parsed.value
  if (
    o.status !== null &&
    (typeof o.status !== 'string' || o.status.length === 0 || o.status.length > MAX_STATUS_LENGTH)
  ) {
    return refuse('bad-status', `status must be a string of 1 to ${MAX_STATUS_LENGTH} characters, or null`)
  }
  const input: StatusInput = { status: o.status as string | null }
  if (o.meta !== undefined) {
    if (typeof o.meta !== 'object' || o.meta === null || Array.isArray(o.meta)) {
      return refuse('bad-status', 'meta must be an object')
    }
    if (Buffer.byteLength(JSON.stringify(o.meta)) > MAX_META_BYTES) {
      return refuse('bad-status', `meta must be at most ${MAX_META_BYTES} bytes of JSON`)
    }
    input.meta = o.meta as Record<string, unknown>
  }
  return { ok: true, value: input }
}

export interface ReceiptInput {
  id: string
  status: 'delivered' | 'read'
}

export function parseReceipt(payload: Uint8Array): Parsed<ReceiptInput> {
  const parsed = parseObject(payload, 4096)
  if (!parsed.ok) return parsed
  const o = parsed.value
  if (!isIdentifier(o.id)) return refuse('bad-receipt', 'receipt id must match [A-Za-z0-9._-]{1,64}')
  if (o.status !== 'delivered' && o.status !== 'read') {
    return refuse('bad-receipt', 'receipt status must be delivered or read', o.id)
  }
  return { ok: true, value: { id: o.id, status: o.status } }
}

export const HISTORY_PAGE_DEFAULT = 100
export const HISTORY_PAGE_MAX = 500
/**
 * A history page (HTTP or MQTT) holds about this many bytes at most, whatever its `limit`: 500
 * messages of 64 KiB would be 32 MB to parse, serialise and send per request.
 */
export const HISTORY_PAGE_BYTES = 1024 * 1024

export interface HistoryRequest {
  id: string
  after?: string
  limit: number
}

const OFFSET = /^\d{1,16}-\d{1,16}$/

export function isOffset(value: unknown): value is string {
  return typeof value === 'string' && (value === '0' || OFFSET.test(value))
}

/** Orders two offsets (stream ids `<ms>-<seq>`, or `0`). */
export function compareOffsets(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am - bm || as - bs
}

/** `{id, after?, limit?}` of a history catch-up request (MQTT `users/<me>/rpc/history`). */
export function parseHistoryRequest(payload: Uint8Array): Parsed<HistoryRequest> {
  const parsed = parseObject(payload, 4096)
  if (!parsed.ok) return parsed
  const o = parsed.value
  if (!isIdentifier(o.id)) return refuse('bad-request', 'request id must match [A-Za-z0-9._-]{1,64}')
  if (o.after !== undefined && !isOffset(o.after))
    return refuse('bad-request', 'after must be an offset like 1700000000000-0', o.id)
  const limit = o.limit === undefined ? HISTORY_PAGE_DEFAULT : o.limit
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > HISTORY_PAGE_MAX) {
    return refuse('bad-request', `limit must be an integer from 1 to ${HISTORY_PAGE_MAX}`, o.id)
  }
  const req: HistoryRequest = { id: o.id, limit }
  if (typeof o.after === 'string') req.after = o.after
  return { ok: true, value: req }
}
