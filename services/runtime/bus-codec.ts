/**
 * The cluster bus's wire format. mqemitter-redis wraps every message in `{id, msg}` and encodes
 * it with msgpack-lite: ~2.4 µs to encode a QoS 1 envelope's packet (with the pooled buffers of
 * msgpack-buffers.ts) and ~5 µs to decode it, in every process that receives it — about a
 * tenth of a QoS 1 message's CPU in Herald. Most of it is walking the payload and the packet's
 * fields byte by byte. Here the packet's fields (strings, numbers, booleans) travel as a short
 * JSON header and the payload as raw bytes behind it: 2.5 µs for both ends.
 *
 *   0x01 | header length (u32 BE) | JSON [id, fields without the payload, payload kind] | payload
 *
 * A packet with anything else among its fields (MQTT 5 properties, a Buffer) goes as
 * mqemitter-redis always sent it, and both formats are read: a message's first byte tells
 * them apart (msgpack-lite's `{id, msg}` starts with 0x82, a map of two); any other first
 * byte (a later format) is refused with a log line, never guessed at. Nodes that run this
 * read what stock mqemitter-redis nodes send; a stock node cannot read this format, so every
 * node of a cluster runs the same Herald.
 *
 * mqemitter-redis has no codec option: its `emit` and its subscriber's message handler are
 * replaced on the instance, keeping what they do (the id that drops a message delivered twice
 * — a node subscribed to a topic and to a pattern that matches it — and the ignored topics).
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'

const FORMAT = 0x01
/** msgpack's map of two entries: mqemitter-redis's `{id, msg}`. */
const STOCK = 0x82
const PAYLOAD_BUFFER = 0
const PAYLOAD_STRING = 1
const PAYLOAD_NONE = 2

/** msgpack-lite's two calls, as mqemitter-redis uses them. */
export interface Msgpack {
  encode(value: unknown): Buffer
  decode(buf: Buffer): unknown
}

/** A packet on the bus (an Aedes publish packet, or anything Aedes emits). */
export interface BusPacket {
  topic: string
  payload?: unknown
  [field: string]: unknown
}

interface Wrapped {
  id: string
  msg: BusPacket
}

/** The parts of a mqemitter-redis instance the codec works with (7.x). */
interface MqemitterRedisInternals {
  subConn: Redis
  pubConn: Redis
  closed?: boolean
  _ignoredTopicsSet: Set<string>
  _cache: { get(id: string): unknown; set(id: string, v: boolean): void }
  _emit(msg: BusPacket): void
  _onError(err?: Error): void
  emit(msg: BusPacket, done?: (err?: Error) => void): void
}

let msgpack: Msgpack | undefined
/** msgpack-lite as mqemitter-redis loads it (the format of packets this codec does not take). */
function stockCodec(): Msgpack {
  if (!msgpack) {
    const require = createRequire(import.meta.url)
    msgpack = createRequire(require.resolve('mqemitter-redis'))('msgpack-lite') as Msgpack
  }
  return msgpack
}

/** Fields JSON carries exactly: the packet goes in this format only when all of them are. */
function plainFields(msg: BusPacket): boolean {
  for (const key in msg) {
    if (key === 'payload') continue
    const v = msg[key]
    const t = typeof v
    if (t === 'string' || t === 'boolean' || t === 'undefined' || v === null) continue
    if (t === 'number' && Number.isFinite(v)) continue
    return false
  }
  return true
}

export function encodeBusMessage(id: string, msg: BusPacket): Buffer {
  const payload = msg.payload
  const kind = Buffer.isBuffer(payload)
    ? PAYLOAD_BUFFER
    : typeof payload === 'string'
      ? PAYLOAD_STRING
      : payload === undefined
        ? PAYLOAD_NONE
        : -1
  if (kind === -1 || !plainFields(msg)) return stockCodec().encode({ id, msg })
  const { payload: _p, ...fields } = msg
  const head = JSON.stringify([id, fields, kind])
  const headLength = Buffer.byteLength(head)
  const payloadLength =
    kind === PAYLOAD_BUFFER
      ? (payload as Buffer).length
      : kind === PAYLOAD_STRING
        ? Buffer.byteLength(payload as string)
        : 0
  const out = Buffer.allocUnsafe(5 + headLength + payloadLength)
  out[0] = FORMAT
  out.writeUInt32BE(headLength, 1)
  out.write(head, 5)
  if (kind === PAYLOAD_BUFFER) (payload as Buffer).copy(out, 5 + headLength)
  else if (kind === PAYLOAD_STRING) out.write(payload as string, 5 + headLength)
  return out
}

/** Reads either format; throws on bytes that are neither (a later format among them). */
export function decodeBusMessage(buf: Buffer): Wrapped {
  const wrapped = buf[0] === STOCK ? (stockCodec().decode(buf) as Wrapped) : decodeCompact(buf)
  if (typeof wrapped?.msg?.topic !== 'string') throw new Error('a bus message without a packet')
  return wrapped
}

function decodeCompact(buf: Buffer): Wrapped {
  if (buf[0] !== FORMAT) throw new Error(`bus message in an unknown format (first byte ${buf[0]})`)
  const headLength = buf.readUInt32BE(1)
  const [id, msg, kind] = JSON.parse(buf.toString('utf8', 5, 5 + headLength)) as [string, BusPacket, number]
  const body = buf.subarray(5 + headLength)
  if (kind === PAYLOAD_BUFFER) msg.payload = body
  else if (kind === PAYLOAD_STRING) msg.payload = body.toString('utf8')
  return { id, msg }
}

/**
 * Puts the codec on a mqemitter-redis instance (before anything subscribes or publishes).
 * Returns false, changing nothing, when the instance is not laid out as this expects.
 */
export function compactBusCodec(instance: object, onError: (err: Error) => void): boolean {
  const mq = instance as MqemitterRedisInternals
  if (
    !mq.subConn ||
    !mq.pubConn ||
    !(mq._ignoredTopicsSet instanceof Set) ||
    typeof mq._cache?.get !== 'function' ||
    typeof mq._emit !== 'function' ||
    mq.subConn.listenerCount('messageBuffer') !== 1 ||
    mq.subConn.listenerCount('pmessageBuffer') !== 1
  )
    return false
  // unique across processes for the life of an id in the cache (a minute)
  const prefix = randomBytes(6).toString('base64url')
  let counter = 0
  mq.emit = (msg, done) => {
    const cb = done ?? ((err?: Error) => mq._onError(err))
    if (mq.closed) {
      cb(new Error('mqemitter-redis is closed'))
      return
    }
    const id = prefix + (++counter).toString(36)
    mq.pubConn.publish(msg.topic, encodeBusMessage(id, msg)).then(
      () => cb(),
      (err: Error) => cb(err),
    )
  }
  const handler = (channel: Buffer, message: Buffer) => {
    if (mq._ignoredTopicsSet.has(channel.toString('utf8'))) return
    let packet: Wrapped
    try {
      packet = decodeBusMessage(message)
    } catch (err) {
      onError(err as Error)
      return
    }
    if (!mq._cache.get(packet.id)) mq._emit(packet.msg)
    mq._cache.set(packet.id, true)
  }
  mq.subConn.removeAllListeners('messageBuffer')
  mq.subConn.removeAllListeners('pmessageBuffer')
  mq.subConn.on('messageBuffer', handler)
  mq.subConn.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) =>
    handler(channel, message),
  )
  return true
}
