/**
 * The Herald SDK for Node (browsers: the same code through a bundler; mqtt.js speaks ws/wss
 * there). One persistent MQTT session per device: presence watching, status, messages in and
 * out with receipts, history catch-up by offset. Written against CONTRACT.md.
 *
 * ```ts
 * const h = await HeraldClient.connect({ url: 'mqtt://127.0.0.1:1883', userId: 'alice', deviceId: 'phone', token })
 * h.on('online', (doc) => console.log(doc.userId, 'is online'))
 * await h.watch(['bob'])
 * h.on('message', (m) => console.log(m.from, m.body))
 * await h.send('bob', { text: 'hi' })
 * ```
 */
// node:events is bundled for browsers as the `events` package (clients/web)
import { EventEmitter } from 'node:events'
import mqtt, { type MqttClient } from 'mqtt'

/** The retained presence document on `presence/<userId>`. */
export interface PresenceDoc {
  userId: string
  online: boolean
  since: number
  lastSeen: number
  reason?: string
  status?: string
  meta?: Record<string, unknown>
}

/** A message as Herald delivers it: stamped `from` and `ts`, with its history offset. */
export interface Message<B = unknown> {
  id: string
  from: string
  to: string
  ts: number
  type?: string
  body: B
  offset?: string
}

export interface Receipt {
  id: string
  status: 'delivered' | 'read' | 'rejected'
  by: string
  ts: number
  reason?: string
  deviceId?: string
}

/** Herald refused a message: `code` is the reason's code (`invalid-json`, `rate-limited`, …). */
export class RejectedError extends Error {
  override name = 'RejectedError'
  constructor(
    readonly id: string,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export interface HeraldEvents {
  online: [doc: PresenceDoc]
  offline: [doc: PresenceDoc]
  status: [doc: PresenceDoc]
  message: [message: Message]
  receipt: [receipt: Receipt]
  /** The connection came back (the session, subscriptions and catch-up are restored). */
  reconnect: []
  error: [error: Error]
}

export interface ConnectOptions {
  /** `mqtt://`, `mqtts://`, `ws://…/mqtt` or `wss://…/mqtt`. */
  url: string
  userId: string
  /** Stable per device (a file on Node, sessionStorage per browser tab): two devices never share one. */
  deviceId: string
  /** A JWT whose `sub` is `userId`. */
  token: string
  /** How long `send` waits for a `rejected` receipt before it calls the message accepted, ms. Default 0. */
  rejectWindowMs?: number
  /**
   * Catch up at connect from this offset (the last one the app stored; `''` = the whole
   * history). Without it the first connect relies on the persistent session alone.
   */
  catchUpAfter?: string
  /**
   * After a reconnect the catch-up starts this long before the last message seen, ms (default
   * 10 s): deliveries across nodes may arrive slightly out of offset order, and what comes
   * twice is dropped by (from, id).
   */
  catchUpOverlapMs?: number
  /** Extra mqtt.js options (TLS `ca`, `keepalive`, `servers` to fail over between nodes, …). */
  mqtt?: mqtt.IClientOptions
}

const SEEN_MAX = 10_000
/** Messages per catch-up request: Herald's largest page, so a long absence costs few round trips. */
const CATCH_UP_PAGE = 500

export class HeraldClient extends EventEmitter<HeraldEvents> {
  private readonly watched = new Set<string>()
  private readonly seen = new Set<string>()
  private readonly pending = new Map<string, (r: Receipt) => void>()
  private readonly rpcs = new Map<
    string,
    (reply: { ok: boolean; messages?: Message[]; next?: string; error?: string }) => void
  >()
  private readonly online = new Map<string, boolean>()
  /** Offset of the last message received: the catch-up starts after it. */
  lastOffset: string | undefined
  /** Messages that arrived while nobody listened for `message` (e.g. during connect). */
  private held: Message[] = []
  /** Where the catch-up after the current disconnection starts. */
  private resumeFrom: string | undefined
  private readonly connectedAt = Date.now()

  private constructor(
    private readonly client: MqttClient,
    private readonly opts: ConnectOptions,
  ) {
    super()
    client.on('message', (topic, payload) => this.onMessage(topic, payload))
    client.on('error', (err) => this.fail(err))
    // what the session and the catch-up deliver during connect reaches the first listener
    ;(this as unknown as NodeJS.EventEmitter).on('newListener', (event: string | symbol) => {
      if (event !== 'message' || this.held.length === 0) return
      setImmediate(() => {
        const held = this.held.splice(0)
        for (const m of held) this.hand(m)
      })
    })
    client.on('close', () => {
      const overlap = this.opts.catchUpOverlapMs ?? 10_000
      const [ms = this.connectedAt] = (this.lastOffset ?? '').split('-').map(Number)
      this.resumeFrom ??= `${Math.max(0, (ms || this.connectedAt) - overlap)}-0`
    })
    client.on('connect', (connack) => {
      if (!this.ready) return
      // a restored session keeps its subscriptions but gets no retained presence: ask again
      void this.resubscribe(connack.sessionPresent).then(
        () => this.emit('reconnect'),
        (err: Error) => this.fail(err),
      )
    })
  }

  /** Connection errors are normal while reconnecting: reported to `error` listeners, never thrown. */
  private fail(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  private ready = false

  /** Connects (persistent session, reconnect with backoff and jitter) and subscribes to the inbox and receipts. */
  static async connect(opts: ConnectOptions): Promise<HeraldClient> {
    let attempt = 0
    const client = mqtt.connect(opts.url, {
      clientId: `${opts.userId}/${opts.deviceId}`,
      username: opts.userId,
      password: opts.token,
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 1000,
      ...opts.mqtt,
    })
    // exponential backoff with full jitter, 1 s .. 30 s
    client.on('reconnect', () => {
      attempt += 1
      client.options.reconnectPeriod = Math.floor(Math.random() * Math.min(30_000, 1000 * 2 ** attempt))
    })
    client.on('connect', () => {
      attempt = 0
    })
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve())
      client.once('error', reject)
    })
    const h = new HeraldClient(client, opts)
    await h.resubscribe(false)
    h.ready = true
    if (opts.catchUpAfter !== undefined) await h.catchUp(opts.catchUpAfter || undefined)
    return h
  }

  /** Watches users' presence: `online`/`offline`/`status` events (the current state first). */
  async watch(userIds: string[]): Promise<void> {
    for (const u of userIds) this.watched.add(u)
    await this.client.subscribeAsync(
      userIds.map((u) => `presence/${u}`),
      { qos: 0 },
    )
  }

  /** Sets this user's status (shown in her presence document), e.g. `away`. */
  async setStatus(status: string, meta?: Record<string, unknown>): Promise<void> {
    await this.client.publishAsync(`users/${this.opts.userId}/status`, JSON.stringify({ status, meta }), {
      qos: 1,
    })
  }

  /**
   * Sends a message. Resolves once Herald recorded it (the PUBACK comes after the record);
   * rejects with RejectedError when Herald answers with a `rejected` receipt within
   * `rejectWindowMs`. Retries (reconnects) keep the same id, so Herald never delivers it twice.
   */
  async send(to: string, body: unknown, opts: { id?: string; type?: string } = {}): Promise<{ id: string }> {
    const id = opts.id ?? globalThis.crypto.randomUUID()
    const rejected = new Promise<Receipt>((resolve) => this.pending.set(id, resolve))
    try {
      await this.client.publishAsync(
        `users/${to}/inbox`,
        JSON.stringify({ id, body, ...(opts.type ? { type: opts.type } : {}) }),
        { qos: 1 },
      )
      const window = this.opts.rejectWindowMs ?? 0
      if (window > 0) {
        const r = await Promise.race([
          rejected,
          new Promise<undefined>((res) => setTimeout(() => res(undefined), window)),
        ])
        if (r) throw new RejectedError(id, (r.reason ?? '').split(':')[0] ?? '', r.reason ?? 'rejected')
      }
      return { id }
    } finally {
      this.pending.delete(id)
    }
  }

  /** Tells the sender this message was read (on every device of hers). */
  async markRead(message: Pick<Message, 'id' | 'from'>): Promise<void> {
    await this.receipt(message, 'read')
  }

  /** The user's messages after an offset, a page at a time (catch-up). */
  async history(
    opts: { after?: string; limit?: number } = {},
  ): Promise<{ messages: Message[]; next?: string }> {
    const id = globalThis.crypto.randomUUID()
    const reply = new Promise<{ ok: boolean; messages?: Message[]; next?: string; error?: string }>(
      (resolve) => this.rpcs.set(id, resolve),
    )
    await this.client.publishAsync(
      `users/${this.opts.userId}/rpc/history`,
      JSON.stringify({ id, after: opts.after, limit: opts.limit ?? 100 }),
      { qos: 1 },
    )
    let timer: NodeJS.Timeout | undefined
    const r = await Promise.race([
      reply,
      new Promise<never>((_res, reject) => {
        timer = setTimeout(() => reject(new Error('history: no answer within 10 s')), 10_000)
      }),
    ]).finally(() => {
      clearTimeout(timer)
      this.rpcs.delete(id)
    })
    if (!r.ok) throw new Error(r.error ?? 'history failed')
    return { messages: r.messages ?? [], ...(r.next ? { next: r.next } : {}) }
  }

  /** Current presence of the watched users, as last heard. */
  isOnline(userId: string): boolean | undefined {
    return this.online.get(userId)
  }

  /** Disconnects cleanly (presence: `logout`). */
  async close(): Promise<void> {
    await this.client.endAsync()
  }

  private async resubscribe(sessionPresent: boolean): Promise<void> {
    const me = this.opts.userId
    if (!sessionPresent) {
      await this.client.subscribeAsync(
        [
          `users/${me}/inbox`,
          `users/${me}/devices/${this.opts.deviceId}`,
          `users/${me}/receipts`,
          `users/${me}/rpc/reply/${this.opts.deviceId}`,
        ],
        { qos: 1 },
      )
    }
    if (this.watched.size > 0) await this.watch([...this.watched])
    if (this.ready) {
      await this.catchUp(this.resumeFrom ?? this.lastOffset)
      this.resumeFrom = undefined
    }
  }

  /** Everything after an offset, delivered through `message` (de-duplicated). */
  private async catchUp(from: string | undefined): Promise<void> {
    let after = from
    for (;;) {
      const page = await this.history({ after, limit: CATCH_UP_PAGE })
      for (const m of page.messages) this.deliver(m)
      if (!page.next || page.messages.length === 0) return
      after = page.next
    }
  }

  private onMessage(topic: string, payload: Buffer): void {
    let data: unknown
    try {
      data = JSON.parse(payload.toString())
    } catch {
      return
    }
    const me = this.opts.userId
    if (topic.startsWith('presence/')) {
      const doc = data as PresenceDoc
      const was = this.online.get(doc.userId)
      this.online.set(doc.userId, doc.online)
      if (was !== doc.online) this.emit(doc.online ? 'online' : 'offline', doc)
      else this.emit('status', doc)
    } else if (topic === `users/${me}/receipts`) {
      const r = data as Receipt
      if (r.status === 'rejected') this.pending.get(r.id)?.(r)
      this.emit('receipt', r)
    } else if (topic.startsWith(`users/${me}/rpc/reply/`)) {
      const reply = data as { id: string; ok: boolean; messages?: Message[]; next?: string; error?: string }
      this.rpcs.get(reply.id)?.(reply)
      this.rpcs.delete(reply.id)
    } else {
      this.deliver(data as Message)
    }
  }

  /** Each message once, by (from, id); then a `delivered` receipt to its sender. */
  private deliver(m: Message): void {
    if (m.offset && (!this.lastOffset || compareOffsets(m.offset, this.lastOffset) > 0))
      this.lastOffset = m.offset
    const key = `${m.from}\n${m.id}`
    if (this.seen.has(key)) return
    this.seen.add(key)
    if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value as string)
    if (this.listenerCount('message') === 0) {
      if (this.held.length < SEEN_MAX) this.held.push(m)
      return
    }
    this.hand(m)
  }

  /** To the application, then a `delivered` receipt to the sender. */
  private hand(m: Message): void {
    this.emit('message', m)
    void this.receipt(m, 'delivered').catch((err: Error) => this.fail(err))
  }

  private async receipt(m: Pick<Message, 'id' | 'from'>, status: 'delivered' | 'read'): Promise<void> {
    await this.client.publishAsync(`users/${m.from}/receipts`, JSON.stringify({ id: m.id, status }), {
      qos: 1,
    })
  }
}

/** Stream offsets `<ms>-<seq>` compare numerically, part by part. */
function compareOffsets(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am - bm || as - bs
}
