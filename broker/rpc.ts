/**
 * Requests to Herald over MQTT (`users/<me>/rpc/<name>`), answered on the caller's own reply
 * topic `users/<me>/rpc/reply/<deviceId>` with `{id, ...}` (QoS 1). Today: `history`, the
 * catch-up by offset the way Centrifugo recovers history.
 */
import { type Envelope, HISTORY_PAGE_BYTES } from '../services/core/envelope.js'
import type { Logger } from '../services/core/logger.js'
import type { MessageStore } from '../services/messaging/store.js'
import type { RpcRequest } from './hooks/pipeline.js'
import type { TrackedConn } from './tracker.js'

/** A reply is cut at about this many bytes (the rest comes with the next page). */
const REPLY_BYTES = HISTORY_PAGE_BYTES

export const replyTopic = (userId: string, deviceId: string) => `users/${userId}/rpc/reply/${deviceId}`

export interface RpcReply {
  id: string
  ok: boolean
  messages?: Envelope[]
  next?: string
  error?: string
}

export async function answerRpc(
  messages: MessageStore,
  conn: TrackedConn,
  req: RpcRequest,
  publish: (topic: string, reply: RpcReply) => void,
  log: Logger,
): Promise<number> {
  const topic = replyTopic(conn.userId, conn.deviceId)
  try {
    // the store stops reading at the reply's size: the cut below only trims what JSON adds
    const page = await messages.history(conn.userId, {
      after: req.after,
      limit: req.limit,
      deviceId: conn.deviceId,
      maxBytes: REPLY_BYTES,
    })
    let bytes = 0
    let cut = page.messages.length
    for (let i = 0; i < page.messages.length; i++) {
      bytes += Buffer.byteLength(JSON.stringify(page.messages[i]))
      if (bytes > REPLY_BYTES && i > 0) {
        cut = i
        break
      }
    }
    const kept = page.messages.slice(0, cut)
    const next = cut < page.messages.length ? kept.at(-1)!.offset! : page.next
    publish(topic, { id: req.id, ok: true, messages: kept, next })
    return bytes
  } catch (err) {
    log.warn({ clientId: conn.clientId, err: (err as Error).message }, 'history request failed')
    publish(topic, { id: req.id, ok: false, error: 'unavailable: history could not be read, try again' })
    return 0
  }
}
