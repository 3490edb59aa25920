/**
 * The topic tree of CONTRACT.md, built and parsed in one place.
 *
 *   users/<userId>/inbox              message envelopes to a user
 *   users/<userId>/devices/<deviceId> envelopes to one device
 *   users/<userId>/receipts           delivered / read / rejected receipts
 *   users/<userId>/status             a user's own status (consumed by Herald)
 *   users/<userId>/rpc/...            request/response topics (history catch-up)
 *   presence/<userId>                 retained presence document (Herald only)
 *   $SYS/<nodeId>/presence/<event>    lifecycle events, while subscribed (broker/lifecycle.ts)
 *   $SYS/herald/...                   Herald's control plane
 */
import { IDENTIFIER } from './identity.js'

export const topics = {
  inbox: (userId: string) => `users/${userId}/inbox`,
  device: (userId: string, deviceId: string) => `users/${userId}/devices/${deviceId}`,
  receipts: (userId: string) => `users/${userId}/receipts`,
  status: (userId: string) => `users/${userId}/status`,
  presence: (userId: string) => `presence/${userId}`,
  nodeEvent: (nodeId: string, kind: string) => `$SYS/${nodeId}/presence/${kind}`,
  presenceService: '$SYS/herald/presence-service',
  /**
   * Presence documents in bulk, as one bus message: `[userId, document JSON, ...]`. Every
   * access node delivers each to its own `presence/<userId>` subscribers, as if published there.
   */
  presenceBatch: '$SYS/herald/presence-batch',
  /** Control commands to access nodes (kick, resync); `*` addresses every node. */
  nodeControl: (nodeId: string) => `$SYS/herald/control/${nodeId}`,
  /** Topics that go nowhere: refused or duplicate publishes are acknowledged and re-routed here. */
  void: '$SYS/herald/void',
} as const

export type UserTopic =
  | { kind: 'inbox'; userId: string }
  | { kind: 'device'; userId: string; deviceId: string }
  | { kind: 'receipts'; userId: string }
  | { kind: 'status'; userId: string }
  | { kind: 'rpc'; userId: string; rest: string[] }
  | { kind: 'presence'; userId: string }
  | { kind: 'other' }

/** Classifies a concrete (wildcard-free) topic. */
export function parseTopic(topic: string): UserTopic {
  const parts = topic.split('/')
  if (parts[0] === 'presence' && parts.length === 2 && IDENTIFIER.test(parts[1]!)) {
    return { kind: 'presence', userId: parts[1]! }
  }
  if (parts[0] !== 'users' || parts.length < 3 || !IDENTIFIER.test(parts[1]!)) return { kind: 'other' }
  const userId = parts[1]!
  const leaf = parts[2]
  if (parts.length === 3) {
    if (leaf === 'inbox' || leaf === 'receipts' || leaf === 'status') return { kind: leaf, userId }
    return { kind: 'other' }
  }
  if (leaf === 'devices' && parts.length === 4 && IDENTIFIER.test(parts[3]!)) {
    return { kind: 'device', userId, deviceId: parts[3]! }
  }
  if (leaf === 'rpc') return { kind: 'rpc', userId, rest: parts.slice(3) }
  return { kind: 'other' }
}

export function hasWildcard(topic: string): boolean {
  return topic.includes('+') || topic.includes('#')
}

/** MQTT topic filter matching (`+` one level, `#` the rest), for the conformance deny list and lifecycle subscriptions. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}
