/**
 * The truth about who is online, kept on the client side: a client counts as live when it
 * still completes a PUBLISH/PUBACK round trip — never by asking Herald's own tracker.
 */
import type { MqttClient } from 'mqtt'

export async function roundTrips(client: MqttClient, userId: string, timeoutMs = 3000): Promise<boolean> {
  if (!client.connected) return false
  try {
    await Promise.race([
      client.publishAsync(`users/${userId}/rpc/ping`, '{}', { qos: 1 }),
      new Promise((_r, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs)),
    ])
    return true
  } catch {
    return false
  }
}

export interface TrackedClient {
  client: MqttClient
  userId: string
  deviceId: string
}

/** The set of clientIds that really are connected now. */
export async function liveSet(clients: TrackedClient[]): Promise<Set<string>> {
  const results = await Promise.all(clients.map((c) => roundTrips(c.client, c.userId)))
  return new Set(clients.filter((_c, i) => results[i]).map((c) => `${c.userId}/${c.deviceId}`))
}
