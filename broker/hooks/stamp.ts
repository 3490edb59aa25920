/**
 * Stamp: `from`, `ts` (and `by` on receipts) come from the session, never from the client, so
 * they cannot be forged. The payload Aedes routes is rewritten with the stamped document: a
 * receipt's here, an envelope's by the record stage, once it knows the envelope's offset.
 */
import type { Receipt } from '../../services/core/envelope.js'
import type { PublishContext, PublishStage } from './pipeline.js'

export const stampStage: PublishStage = {
  name: 'stamp',
  run(ctx: PublishContext) {
    const now = Date.now()
    if (ctx.envelope) {
      ctx.envelope.from = ctx.conn.userId
      ctx.envelope.ts = now
    } else if (ctx.receipt) {
      const receipt: Receipt = {
        id: ctx.receipt.id,
        status: ctx.receipt.status,
        by: ctx.conn.userId,
        deviceId: ctx.conn.deviceId,
        ts: now,
      }
      ctx.packet.payload = Buffer.from(JSON.stringify(receipt))
    }
    return undefined
  },
}
