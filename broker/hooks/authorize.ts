/**
 * The ACL (CONTRACT.md "Topics"). Users subscribe to their own `users/<me>/...` (of the
 * device topics, only their own device's) and to exact
 * `presence/<userId>` topics; they publish envelopes to inboxes, receipts and their own status.
 * Nobody but Herald publishes `presence/...` or `$SYS/...`. Services and admins may publish to
 * any user's inbox, device and receipts topics, subscribe under `users/`, and to the nodes'
 * lifecycle events (`$SYS/<nodeId>/presence/<kind>`, broker/lifecycle.ts).
 */
import type { Role } from '../../services/core/auth.js'
import { envelopeIdOf, type Refusal, type RefusalCode } from '../../services/core/envelope.js'
import { hasWildcard, parseTopic, topicMatches, topics, type UserTopic } from '../../services/core/topics.js'
import { everyoneVisible, type VisibilityPolicy } from '../../services/core/visibility.js'
import { isLifecycleFilter } from '../lifecycle.js'
import type { Outcome, PublishContext, PublishStage } from './pipeline.js'

export type SubscribeVerdict = { ok: true } | { ok: false; reason: string }

/** A level no topic filter can name literally: stands for "some other device" below. */
const ANY_OTHER_DEVICE = '\u0000'

/**
 * Whether a user's filter under `users/<me>/` could receive what is sent to another of her
 * devices: `users/<me>/devices/<d>` is for device `<d>` only (CONTRACT.md "Topics"), so
 * another device's exact topic, `users/<me>/devices/+`, `users/<me>/#` and the like are refused.
 */
function reachesOtherDevice(filter: string, me: string, myDevice: string): boolean {
  const named = filter.split('/')[3]
  const other = named === undefined || named === '+' || named === '#' ? ANY_OTHER_DEVICE : named
  return other !== myDevice && topicMatches(filter, topics.device(me, other))
}

export async function authorizeSubscribe(
  who: { userId: string; role: Role; deviceId?: string },
  topic: string,
  visibility: VisibilityPolicy = everyoneVisible,
): Promise<SubscribeVerdict> {
  if (topic.startsWith('$')) {
    if (who.role !== 'user' && isLifecycleFilter(topic)) return { ok: true }
    return { ok: false, reason: '$SYS topics are internal' }
  }
  if (topic === '#' || topic.startsWith('+')) return { ok: false, reason: 'wildcard at the root' }
  if (topic.startsWith('presence/')) {
    if (hasWildcard(topic)) return { ok: false, reason: 'presence topics must be exact (no wildcards)' }
    const parsed = parseTopic(topic)
    if (parsed.kind !== 'presence') return { ok: false, reason: 'not a presence topic' }
    if (who.role === 'user' && !(await visibility.canSee(who.userId, parsed.userId)))
      return { ok: false, reason: 'presence not visible' }
    return { ok: true }
  }
  if (who.role === 'user') {
    if (topic.startsWith(`users/${who.userId}/`)) {
      if (who.deviceId !== undefined && reachesOtherDevice(topic, who.userId, who.deviceId))
        return {
          ok: false,
          reason: "another device's topic (users/<me>/devices/<d> is for that device only)",
        }
      return { ok: true }
    }
    return { ok: false, reason: 'users may subscribe only under users/<me>/' }
  }
  if (topic.startsWith('users/')) return { ok: true }
  return { ok: false, reason: 'topic outside users/ and presence/' }
}

/** Which kinds of user topics each role may publish to, and whether only its own. */
function mayPublish(role: Role, me: string, target: UserTopic): boolean {
  switch (target.kind) {
    case 'inbox':
    case 'receipts':
      return true
    case 'status':
    case 'rpc':
      return target.userId === me
    case 'device':
      return role !== 'user'
    default:
      return false
  }
}

/**
 * The publish ACL. A refusal names the envelope's id when the payload has one (read best
 * effort: this stage runs before validate parses anything), so the sender can tell which
 * message its `rejected` receipt is about.
 */
export function authorizeStage(opts: { maxMessageBytes: number }): PublishStage {
  const refuse = (ctx: PublishContext, code: RefusalCode, message: string): Outcome => {
    const { payload } = ctx.packet
    const id = envelopeIdOf(
      typeof payload === 'string' ? Buffer.from(payload) : payload,
      opts.maxMessageBytes,
    )
    const refusal: Refusal = { code, message }
    if (id !== undefined) refusal.id = id
    return { action: 'refuse', refusal }
  }
  return {
    name: 'authorize',
    run(ctx: PublishContext): Outcome | undefined {
      const { packet, conn, target } = ctx
      if (!mayPublish(conn.principal.role, conn.userId, target))
        return refuse(ctx, 'not-allowed', `may not publish to ${packet.topic}`)
      if (packet.retain) return refuse(ctx, 'retain-not-allowed', 'retained publishes are refused')
      return undefined
    },
  }
}
