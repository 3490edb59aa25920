/**
 * The access node's one hook pipeline, in order:
 *
 *   authenticate (CONNECT) -> authorize (ACL) -> validate -> stamp -> de-duplicate + record
 *
 * Aedes writes the PUBACK of a QoS 1 publish before it routes it, and `authorizePublish` is the
 * only hook it waits for: so this pipeline runs there, and a message is recorded before its
 * sender is acknowledged. A refused publish is still acknowledged (mqtt.js re-sends a refused
 * one after every reconnect, forever): it is re-routed to a topic that goes nowhere, logged,
 * counted, and answered with a `rejected` receipt.
 */
import type { Client, PublishPacket } from 'aedes'
import type { Envelope, Refusal, StatusInput } from '../../services/core/envelope.js'
import type { UserTopic } from '../../services/core/topics.js'
import type { TrackedConn } from '../tracker.js'

export interface PublishContext {
  client: Client
  conn: TrackedConn
  packet: PublishPacket
  target: UserTopic
  /** Set by validate for inbox and device topics; stamped and recorded by the later stages. */
  envelope?: Envelope
  /** Set by validate for the status topic. */
  status?: StatusInput
  /** Set by validate for receipts. */
  receipt?: { id: string; status: 'delivered' | 'read' }
  /** Set by validate for a request to Herald on `users/<me>/rpc/<name>`. */
  rpc?: RpcRequest
}

/** History catch-up over MQTT: `users/<me>/rpc/history` `{id, after?, limit?}`. */
export interface RpcRequest {
  name: 'history'
  /** The caller's request id, echoed in the reply. */
  id: string
  after?: string
  limit: number
}

export type Outcome =
  /** Let Aedes route the (possibly rewritten) packet. */
  | { action: 'route' }
  /** Herald consumed it (status updates, duplicates): acknowledge, route nowhere. */
  | { action: 'consume' }
  /** Acknowledge, route nowhere, answer with a `rejected` receipt. */
  | { action: 'refuse'; refusal: Refusal }
  /**
   * Could not record it now (storage unreachable): no PUBACK, the connection closes, and the
   * client re-sends the same packet after it reconnects. Only for transient failures.
   */
  | { action: 'fail'; error: Error }

export interface PublishStage {
  readonly name: 'authorize' | 'validate' | 'limit' | 'stamp' | 'record'
  /** Returns an outcome to stop the pipeline, or nothing to continue. */
  run(ctx: PublishContext): Outcome | undefined | Promise<Outcome | undefined>
}

export async function runPipeline(
  stages: readonly PublishStage[],
  ctx: PublishContext,
): Promise<Outcome & { stage?: string }> {
  for (const stage of stages) {
    // only the record stage is asynchronous: the others are not awaited (a microtask each)
    let outcome = stage.run(ctx)
    if (outcome instanceof Promise) outcome = await outcome
    if (outcome) return { stage: stage.name, ...outcome }
  }
  return ROUTE
}

const ROUTE: Outcome = Object.freeze({ action: 'route' })
