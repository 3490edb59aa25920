/** Pieces both stores share: how a presence view is assembled, and tombstone bounds. */
import type { ConnRecord, PresenceDoc, PresenceView } from './types.js'

/** A disconnect for a token the store has not seen leaves a tombstone, so a late connect is ignored. */
export const TOMBSTONE_TTL_MS = 10 * 60_000
export const TOMBSTONE_LIMIT = 64

/** Last activity of live connections, when the caller knows it (the access node keeps it in memory). */
export type ActivityLookup = (token: string) => number | undefined

export function buildView(doc: PresenceDoc, conns: ConnRecord[], activity?: ActivityLookup): PresenceView {
  const sorted = [...conns].sort((a, b) => a.connectedAt - b.connectedAt)
  const devices = [...new Set(sorted.map((c) => c.deviceId))]
  return {
    ...doc,
    connections: sorted.length,
    devices,
    connectionsDetail: sorted.map((c) => ({
      connectionId: c.token,
      clientId: c.clientId,
      deviceId: c.deviceId,
      nodeId: c.nodeId,
      connectedAt: c.connectedAt,
      lastActivity: activity?.(c.token) ?? c.connectedAt,
      transport: c.transport,
      remoteAddress: c.remoteAddress,
    })),
  }
}

/** Has this document ever been published? (A user never seen online has none.) */
export function everSeen(doc: PresenceDoc): boolean {
  return doc.online || doc.since > 0
}

/** Overlays live activity (known to the process holding the connections) on a view. */
export function withActivity(view: PresenceView, activity: ActivityLookup | undefined): PresenceView {
  if (!activity) return view
  return {
    ...view,
    connectionsDetail: view.connectionsDetail.map((d) => ({
      ...d,
      lastActivity: activity(d.connectionId) ?? d.lastActivity,
    })),
  }
}
