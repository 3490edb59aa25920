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
  internals(client).duplicates = new Proxy(Object.create(null) as Record<string, number>, {
    set: () => true,
    get: () => undefined,
  })
}
