/**
 * The few Aedes 1.2 internals Herald reads, typed in one place so an Aedes upgrade shows
 * every dependency at compile time. Each use is a measured sharp edge (DESIGN.md).
 */
import type { Aedes, Client } from 'aedes'

export interface ClientInternals {
  /** Set when the client sent DISCONNECT ([MQTT-3.14.4-3]). */
  _disconnected: boolean
  /** Per origin broker, the counter of the last packet delivered (Aedes #994). */
  duplicates: Record<string, number>
  /** Keepalive in ms * 1.5, -1 when off. */
  _keepaliveInterval: number
}

export interface BrokerInternals {
  clients: Record<string, Client>
}

export function internals(client: Client): ClientInternals {
  return client as unknown as ClientInternals
}

export function brokerClients(broker: Aedes): Record<string, Client> {
  return (broker as unknown as BrokerInternals).clients
}

/**
 * Aedes #994: the per-client `duplicates` map drops a QoS 1 packet that a QoS 0 packet from the
 * same origin broker overtook. Herald de-duplicates at the application level (by (from, id)),
 * so the map is replaced by one that never remembers.
 */
export function neutraliseDuplicates(client: Client): void {
  internals(client).duplicates = FORGETFUL
}

/** Stateless, so one for every client (a Proxy, its target and handler per client cost ~0.3 KiB). */
const FORGETFUL = new Proxy(Object.create(null) as Record<string, number>, {
  set: () => true,
  get: () => undefined,
})

type Deliver = (packet: unknown, cb: () => void) => void

interface DeliveryInternals {
  deliver0: Deliver
  deliverQoS: Deliver
  connackSent: boolean
}

/**
 * [MQTT-3.2.0-1]: the first packet a server sends is the CONNACK. Aedes restores a persistent
 * session's subscriptions before it writes the CONNACK, and a message routed in between was
 * written at once: the client got a PUBLISH first. mqtt.js then waits for a PUBACK it cannot
 * send yet, never reads the CONNACK behind it, and times out (measured: 2 of 6 runs of a
 * session resuming right after a message to it).
 *
 * Installed before the CONNECT is handled (the restored subscriptions take `deliver0` and
 * `deliverQoS` as they are then), this drops what would be written before the CONNACK. Only a
 * restored subscription can match that early, and a QoS 1/2 message to it is already in the
 * session's queue (the origin node enqueues before it routes; past the queue's cap, in the
 * history the device catches up from), which Aedes sends right after the CONNACK. A QoS 0
 * message in that window (a few ms) is lost as if it came while the session was offline.
 * Holding them instead and sending them after the CONNACK raced that queue: measured, 2 of 12
 * runs lost the queued messages before the held one.
 */
export function dropDeliveriesBeforeConnack(client: Client, dropped: () => void): void {
  const c = client as unknown as DeliveryInternals
  const gate =
    (deliver: Deliver): Deliver =>
    (packet, cb) => {
      if (c.connackSent) return deliver(packet, cb)
      dropped()
      setImmediate(cb)
    }
  c.deliver0 = gate(c.deliver0)
  c.deliverQoS = gate(c.deliverQoS)
}
