/**
 * HeraldClient: one persistent MQTT session per device (mqtt.js), with presence watching,
 * status, messages in and out with receipts, and history catch-up by offset. Written against
 * docs/contract.md and docs/messaging.md.
 */
// node:events is bundled for browsers as the `events` package (clients/web)
import { EventEmitter } from 'node:events'
import mqtt, { type MqttClient } from 'mqtt'
import { backoffDelay } from './backoff.js'
import { compareOffsets, SeenSet } from './dedupe.js'
import { defaultDeviceId, defendTabDevice } from './device-id.js'
import { ConnectError, connectError, HeraldError, RejectedError, TimeoutError, UsageError } from './errors.js'
import { httpJson } from './http.js'
import type {
  ConnectOptions,
  HeraldEvents,
  HistoryPage,
  Message,
  PresenceDoc,
  PresenceView,
  Receipt,
  SendResult,
} from './types.js'

const IDENTIFIER = /^[A-Za-z0-9._-]{1,64}$/
const HELD_MAX = 10_000

const DEFAULTS = {
  rejectWindowMs: 500,
  catchUpOverlapMs: 10_000,
  catchUpEveryMs: 30_000,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  requestTimeoutMs: 10_000,
  keepalive: 30,
  connectTimeout: 10_000,
  /** Herald's HERALD_MAX_PACKET_BYTES default. */
  maxPacketBytes: 256 * 1024,
} as const

interface RpcReply {
  id: string
  ok: boolean
  messages?: Message[]
  next?: string
  error?: string
}

/** What send() reads of `GET /v1/messages/<id>` (docs/messaging.md). */
interface RecordedStatus {
  /** The recipient recorded last, and its offset. */
  to: string
  offset: string
  /** Every recipient of the id and its offset; missing from a Herald before it existed. */
  recipients?: Record<string, { offset: string }>
}

function checkId(what: string, value: string): void {
  if (!IDENTIFIER.test(value)) throw new UsageError('bad-argument', `${what} must match [A-Za-z0-9._-]{1,64}`)
}

const newId = () => globalThis.crypto.randomUUID()
const utf8 = new TextEncoder()

/** `<code>: <message>` of a rejected receipt, split. */
function rejection(r: Receipt, id: string): RejectedError {
  const reason = r.reason ?? 'rejected'
  const colon = reason.indexOf(':')
  const code = colon > 0 ? reason.slice(0, colon) : reason
  return new RejectedError(id, code, reason)
}

/** A timer that never keeps Node alive on its own. */
function later(ms: number, fn: () => void): ReturnType<typeof setTimeout> {
  const t = setTimeout(fn, ms)
  ;(t as { unref?: () => void }).unref?.()
  return t
}

export class HeraldClient extends EventEmitter<HeraldEvents> {
  /** Offset of the newest message received: catch-up after a reconnect starts from it. */
  lastOffset: string | undefined
  private readonly watched = new Set<string>()
  private readonly presenceDocs = new Map<string, PresenceDoc>()
  private readonly seen = new SeenSet()
  private readonly refusals = new Map<string, (r: Receipt) => void>()
  /** Rejected receipts that could not name their message (e.g. a payload over the size limit). */
  private readonly anonymousRefusals: Array<{ at: number; receipt: Receipt }> = []
  private readonly rpcs = new Map<string, (reply: RpcReply) => void>()
  private held: Message[] = []
  private resumeFrom: string | undefined
  private reconnectAttempt = 0
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined
  private catchUpTimer: ReturnType<typeof setInterval> | undefined
  private catchingUp = false
  /** During a restore: the watched users whose document came since the re-subscribe. */
  private heard: Set<string> | undefined
  private closed = false
  /** Stops answering other tabs' claims of this tab's deviceId (browsers). */
  private undefend: () => void = () => {}
  private readonly startedAt = Date.now()

  private constructor(
    private readonly client: MqttClient,
    private readonly opts: ConnectOptions,
    /** The user this client is. */
    readonly userId: string,
    /** This device's id; the MQTT clientId is `<userId>/<deviceId>`. */
    readonly deviceId: string,
  ) {
    super()
    client.on('message', (topic, payload) => this.onMessage(topic, payload))
    client.on('error', (err) => this.report(connectError(err, opts.url)))
    client.on('close', () => this.onClose())
    client.on('connect', (connack) => this.onReconnect(connack.sessionPresent))
    // what the session or the catch-up delivers before anyone listens reaches the first listener
    ;(this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event !== 'message' || this.held.length === 0) return
      queueMicrotask(() => {
        for (const m of this.held.splice(0)) this.hand(m)
      })
    })
  }

  /**
   * Connects as `<userId>/<deviceId>` with a persistent session, subscribes to the inbox, this
   * device's topic, receipts and RPC replies, and returns once Herald accepted the connection.
   * Rejects with ConnectError when it is refused (bad token: `bad-token`) or unreachable.
   */
  static async connect(opts: ConnectOptions): Promise<HeraldClient> {
    checkId('userId', opts.userId)
    const deviceId = opts.deviceId ?? (await defaultDeviceId(opts.userId, opts.deviceIdDir))
    checkId('deviceId', deviceId)
    const client = mqtt.connect(opts.url, {
      keepalive: DEFAULTS.keepalive,
      connectTimeout: DEFAULTS.connectTimeout,
      ...opts.mqtt,
      clientId: `${opts.userId}/${deviceId}`,
      // [MQTT-3.1.2-22] no password without a username; Herald wants the userId there
      username: opts.userId,
      password: opts.token,
      protocolVersion: 4,
      // a persistent session: the broker queues inbox messages while this device is away
      clean: opts.cleanSession ?? false,
      // reconnects are the SDK's (backoff with jitter), not mqtt.js's fixed period
      reconnectPeriod: 0,
    })
    // what the broker sends right behind the CONNACK (a persistent session's queue) can be
    // handled before connect() resumes: keep it for the client, or mqtt.js acknowledges it unseen
    const early: Array<[string, Uint8Array]> = []
    const keep = (topic: string, payload: Uint8Array) => early.push([topic, payload])
    client.on('message', keep)
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve())
        client.once('error', (err) => reject(connectError(err, opts.url)))
        client.once('close', () =>
          reject(
            new ConnectError('unreachable', `connection to ${opts.url} closed before Herald accepted it`),
          ),
        )
      })
    } catch (err) {
      client.end(true)
      throw err
    } finally {
      client.off('message', keep)
    }
    const h = new HeraldClient(client, opts, opts.userId, deviceId)
    for (const [topic, payload] of early) h.onMessage(topic, payload)
    h.undefend = defendTabDevice(deviceId)
    await h.subscribeOwn()
    if (opts.catchUpAfter !== undefined) await h.catchUp(opts.catchUpAfter || '0')
    h.startPeriodicCatchUp()
    return h
  }

  /** True while the MQTT connection is up. */
  get connected(): boolean {
    return this.client.connected
  }

  /** The token used for the next reconnect (a fresh one before the current expires). */
  setToken(token: string): void {
    this.client.options.password = token
    this.opts.token = token
  }

  /**
   * Watches users' presence: `online`, `offline` and `status` events. The current state of each
   * comes first (the retained document), then every user-level edge; after a reconnect the state
   * is read again and only what changed is reported.
   */
  async watch(userIds: string[]): Promise<void> {
    for (const u of userIds) checkId('userId', u)
    for (const u of userIds) this.watched.add(u)
    if (userIds.length === 0) return
    const granted = await this.client.subscribeAsync(
      userIds.map((u) => `presence/${u}`),
      { qos: 0 },
    )
    const refused = granted.filter((g) => g.qos === 128).map((g) => g.topic.slice('presence/'.length))
    if (refused.length > 0) {
      for (const u of refused) this.watched.delete(u)
      throw new HeraldError('not-visible', `not allowed to watch ${refused.join(', ')}`)
    }
  }

  /** Stops watching users. */
  async unwatch(userIds: string[]): Promise<void> {
    for (const u of userIds) {
      this.watched.delete(u)
      this.presenceDocs.delete(u)
    }
    if (userIds.length > 0) await this.client.unsubscribeAsync(userIds.map((u) => `presence/${u}`))
  }

  /** The last presence document heard for a watched user. */
  presence(userId: string): PresenceDoc | undefined {
    return this.presenceDocs.get(userId)
  }

  /** Whether a watched user is online, as last heard; `undefined` when nothing was heard. */
  isOnline(userId: string): boolean | undefined {
    return this.presenceDocs.get(userId)?.online
  }

  /**
   * Presence of up to 1000 users with their connections and devices, from the HTTP API (needs
   * `httpUrl`). Users the visibility policy hides are missing from the result.
   */
  async query(userIds: string[]): Promise<Record<string, PresenceView>> {
    const base = this.needHttp('query()')
    const { results } = await httpJson<{ results: Record<string, PresenceView> }>(
      base,
      '/v1/presence/query',
      this.opts.token,
      { method: 'POST', body: { userIds }, timeoutMs: this.timeoutMs },
    )
    return results
  }

  /** Sets this user's status (`away`, `busy`, … ≤ 32 characters; `null` clears it), shown in her presence document. */
  async setStatus(status: string | null, meta?: Record<string, unknown>): Promise<void> {
    const doc = meta === undefined ? { status } : { status, meta }
    await this.client.publishAsync(`users/${this.userId}/status`, JSON.stringify(doc), { qos: 1 })
  }

  /**
   * Sends a message to a user's inbox. Resolves once Herald recorded it, with its id and (with
   * `httpUrl`) its offset in the recipient's history. While the connection is down the message
   * waits and is re-sent after the reconnect under the same id, so Herald records it once.
   * Rejects with RejectedError when Herald refuses it.
   */
  async send(to: string, body: unknown, opts: { id?: string; type?: string } = {}): Promise<SendResult> {
    checkId('to', to)
    const id = opts.id ?? newId()
    checkId('id', id)
    const sentAt = Date.now()
    let refused: ((r: Receipt) => void) | undefined
    const refusal = new Promise<Receipt>((resolve) => {
      refused = resolve
    })
    this.refusals.set(id, refused!)
    try {
      const envelope = opts.type === undefined ? { id, body } : { id, type: opts.type, body }
      const topic = `users/${to}/inbox`
      const payload = JSON.stringify(envelope)
      // a packet over Herald's limit closes the connection, and mqtt.js would send it again after
      // every reconnect: the client would never stay connected again
      const limit = this.opts.maxPacketBytes ?? DEFAULTS.maxPacketBytes
      const size = 4 + utf8.encode(topic).length + utf8.encode(payload).length
      if (size > limit)
        throw new RejectedError(
          id,
          'too-large',
          `too-large: a packet of ${size} bytes exceeds ${limit} (maxPacketBytes)`,
        )
      // PUBACK comes after Herald recorded the message — or refused it (then a receipt follows)
      await this.client.publishAsync(topic, payload, { qos: 1 }).catch((err) => {
        throw this.closed
          ? new UsageError('closed', `the client was closed before Herald acknowledged message ${id}`)
          : err
      })
      const base = this.opts.httpUrl
      if (base) {
        const status = await this.recordedStatus(base, id)
        if (status === 'unknown') return { id, to }
        if (status !== 'missing') {
          // one id may have gone to several users: `recipients` has each; a Herald from before
          // it names only the one recorded last
          const mine = status.recipients ? status.recipients[to] : status.to === to ? status : undefined
          if (mine) return { id, to, offset: mine.offset }
          if (!status.recipients)
            throw new RejectedError(
              id,
              'duplicate-id',
              `id ${id} was already used for a message to ${status.to}`,
            )
          // recorded for others under this id, not for `to`: Herald refused this one
        }
        const r = await this.race(this.refusalOrAnonymous(refusal, sentAt), this.timeoutMs)
        throw r
          ? rejection(r, id)
          : new RejectedError(id, 'not-recorded', 'Herald acknowledged the message but did not record it')
      }
      const window = this.opts.rejectWindowMs ?? DEFAULTS.rejectWindowMs
      // a refusal that cannot name its message (over the size limit) is this one's when no other
      // send is in flight (README, Limits)
      const mine = this.refusals.size === 1 ? this.refusalOrAnonymous(refusal, sentAt, window) : refusal
      const r = window > 0 ? await this.race(mine, window) : undefined
      if (r) throw rejection(r, id)
      return { id, to }
    } finally {
      this.refusals.delete(id)
    }
  }

  /** Tells the sender this message was read (a `read` receipt from this device). */
  async markRead(message: Pick<Message, 'id' | 'from'>): Promise<void> {
    await this.receipt(message, 'read')
  }

  /** My messages after an offset (`'0'` or omitted: from the start), one page; continue with `after = next`. */
  async history(opts: { after?: string; limit?: number } = {}): Promise<HistoryPage> {
    const id = newId()
    const reply = new Promise<RpcReply>((resolve) => this.rpcs.set(id, resolve))
    try {
      const request = { id, limit: opts.limit ?? 100, ...(opts.after ? { after: opts.after } : {}) }
      await this.client.publishAsync(`users/${this.userId}/rpc/history`, JSON.stringify(request), { qos: 1 })
      const r = await this.race(reply, this.timeoutMs)
      if (!r) throw new TimeoutError(`history: no answer from Herald within ${this.timeoutMs} ms`)
      if (!r.ok) throw new HeraldError('history-failed', r.error ?? 'history request failed')
      return { messages: r.messages ?? [], ...(r.next ? { next: r.next } : {}) }
    } finally {
      this.rpcs.delete(id)
    }
  }

  /** Disconnects cleanly (watchers see `logout`); the session stays for the next connect. */
  async close(): Promise<void> {
    this.closed = true
    this.undefend()
    clearTimeout(this.reconnectTimer)
    clearInterval(this.catchUpTimer)
    if (!this.client.connected) {
      // down: a graceful end() waits for the acknowledgements of what is in flight, which cannot
      // come any more — close() and those sends would wait for good. They fail now instead.
      for (const messageId of Object.keys(this.client.outgoing))
        this.client.removeOutgoingMessage(Number(messageId))
      await this.client.endAsync(true)
      return
    }
    await this.client.endAsync()
  }

  // --- connection -------------------------------------------------------------------------

  private get timeoutMs(): number {
    return this.opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs
  }

  private needHttp(what: string): string {
    if (!this.opts.httpUrl) throw new UsageError('no-http-url', `${what} needs the httpUrl option`)
    return this.opts.httpUrl
  }

  /** Background trouble goes to `error` listeners, and is never thrown. */
  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  private onClose(): void {
    if (this.closed) return
    if (this.reconnectTimer === undefined && this.reconnectAttempt === 0) {
      // where the catch-up after this outage starts (see catchUpOverlapMs)
      const overlap = this.opts.catchUpOverlapMs ?? DEFAULTS.catchUpOverlapMs
      const [ms = 0] = (this.lastOffset ?? '').split('-').map(Number)
      this.resumeFrom ??= `${Math.max(0, (ms || this.startedAt) - overlap)}-0`
      this.emit('disconnect')
    }
    clearTimeout(this.reconnectTimer)
    const delay = backoffDelay(this.reconnectAttempt, {
      minMs: this.opts.reconnectMinMs ?? DEFAULTS.reconnectMinMs,
      maxMs: this.opts.reconnectMaxMs ?? DEFAULTS.reconnectMaxMs,
    })
    this.reconnectAttempt += 1
    this.reconnectTimer = later(delay, () => {
      this.reconnectTimer = undefined
      if (this.closed) return
      // keep the stores: unacknowledged publishes are re-sent (same packet, same message id)
      this.client.reconnect({
        incomingStore: this.client.incomingStore,
        outgoingStore: this.client.outgoingStore,
      })
    })
  }

  private onReconnect(sessionPresent: boolean): void {
    this.reconnectAttempt = 0
    if (this.closed) return
    this.restore(sessionPresent).then(
      () => this.emit('reconnect'),
      (err: Error) => this.report(err),
    )
  }

  /** After a reconnect: subscriptions (if the session was lost), presence (always), catch-up. */
  private async restore(sessionPresent: boolean): Promise<void> {
    if (!sessionPresent) await this.subscribeOwn()
    // a restored session keeps its subscriptions but gets no retained documents: subscribe again
    if (this.watched.size > 0) {
      this.heard = new Set()
      try {
        await this.watch([...this.watched])
        await this.reconcilePresence(this.heard)
      } finally {
        this.heard = undefined
      }
    }
    await this.catchUp(this.resumeFrom ?? this.lastOffset ?? '0')
    this.resumeFrom = undefined
  }

  /**
   * After the re-subscribe: a watched user with no document (a restarted memory-mode Herald,
   * which keeps no presence, has none for a user not seen since) gets none, and the state heard
   * before the outage would stand for good. With `httpUrl` the HTTP view says what the store
   * holds now, for the users not heard from since the re-subscribe.
   */
  private async reconcilePresence(heard: Set<string>): Promise<void> {
    if (!this.opts.httpUrl) return
    const users = [...this.watched].filter((u) => this.presenceDocs.has(u))
    for (let i = 0; i < users.length; i += 1000) {
      const results = await this.query(users.slice(i, i + 1000)).catch((err: Error) => {
        this.report(err)
        return undefined
      })
      if (!results) return
      for (const view of Object.values(results)) {
        if (heard.has(view.userId)) continue
        const { connections: _c, devices: _d, connectionsDetail: _cd, ...doc } = view
        this.onPresence(doc)
      }
    }
  }

  private async subscribeOwn(): Promise<void> {
    const me = this.userId
    await this.client.subscribeAsync(
      [
        `users/${me}/inbox`,
        `users/${me}/devices/${this.deviceId}`,
        `users/${me}/receipts`,
        `users/${me}/rpc/reply/${this.deviceId}`,
      ],
      { qos: 1 },
    )
  }

  /** The periodic reconciliation: from a little before the last offset seen (the overlap). */
  private startPeriodicCatchUp(): void {
    const every = this.opts.catchUpEveryMs ?? DEFAULTS.catchUpEveryMs
    if (every <= 0) return
    this.catchUpTimer = setInterval(() => {
      if (this.catchingUp || !this.client.connected) return
      const overlap = this.opts.catchUpOverlapMs ?? DEFAULTS.catchUpOverlapMs
      // never before this client started: a device without catchUpAfter gets no old history
      const [ms = 0] = (this.lastOffset ?? '').split('-').map(Number)
      const from = `${ms > 0 ? Math.max(0, ms - overlap) : this.startedAt}-0`
      this.catchingUp = true
      this.catchUp(from)
        .catch((err: Error) => this.report(err))
        .finally(() => {
          this.catchingUp = false
        })
    }, every)
    // a timer must never keep a Node process alive on its own
    ;(this.catchUpTimer as { unref?: () => void }).unref?.()
  }

  /** Everything after an offset, through `message` (de-duplicated), page by page. */
  private async catchUp(from: string): Promise<void> {
    let after = from
    for (;;) {
      const page = await this.history({ after, limit: 500 })
      for (const m of page.messages) this.deliver(m)
      // only `next` says where the history ends: a page may be empty and still not the last
      // (what was read in it was for another device). A `next` that does not move forward
      // is the end too, so a confused server cannot keep this loop going.
      if (!page.next || compareOffsets(page.next, after) <= 0) return
      after = page.next
    }
  }

  // --- incoming ---------------------------------------------------------------------------

  private onMessage(topic: string, payload: Uint8Array): void {
    let data: unknown
    try {
      data = JSON.parse(new TextDecoder().decode(payload))
    } catch {
      return
    }
    if (typeof data !== 'object' || data === null) return
    const me = this.userId
    if (topic.startsWith('presence/')) this.onPresence(data as PresenceDoc)
    else if (topic === `users/${me}/receipts`) this.onReceipt(data as Receipt)
    else if (topic === `users/${me}/rpc/reply/${this.deviceId}`) {
      const reply = data as RpcReply
      this.rpcs.get(reply.id)?.(reply)
    } else this.deliver(data as Message)
  }

  private onPresence(doc: PresenceDoc): void {
    if (!this.watched.has(doc.userId)) return
    this.heard?.add(doc.userId)
    const prev = this.presenceDocs.get(doc.userId)
    this.presenceDocs.set(doc.userId, doc)
    if (!prev || prev.online !== doc.online) this.emit(doc.online ? 'online' : 'offline', doc)
    else if (prev.status !== doc.status || JSON.stringify(prev.meta) !== JSON.stringify(doc.meta))
      this.emit('status', doc)
  }

  private onReceipt(r: Receipt): void {
    if (r.status === 'rejected') {
      if (r.id) this.refusals.get(r.id)?.(r)
      else {
        this.anonymousRefusals.push({ at: Date.now(), receipt: r })
        if (this.anonymousRefusals.length > 100) this.anonymousRefusals.shift()
      }
    }
    this.emit('receipt', r)
  }

  /** Each message once, by (from, id); held until someone listens; then `delivered`. */
  private deliver(m: Message): void {
    if (typeof m.id !== 'string' || typeof m.from !== 'string') return
    if (m.offset && (!this.lastOffset || compareOffsets(m.offset, this.lastOffset) > 0))
      this.lastOffset = m.offset
    if (!this.seen.first(m.from, m.id)) return
    if (this.listenerCount('message') === 0) {
      if (this.held.length < HELD_MAX) this.held.push(m)
      return
    }
    this.hand(m)
  }

  private hand(m: Message): void {
    this.emit('message', m)
    this.receipt(m, 'delivered').catch((err: Error) => this.report(err))
  }

  private async receipt(m: Pick<Message, 'id' | 'from'>, status: 'delivered' | 'read'): Promise<void> {
    await this.client.publishAsync(`users/${m.from}/receipts`, JSON.stringify({ id: m.id, status }), {
      qos: 1,
    })
  }

  // --- helpers ----------------------------------------------------------------------------

  /** Resolves with the value, or `undefined` after `ms`. */
  private async race<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      return await Promise.race([
        p,
        new Promise<undefined>((resolve) => (timer = later(ms, () => resolve(undefined)))),
      ])
    } finally {
      clearTimeout(timer)
    }
  }

  /** A refusal naming this message, or one naming none that arrived after it was sent. */
  private refusalOrAnonymous(
    named: Promise<Receipt>,
    since: number,
    /** How long it listens for a refusal naming none (no listener outlives its wait). */
    forMs = this.timeoutMs,
  ): Promise<Receipt> {
    const earlier = this.anonymousRefusals.find((a) => a.at >= since)
    if (earlier) return Promise.resolve(earlier.receipt)
    return new Promise((resolve) => {
      void named.then(resolve)
      const onReceipt = (r: Receipt) => {
        if (r.status === 'rejected' && !r.id) {
          this.off('receipt', onReceipt)
          resolve(r)
        }
      }
      this.on('receipt', onReceipt)
      void named.then(() => this.off('receipt', onReceipt))
      later(forMs, () => this.off('receipt', onReceipt))
    })
  }

  /**
   * Whether Herald recorded message `id` from me: its status (recipients, offsets), `missing`
   * (refused), or `unknown` when the HTTP API cannot say (the message was acknowledged).
   */
  private async recordedStatus(base: string, id: string): Promise<RecordedStatus | 'missing' | 'unknown'> {
    const path = `/v1/messages/${encodeURIComponent(id)}?from=${encodeURIComponent(this.userId)}`
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await httpJson<RecordedStatus>(base, path, this.opts.token, {
          timeoutMs: this.timeoutMs,
        })
      } catch (err) {
        if ((err as { status?: number }).status === 404) return 'missing'
        this.report(err as Error)
        await new Promise((r) =>
          later(backoffDelay(attempt, { minMs: 200, maxMs: 2000 }), () => r(undefined)),
        )
      }
    }
    return 'unknown'
  }
}
