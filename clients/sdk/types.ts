/** The documents Herald sends and the SDK's options and events (CONTRACT.md, docs/messaging.md). */
import type { IClientOptions } from 'mqtt'

/** The retained presence document on `presence/<userId>`; changes only on user-level edges and status changes. */
export interface PresenceDoc {
  userId: string
  online: boolean
  /** When the current state (online or offline) began, ms since the epoch; 0 = never seen. */
  since: number
  /** Last time the user was seen connected, ms; survives going offline. */
  lastSeen: number
  /** Why the user went offline: `logout`, `keepalive-timeout`, `connection-lost`, `kicked`, … */
  reason?: string
  /** The user's own status (`available`, `away`, `busy` or any string ≤ 32); cleared on offline. */
  status?: string
  meta?: Record<string, unknown>
}

/** One connection of a user, as the HTTP API describes it. */
export interface ConnectionDetail {
  clientId: string
  deviceId?: string
  nodeId: string
  connectedAt: number
  lastActivity?: number
  transport: string
  /** Left out when a user reads someone else's presence (services, admins and the user herself get it). */
  remoteAddress?: string
}

/** The presence document plus the live connections (`query()`, `GET /v1/presence/<userId>`). */
export interface PresenceView extends PresenceDoc {
  connections: number
  devices: string[]
  connectionsDetail: ConnectionDetail[]
}

/** A message as Herald delivers it: `from` and `ts` stamped by Herald, `offset` in the recipient's history. */
export interface Message<B = unknown> {
  id: string
  from: string
  to: string
  ts: number
  type?: string
  body: B
  /** Set when the message was addressed to one device of the recipient. */
  deviceId?: string
  offset?: string
}

export type ReceiptStatus = 'delivered' | 'read' | 'rejected'

/** `users/<me>/receipts`: a recipient's device got or read a message, or Herald refused one of mine. */
export interface Receipt {
  id: string
  status: ReceiptStatus
  /** The recipient (delivered/read) or `herald` (rejected). */
  by: string
  ts: number
  /** For `rejected`: `<code>: <explanation>`. */
  reason?: string
  /** For delivered/read: the recipient's device. */
  deviceId?: string
}

/** What `send()` resolves with: Herald recorded the message under this id, at this offset. */
export interface SendResult {
  id: string
  to: string
  /**
   * Position in the recipient's history. Known when the client has `httpUrl` (the SDK reads the
   * message's status right after Herald acknowledged it); `undefined` otherwise.
   */
  offset?: string
}

/** One page of history (`history()`); continue with `after = next`. */
export interface HistoryPage {
  messages: Message[]
  next?: string
}

/** The SDK's events and their arguments. */
export interface HeraldEvents {
  /** A watched user came online (also the first state heard when it is online). */
  online: [doc: PresenceDoc]
  /** A watched user went offline (also the first state heard when it is offline). */
  offline: [doc: PresenceDoc]
  /** A watched user's status changed while the online/offline state stayed. */
  status: [doc: PresenceDoc]
  /** A message to me, exactly once per (from, id), live or caught up. */
  message: [message: Message]
  /** A receipt for one of my messages (delivered, read, rejected). */
  receipt: [receipt: Receipt]
  /** The connection dropped; the SDK reconnects by itself (`reconnect` follows). */
  disconnect: []
  /** The connection is back: subscriptions restored, presence re-read, history caught up. */
  reconnect: []
  /** Something went wrong in the background (a reconnect refused, a receipt not sent). Never thrown. */
  error: [error: Error]
}

/** Options of `connect()`; only `url`, `userId` and `token` are required. */
export interface ConnectOptions {
  /** `mqtt://host:1883`, `mqtts://host:8883`, `ws://host:8083/mqtt` or `wss://host/mqtt`. */
  url: string
  /** The user this client is; must be the token's `sub`. */
  userId: string
  /** A JWT for `userId` (`herald token <userId>`); `setToken()` replaces it for later reconnects. */
  token: string
  /**
   * This device's id, `[A-Za-z0-9._-]{1,64}`. Default: a stable one per device (Node: a file
   * under `deviceIdDir`) or per browser tab (sessionStorage), so two tabs never take each other over.
   */
  deviceId?: string
  /**
   * Start with a clean session that ends with the connection (default false: a persistent one,
   * so the broker queues inbox messages while the device is away). For short-lived tools.
   */
  cleanSession?: boolean
  /** Node only: where the generated deviceId is kept. Default `~/.herald/devices`. */
  deviceIdDir?: string
  /**
   * Herald's HTTP API, e.g. `http://127.0.0.1:8080`. With it `send()` learns the message's
   * offset and tells a refusal from an acceptance without waiting, and `query()` works.
   */
  httpUrl?: string
  /**
   * Without `httpUrl`: how long `send()` waits after the acknowledgement for a `rejected`
   * receipt before it resolves, ms. Default 500.
   */
  rejectWindowMs?: number
  /** Catch up at connect from this offset (`'0'` = the whole history). Default: the persistent session alone. */
  catchUpAfter?: string
  /**
   * After a reconnect the catch-up starts this long before the last message seen, ms (default
   * 10 s): deliveries across nodes may arrive slightly out of offset order, and what comes twice
   * is dropped by (from, id).
   */
  catchUpOverlapMs?: number
  /**
   * While connected, catch up this often too, ms (default 30 000; 0 = only after reconnects).
   * A device that stays connected while the cluster bus loses a live delivery (Redis restarting
   * under the node) gets it this way; the message itself was recorded before its PUBACK.
   */
  catchUpEveryMs?: number
  /** First reconnect delay, ms (default 500); doubles per failed attempt, with full jitter. */
  reconnectMinMs?: number
  /** Largest reconnect delay, ms (default 30 000). */
  reconnectMaxMs?: number
  /**
   * Herald's largest MQTT packet (`HERALD_MAX_PACKET_BYTES`, default 256 KiB): `send()` refuses a
   * larger message itself (`RejectedError` `too-large`) — Herald would close the connection.
   */
  maxPacketBytes?: number
  /** How long requests to Herald (history, the send status lookup) may take, ms. Default 10 000. */
  requestTimeoutMs?: number
  /** Extra mqtt.js options (TLS `ca`, `keepalive`, `servers`, …); identity and session options are the SDK's. */
  mqtt?: Omit<IClientOptions, 'clientId' | 'username' | 'password' | 'clean' | 'reconnectPeriod'>
}
