/**
 * Messaging over HTTP (CONTRACT.md): back ends send to one user, one device or up to 1,000 users;
 * owners and services read history by offset; senders and services read a message's status.
 * A send answers 202 only after the message is recorded.
 */
import type { Authenticator, Principal } from '../core/auth.js'
import { HISTORY_PAGE_BYTES, HISTORY_PAGE_DEFAULT, HISTORY_PAGE_MAX, isOffset } from '../core/envelope.js'
import { isIdentifier } from '../core/identity.js'
import { type MessageSender, newMessageId, type OutgoingMessage } from '../messaging/sender.js'
import type { MessageStore } from '../messaging/store.js'
import { authorize, userIdParam } from './api.js'
import { HttpError, type Router } from './router.js'

export interface MessageRouteDeps {
  auth: Authenticator
  messages: MessageStore
  sender: MessageSender
  maxMessageBytes: number
}

export const MAX_BATCH = 1000

function parseOutgoing(body: unknown, maxBytes: number): OutgoingMessage {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'bad-request', 'body must be a JSON object')
  }
  const o = body as Record<string, unknown>
  if (!('body' in o)) throw new HttpError(400, 'bad-request', 'a message needs a "body"')
  const msg: OutgoingMessage = { body: o.body }
  if (o.id !== undefined) {
    if (!isIdentifier(o.id)) throw new HttpError(400, 'bad-id', 'id must match [A-Za-z0-9._-]{1,64}')
    msg.id = o.id
  }
  if (o.type !== undefined) {
    if (typeof o.type !== 'string' || o.type.length > 64)
      throw new HttpError(400, 'bad-type', 'type must be a string ≤ 64')
    msg.type = o.type
  }
  if (o.deviceId !== undefined) {
    if (!isIdentifier(o.deviceId))
      throw new HttpError(400, 'bad-device-id', 'deviceId must match [A-Za-z0-9._-]{1,64}')
    msg.deviceId = o.deviceId
  }
  if (Buffer.byteLength(JSON.stringify(o.body)) > maxBytes) {
    throw new HttpError(413, 'too-large', `message body over ${maxBytes} bytes`)
  }
  return msg
}

const isBackend = (p: Principal) => p.role === 'service' || p.role === 'admin'

export function messageRoutes(router: Router, deps: MessageRouteDeps): void {
  router.add('POST', '/v1/users/:userId/messages', async ({ req, params, body }) => {
    const principal = await authorize(deps.auth, req, ['service', 'admin'])
    const to = userIdParam(params.userId)
    const sent = await deps.sender.send(principal.userId, to, parseOutgoing(body, deps.maxMessageBytes))
    return { status: 202, body: { id: sent.id, offset: sent.offset, duplicate: sent.duplicate } }
  })

  router.add('POST', '/v1/messages', async ({ req, body }) => {
    const principal = await authorize(deps.auth, req, ['service', 'admin'])
    const to = (body as { to?: unknown } | undefined)?.to
    if (!Array.isArray(to) || to.length === 0)
      throw new HttpError(400, 'bad-request', '"to" must be a list of userIds')
    if (to.length > MAX_BATCH) throw new HttpError(413, 'too-many', `at most ${MAX_BATCH} recipients`)
    const recipients = [...new Set(to.map((u) => userIdParam(u as string)))]
    const msg = parseOutgoing(body, deps.maxMessageBytes)
    msg.id ??= newMessageId() // one id for every recipient: (from, id) is de-duplicated per recipient
    const results = await Promise.all(recipients.map((u) => deps.sender.send(principal.userId, u, msg)))
    return {
      status: 202,
      body: { id: msg.id, results: results.map((r) => ({ to: r.to, offset: r.offset })) },
    }
  })

  router.add('GET', '/v1/users/:userId/messages', async ({ req, params, query }) => {
    const principal = await authorize(deps.auth, req, undefined, { paced: true })
    const userId = userIdParam(params.userId)
    if (!isBackend(principal) && principal.userId !== userId) {
      throw new HttpError(403, 'forbidden', 'only the owner or a service may read a history')
    }
    const after = query.get('after') ?? '0'
    if (!isOffset(after))
      throw new HttpError(400, 'bad-offset', 'after must be an offset like 1700000000000-0')
    const limit = Number(query.get('limit') ?? HISTORY_PAGE_DEFAULT)
    if (!Number.isInteger(limit) || limit < 1 || limit > HISTORY_PAGE_MAX) {
      throw new HttpError(400, 'bad-limit', `limit must be 1..${HISTORY_PAGE_MAX}`)
    }
    const deviceId = query.get('deviceId') ?? undefined
    if (deviceId !== undefined && !isIdentifier(deviceId))
      throw new HttpError(400, 'bad-device-id', 'bad deviceId')
    const page = await deps.messages.history(userId, { after, limit, deviceId, maxBytes: HISTORY_PAGE_BYTES })
    return { status: 200, body: page }
  })

  router.add('GET', '/v1/messages/:id', async ({ req, params, query }) => {
    const principal = await authorize(deps.auth, req)
    const id = params.id
    if (!isIdentifier(id)) throw new HttpError(400, 'bad-id', 'id must match [A-Za-z0-9._-]{1,64}')
    const from = userIdParam(query.get('from') ?? principal.userId)
    if (!isBackend(principal) && principal.userId !== from) {
      throw new HttpError(403, 'forbidden', 'only the sender or a service may read a message status')
    }
    const status = await deps.messages.status(from, id)
    if (!status)
      throw new HttpError(404, 'not-found', 'no such message (or older than the de-duplication window)')
    return { status: 200, body: status }
  })
}
