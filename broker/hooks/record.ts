/**
 * De-duplicate + record: the last stage, and the only one that may touch durable storage.
 * Status updates become presence events (ordered with the user's connection events).
 * Envelopes go to the MessageRecorder; the messaging issue supplies the durable one.
 */
import type { Envelope } from '../../services/core/envelope.js'
import type { TrackedConn } from '../tracker.js'
import type { Outcome, PublishContext, PublishStage } from './pipeline.js'

export interface RecordResult {
  /** Position in the recipient's history stream. */
  offset: string
  /** The (from, id) pair was recorded before: acknowledge, deliver nothing new. */
  duplicate: boolean
}

/** Records an envelope durably before its sender is acknowledged. */
export interface MessageRecorder {
  record(envelope: Envelope): Promise<RecordResult>
}

/**
 * Foundation stub: records nothing and never reports a duplicate. The messaging issue replaces
 * it with the stream-first recorder (Lua script keyed on the recipient).
 */
export const passThroughRecorder: MessageRecorder = {
  async record() {
    return { offset: '', duplicate: false }
  },
}

export function recordStage(opts: {
  recorder: MessageRecorder
  onStatus: (conn: TrackedConn, status: string | null, meta: Record<string, unknown> | undefined) => void
}): PublishStage {
  return {
    name: 'record',
    async run(ctx: PublishContext): Promise<Outcome | undefined> {
      if (ctx.status) {
        opts.onStatus(ctx.conn, ctx.status.status, ctx.status.meta)
        return { action: 'consume' }
      }
      if (!ctx.envelope) return undefined
      let result: RecordResult
      try {
        result = await opts.recorder.record(ctx.envelope)
      } catch (err) {
        return { action: 'fail', error: new Error(`could not record message: ${(err as Error).message}`) }
      }
      if (result.duplicate) return { action: 'consume' }
      if (result.offset) {
        ctx.envelope.offset = result.offset
        ctx.packet.payload = Buffer.from(JSON.stringify(ctx.envelope))
      }
      return undefined
    },
  }
}
