/**
 * The retained `presence/<userId>` documents are served from the presence store instead of
 * being kept a second time in Aedes persistence.
 *
 * Why: the store is the truth, and a copy can drift from it. A presence service killed between
 * its store write and its publish left the retained copy stale until the user's next edge;
 * served from the store, a new subscriber gets what the store holds now. And an edge costs one
 * PUBLISH on the bus instead of a PUBLISH plus a stored packet (in Redis mode an HSET of its
 * msgpack encoding): 100k of them in a cold re-sync or a node's death.
 *
 * How: Aedes stores a retained message through `persistence.storeRetained` on the broker that
 * publishes it, and reads retained messages through `persistence.createRetainedStreamCombi`
 * when a SUBSCRIBE is granted (after the subscription is live, so an edge published meanwhile
 * reaches the subscriber as well). Both are wrapped: `presence/...` packets are not stored, and
 * exact `presence/<userId>` filters (the only ones the ACL grants there) are answered from the
 * store. Every other topic goes to Aedes persistence as before. Live edges are unchanged: the
 * presence service still publishes them with the retain flag, which Aedes clears for
 * subscribers already subscribed.
 */
import { Readable } from 'node:stream'
import type { Logger } from '../services/core/logger.js'
import { parseTopic, topics } from '../services/core/topics.js'
import type { PresenceDoc } from '../services/presence/types.js'
import { overriding } from './persistence-overrides.js'

/** The presence store's documents (null: never seen online). */
export type DocReader = (userIds: string[]) => Promise<Array<PresenceDoc | null>>

interface RetainedPackets {
  storeRetained(packet: { topic: string }, cb?: (err: Error | null) => void): Promise<void> | undefined
  createRetainedStreamCombi(patterns: string[]): Readable
}

interface RetainedPacket {
  cmd: 'publish'
  topic: string
  payload: Buffer
  qos: 0
  retain: true
}

export function presenceFromStore<T extends object>(persistence: T, docs: DocReader, log: Logger): T {
  const p = persistence as unknown as RetainedPackets
  async function* fromStore(userIds: string[], others: string[]): AsyncGenerator<unknown> {
    if (others.length > 0) yield* p.createRetainedStreamCombi(others)
    let found: Array<PresenceDoc | null>
    try {
      found = await docs(userIds)
    } catch (err) {
      // the subscription stands; its first document comes with the user's next edge
      log.warn(
        { component: 'presence-retained', err: (err as Error).message },
        'could not read presence documents',
      )
      return
    }
    for (const doc of found) {
      if (!doc) continue
      const packet: RetainedPacket = {
        cmd: 'publish',
        topic: topics.presence(doc.userId),
        payload: Buffer.from(JSON.stringify(doc)),
        qos: 0,
        retain: true,
      }
      yield packet
    }
  }
  return overriding(persistence, {
    storeRetained: (packet: { topic: string }, cb?: (err: Error | null) => void) => {
      if (!packet.topic.startsWith('presence/')) return p.storeRetained(packet, cb)
      if (cb) process.nextTick(cb, null)
      else return Promise.resolve()
    },
    createRetainedStreamCombi: (patterns: string[]) => {
      const userIds: string[] = []
      const others: string[] = []
      for (const pattern of patterns) {
        const parsed = parseTopic(pattern)
        if (parsed.kind === 'presence') userIds.push(parsed.userId)
        else others.push(pattern)
      }
      if (userIds.length === 0) return p.createRetainedStreamCombi(patterns)
      return Readable.from(fromStore(userIds, others))
    },
  })
}
