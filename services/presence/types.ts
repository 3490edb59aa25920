/**
 * The presence model shared by access nodes, the presence service and the stores.
 *
 * A connection is identified by its fence token `(nodeId, nodeEpoch, connSeq)`: counters, not
 * clocks. A user is online while at least one connection is live; watchers see user-level edges.
 */
export type OfflineReason =
  | 'logout'
  | 'keepalive-timeout'
  | 'connection-lost'
  | 'kicked'
  | 'node-shutdown'
  | 'node-lost'

/** Why one connection ended. `takeover` replaces a connection and is never an offline edge. */
export type DisconnectReason = OfflineReason | 'takeover'

export const OFFLINE_REASONS: readonly OfflineReason[] = [
  'logout',
  'keepalive-timeout',
  'connection-lost',
  'kicked',
  'node-shutdown',
  'node-lost',
]

export type Transport = 'tcp' | 'ws' | 'tls' | 'wss'

/** A will, validated and ready to send as a message from its user when its connection dies. */
export interface StoredWill {
  userId: string
  clientId: string
  to: string
  deviceId?: string
  id: string
  type?: string
  body: unknown
}

export interface Fence {
  nodeId: string
  epoch: number
  connSeq: number
}

/** `nodeId:epoch:connSeq` — unique for the life of a cluster, never reused. */
export function fenceToken(f: Fence): string {
  return `${f.nodeId}:${f.epoch}:${f.connSeq}`
}

export function parseFenceToken(token: string): Fence | null {
  const last = token.lastIndexOf(':')
  const mid = token.lastIndexOf(':', last - 1)
  if (mid <= 0) return null
  const epoch = Number(token.slice(mid + 1, last))
  const connSeq = Number(token.slice(last + 1))
  if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(connSeq)) return null
  return { nodeId: token.slice(0, mid), epoch, connSeq }
}

/** One live connection, as the access node that holds it describes it. */
export interface ConnRecord extends Fence {
  /** Its will, validated and stamped (in events and snapshots only; stores keep wills apart). */
  will?: StoredWill
  token: string
  userId: string
  deviceId: string
  clientId: string
  transport: Transport
  remoteAddress: string
  connectedAt: number
}

/** The retained document on `presence/<userId>`; changes only on user-level edges and status changes. */
export interface PresenceDoc {
  userId: string
  online: boolean
  /** When the current state (online or offline) began, ms. 0 = never seen. */
  since: number
  /** Last time the user was seen connected, ms; survives offline. */
  lastSeen: number
  /** Why the user went offline (offline documents only). */
  reason?: OfflineReason
  status?: string
  meta?: Record<string, unknown>
}

export interface ConnDetail {
  /** The connection's fence token `nodeId:epoch:connSeq`. */
  connectionId: string
  clientId: string
  deviceId: string
  nodeId: string
  connectedAt: number
  lastActivity: number
  transport: Transport
  /**
   * The client's address. Left out when a user (role `user`) reads someone else's presence
   * over the HTTP API (docs/contract.md amendment 11); the stores always have it.
   */
  remoteAddress?: string
}

/** What the HTTP API answers for one user. */
export interface PresenceView extends PresenceDoc {
  connections: number
  devices: string[]
  connectionsDetail: ConnDetail[]
}

export function offlineDoc(userId: string): PresenceDoc {
  return { userId, online: false, since: 0, lastSeen: 0 }
}
