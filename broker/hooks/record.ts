/**
 * De-duplicate + record: the last stage, and the only one that touches durable storage.
 * - envelopes: recorded in the recipient's history (one atomic step) before the PUBACK; a
 *   repeat of (from, id) is acknowledged and delivered nowhere;
 * - receipts: only the message's recipient may send one, and a device's status only moves
 *   forward; then it is routed to the sender's `users/<sender>/receipts`;
 * - status updates become presence events, ordered with the user's connection events;
 * - requests to Herald (`users/<me>/rpc/history`) are answered, never routed.
 * A storage failure is not a refusal: no PUBACK, the client re-sends after reconnecting.
 */
import { deliveredJson, historyJson, type MessageStore } from '../../services/messaging/store.js'
import type { TrackedConn } from '../tracker.js'
import type { Outcome, PublishContext, PublishStage, RpcRequest } from './pipeline.js'

export interface RecordStageOptions {
  messages: MessageStore
  /** How long a record step keeps retrying an unreachable store before giving up (ms). */
  retryForMs?: number
  onStatus: (conn: TrackedConn, status: string | null, meta: Record<string, unknown> | undefined) => void
  onRpc: (conn: TrackedConn, req: RpcRequest) => void
}

export function recordStage(opts: RecordStageOptions): PublishStage {
  const { messages } = opts
  return {
    name: 'record',
    async run(ctx: PublishContext): Promise<Outcome | undefined> {
      try {
        if (ctx.status) {
          opts.onStatus(ctx.conn, ctx.status.status, ctx.status.meta)
          return { action: 'consume' }
        }
        if (ctx.rpc) {
          opts.onRpc(ctx.conn, ctx.rpc)
          return { action: 'consume' }
        }
        if (ctx.receipt && ctx.target.kind === 'receipts') {
          const verdict = await messages.receipt({
            from: ctx.target.userId,
            id: ctx.receipt.id,
            by: ctx.conn.userId,
            deviceId: ctx.conn.deviceId,
            status: ctx.receipt.status,
            ts: Date.now(),
          })
          if (verdict === 'recorded') return undefined
          if (verdict === 'unchanged') return { action: 'consume' }
          const message =
            verdict === 'not-recipient'
              ? 'only the recipient of a message may send its receipts'
              : 'no such message'
          return { action: 'refuse', refusal: { code: 'bad-receipt', message, id: ctx.receipt.id } }
        }
        if (!ctx.envelope) return undefined
        const envelope = ctx.envelope
        const json = historyJson(envelope)
        const result = await retrying(() => messages.record(envelope, json), opts.retryForMs ?? 5000)
        if (result.duplicate) return { action: 'consume' }
        envelope.offset = result.offset
        ctx.packet.payload = Buffer.from(deliveredJson(json, result.offset))
        return undefined
      } catch (err) {
        return { action: 'fail', error: new Error(`could not record: ${(err as Error).message}`) }
      }
    },
  }
}

/**
 * Retries a storage call with backoff for a while: a short Redis hiccup delays one PUBACK
 * instead of closing the connection.
 */
async function retrying<T>(fn: () => Promise<T>, forMs: number): Promise<T> {
  const deadline = Date.now() + forMs
  let wait = 50
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (Date.now() + wait > deadline) throw err
      await new Promise((r) => setTimeout(r, wait))
      wait = Math.min(wait * 2, 1000)
    }
  }
}
