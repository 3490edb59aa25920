/**
 * Messages from back ends (HTTP API): recorded exactly like an MQTT publish — de-duplicated,
 * stamped, appended to the recipient's history — and only then published on the bus (QoS 1) to
 * the recipient's inbox or one device, where live sessions and persistent sessions pick it up.
 */
import { randomBytes } from 'node:crypto'
import type { Envelope } from '../core/envelope.js'
import { topics } from '../core/topics.js'
import { deliveredJson, historyJson, type MessageStore } from './store.js'

export interface OutgoingMessage {
  id?: string
  type?: string
  body: unknown
  deviceId?: string
}

export interface SendResult {
  to: string
  id: string
  offset: string
  duplicate: boolean
}

export type BusPublish = (topic: string, payload: Buffer) => void

export class MessageSender {
  constructor(
    private readonly store: MessageStore,
    private readonly publish: BusPublish,
  ) {}

  async send(from: string, to: string, msg: OutgoingMessage): Promise<SendResult> {
    const env: Envelope = { id: msg.id ?? newMessageId(), from, to, ts: Date.now(), body: msg.body ?? null }
    if (msg.type !== undefined) env.type = msg.type
    if (msg.deviceId !== undefined) env.deviceId = msg.deviceId
    const json = historyJson(env)
    const result = await this.store.record(env, json)
    if (!result.duplicate) {
      env.offset = result.offset
      const topic = msg.deviceId === undefined ? topics.inbox(to) : topics.device(to, msg.deviceId)
      this.publish(topic, Buffer.from(deliveredJson(json, result.offset)))
    }
    return { to, id: env.id, offset: result.offset, duplicate: result.duplicate }
  }
}

export function newMessageId(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`
}
