/**
 * The HTTP API of CONTRACT.md. Every /v1 route needs `Authorization: Bearer <JWT>`; users
 * read presence as the visibility policy allows, services and admins may do everything.
 */
import type { IncomingMessage } from 'node:http'
import { TokenBucket } from '../../broker/limits.js'
import { AuthError, type Authenticator, type Principal, type Role } from '../core/auth.js'
import { isIdentifier } from '../core/identity.js'
import type { VisibilityPolicy } from '../core/visibility.js'
import type { NodeRecord, StoreStats } from '../presence/store.js'
import type { PresenceView } from '../presence/types.js'
import { HttpError, type Router } from './router.js'

export interface PresenceReader {
  get(userId: string): Promise<PresenceView>
  getMany(userIds: string[]): Promise<PresenceView[]>
  stats(): Promise<StoreStats>
  nodes(): Promise<NodeRecord[]>
}

export interface ApiDeps {
  auth: Authenticator
  presence: PresenceReader
  visibility: VisibilityPolicy
  /** Node heartbeat interval: a node silent for 3 of them is reported dead. */
  heartbeatMs: number
}

export const MAX_QUERY_USERS = 1000

export async function authorize(
  auth: Authenticator,
  req: IncomingMessage,
  roles?: Role[],
  /**
   * A request that costs the server (a history page, a presence query of up to 1000 users):
   * a user's are paced (HERALD_HTTP_USER_PER_SEC). Cheap reads are not — the SDK looks up the
   * status of every message it sends.
   */
  opts: { paced?: boolean } = {},
): Promise<Principal> {
  const header = req.headers.authorization
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null
  if (!m) throw new HttpError(401, 'unauthorized', 'Authorization: Bearer <JWT> required')
  let principal: Principal
  try {
    principal = await auth.verify(m[1])
  } catch (err) {
    if (err instanceof AuthError) throw new HttpError(401, `token-${err.code}`, err.message)
    throw err
  }
  if (roles && !roles.includes(principal.role)) {
    throw new HttpError(403, 'forbidden', `requires role ${roles.join(' or ')}`)
  }
  if (opts.paced && principal.role === 'user' && userRequests.get(auth)?.(principal.userId) === false) {
    throw new HttpError(429, 'rate-limited', 'too many requests from this user; retry in a second')
  }
  return principal
}

/**
 * Per-user request buckets of one HTTP API (keyed by its Authenticator): a user's costly
 * requests (a history page is up to 1 MiB of JSON) are paced; back ends (services, admins) are
 * trusted and are not. Buckets idle for a minute are forgotten.
 */
const userRequests = new WeakMap<Authenticator, (userId: string) => boolean>()

export function limitUserRequests(auth: Authenticator, perSec: number): void {
  if (perSec <= 0) return
  const buckets = new Map<string, TokenBucket>()
  let prunedAt = Date.now()
  userRequests.set(auth, (userId) => {
    const now = Date.now()
    if (now - prunedAt > 60_000) {
      for (const [id, b] of buckets) if (b.idleSince(now) > 60_000) buckets.delete(id)
      prunedAt = now
    }
    let bucket = buckets.get(userId)
    if (!bucket) {
      bucket = new TokenBucket(perSec, 2 * perSec, now)
      buckets.set(userId, bucket)
    }
    return bucket.take(now)
  })
}

export function userIdParam(value: string | undefined): string {
  if (!isIdentifier(value)) throw new HttpError(400, 'bad-user-id', 'userId must match [A-Za-z0-9._-]{1,64}')
  return value
}

/**
 * A view as `viewer` may read it: a user (role `user`) reading someone else gets each
 * connection without its `remoteAddress` — IP addresses, the reason users may not subscribe to
 * lifecycle events either (docs/contract.md amendments 9 and 11); services, admins and the user
 * herself keep it.
 */
export function viewFor(viewer: Principal, view: PresenceView): PresenceView {
  if (viewer.role !== 'user' || viewer.userId === view.userId) return view
  return {
    ...view,
    connectionsDetail: view.connectionsDetail.map(({ remoteAddress: _withheld, ...detail }) => detail),
  }
}

export function presenceRoutes(router: Router, deps: ApiDeps): void {
  const canSee = async (p: Principal, target: string) =>
    p.role !== 'user' || p.userId === target || (await deps.visibility.canSee(p.userId, target))

  router.add('GET', '/v1/presence/:userId', async ({ req, params }) => {
    const principal = await authorize(deps.auth, req)
    const userId = userIdParam(params.userId)
    if (!(await canSee(principal, userId))) throw new HttpError(403, 'not-visible', 'presence not visible')
    return { status: 200, body: viewFor(principal, await deps.presence.get(userId)) }
  })

  router.add('POST', '/v1/presence/query', async ({ req, body }) => {
    const principal = await authorize(deps.auth, req, undefined, { paced: true })
    const ids = (body as { userIds?: unknown } | undefined)?.userIds
    if (!Array.isArray(ids)) throw new HttpError(400, 'bad-request', 'body must be { "userIds": [...] }')
    if (ids.length > MAX_QUERY_USERS)
      throw new HttpError(413, 'too-many', `at most ${MAX_QUERY_USERS} userIds`)
    const unique = [...new Set(ids.map((id) => userIdParam(id as string)))]
    const visible: string[] = []
    for (const id of unique) if (await canSee(principal, id)) visible.push(id)
    const views = await deps.presence.getMany(visible)
    return {
      status: 200,
      body: { results: Object.fromEntries(views.map((v) => [v.userId, viewFor(principal, v)])) },
    }
  })

  router.add('GET', '/v1/stats', async ({ req }) => {
    await authorize(deps.auth, req, ['service', 'admin'])
    const [stats, nodes] = await Promise.all([deps.presence.stats(), deps.presence.nodes()])
    const now = Date.now()
    return {
      status: 200,
      body: {
        onlineUsers: stats.onlineUsers,
        connections: stats.connections,
        nodes: nodes.map((n) => ({
          nodeId: n.nodeId,
          epoch: n.epoch,
          connections: n.connections,
          lastHeartbeat: n.lastHeartbeat,
          state: n.retired ? 'gone' : now - n.lastHeartbeat > 3 * deps.heartbeatMs ? 'silent' : 'up',
        })),
      },
    }
  })
}
