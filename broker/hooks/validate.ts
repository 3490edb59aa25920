/** Validate: the payload must be what its topic expects (envelope, status or receipt). */
import {
  type Envelope,
  parseEnvelope,
  parseHistoryRequest,
  parseReceipt,
  parseStatus,
} from '../../services/core/envelope.js'
import type { Outcome, PublishContext, PublishStage } from './pipeline.js'

export function validateStage(opts: { maxMessageBytes: number }): PublishStage {
  return {
    name: 'validate',
    run(ctx: PublishContext): Outcome | undefined {
      const { target, packet } = ctx
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
      switch (target.kind) {
        case 'inbox':
        case 'device': {
          const parsed = parseEnvelope(payload, opts.maxMessageBytes)
          if (!parsed.ok) return { action: 'refuse', refusal: parsed.refusal }
          // built as literals, not spread: a spread copy is a slow-mode object whose every
          // JSON.stringify (two per message) costs several times more (~5.5 vs ~2 µs a message)
          const { id, body, type } = parsed.value
          const from = ctx.conn.userId
          const to = target.userId
          const env: Envelope =
            type === undefined ? { id, body, from, to, ts: 0 } : { id, body, type, from, to, ts: 0 }
          if (target.kind === 'device') env.deviceId = target.deviceId
          ctx.envelope = env
          return undefined
        }
        case 'status': {
          const parsed = parseStatus(payload)
          if (!parsed.ok) return { action: 'refuse', refusal: parsed.refusal }
          ctx.status = parsed.value
          return undefined
        }
        case 'receipts': {
          const parsed = parseReceipt(payload)
          if (!parsed.ok) return { action: 'refuse', refusal: parsed.refusal }
          ctx.receipt = parsed.value
          return undefined
        }
        case 'rpc': {
          // only `rpc/history` is Herald's; anything else under rpc/ is the user's own traffic
          if (target.rest.length !== 1 || target.rest[0] !== 'history') return undefined
          const parsed = parseHistoryRequest(payload)
          if (!parsed.ok) return { action: 'refuse', refusal: parsed.refusal }
          ctx.rpc = { name: 'history', ...parsed.value }
          return undefined
        }
        default:
          return undefined
      }
    },
  }
}
