/**
 * The presence service's outputs over an Aedes broker's bus: retained `presence/<userId>`
 * documents (stored in Aedes persistence, so every access node serves them) and commands on
 * `$SYS/herald/control/<nodeId>`.
 */
import type { Aedes } from 'aedes'
import { topics } from '../core/topics.js'
import type { ControlCommand } from '../events/types.js'
import type { PresencePublisher } from './service.js'
import type { PresenceDoc } from './types.js'

export function brokerPublisher(broker: Aedes): PresencePublisher {
  const send = (topic: string, body: unknown, retain: boolean) =>
    broker.publish(
      { cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(body)), qos: 0, retain, dup: false },
      () => {},
    )
  return {
    presence: (doc: PresenceDoc) => send(topics.presence(doc.userId), doc, true),
    control: (nodeId: string, cmd: ControlCommand) => send(topics.nodeControl(nodeId), cmd, false),
  }
}
