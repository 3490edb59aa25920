/**
 * SessionStorage for the two Aedes persistences Herald runs on: aedes-persistence (memory)
 * and aedes-persistence-redis. Both are used only through their public methods, except the
 * Redis queue key (`outgoing:<clientId>`), which aedes-persistence-redis documents in its code.
 */
import type { Redis } from 'ioredis'
import { overriding } from './persistence-overrides.js'
import type { MemorySessionRegistry, SessionStorage } from './sessions.js'

interface PersistenceLike {
  cleanSubscriptions(client: { id: string }): Promise<void>
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: unknown): Promise<void>
  outgoingStream(client: { id: string }): AsyncIterable<{ messageId?: number }>
  outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<unknown>
}

/** aedes-persistence-redis: queues are Redis lists, trimmed in place. */
export function redisSessionStorage(persistence: unknown, redis: Redis): SessionStorage {
  const p = persistence as PersistenceLike
  const queue = (clientId: string) => `outgoing:${encodeURIComponent(clientId)}`
  return {
    cleanSubscriptions: (client) => p.cleanSubscriptions(client),
    dropQueue: async (clientId) => {
      await redis.del(queue(clientId))
    },
    trimQueues: async (clientIds, max) => {
      // one round trip per page of sessions; LTRIM keeps the oldest `max`, the ones it missed first
      const pipeline = redis.pipeline()
      for (const clientId of clientIds) pipeline.ltrim(queue(clientId), 0, max - 1)
      for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err
    },
  }
}

/**
 * aedes-persistence (memory): its queues are private arrays, so the bound is kept at the door —
 * an offline session stops receiving queued messages once it holds `max` — and a dropped
 * session's queue is emptied packet by packet through the public API.
 * Returns the wrapped persistence to give Aedes, and its SessionStorage.
 */
export function boundedMemoryPersistence(
  persistence: unknown,
  registry: MemorySessionRegistry,
  max: number,
): { persistence: unknown; storage: SessionStorage } {
  const p = persistence as PersistenceLike
  // What waits in an offline session's queue, for one absence. A counter of what was let in
  // alone outlived the absence (a session that came back, drained its queue and left again with
  // no message in between kept its old count, and lost messages it had room for); so the first
  // message of each absence reads the queue once — what the device left unacknowledged still
  // counts — and the count goes on from there, as Redis mode's trim measures the list itself.
  const waiting = new Map<string, { absence: number; n: number }>()
  const count = async (clientId: string) => {
    let n = 0
    for await (const _packet of p.outgoingStream({ id: clientId })) n += 1
    return n
  }
  const enqueue = async (subs: Array<{ clientId: string }>, packet: unknown) => {
    const kept: Array<{ clientId: string }> = []
    for (const sub of subs) {
      const absence = registry.absence(sub.clientId)
      if (absence === undefined) {
        waiting.delete(sub.clientId)
        kept.push(sub) // connected: the in-flight copy of a live delivery
        continue
      }
      let entry = waiting.get(sub.clientId)
      if (entry?.absence !== absence) {
        const n = await count(sub.clientId)
        if (registry.absence(sub.clientId) !== absence) {
          kept.push(sub) // it came back while its queue was read: a live delivery's copy
          continue
        }
        entry = { absence, n }
        waiting.set(sub.clientId, entry)
      }
      if (entry.n >= max) continue // offline and full: it catches up by offset
      entry.n += 1
      kept.push(sub)
    }
    await p.outgoingEnqueueCombi(kept, packet)
  }
  // One enqueue at a time, in the order Aedes calls them: reading a queue is asynchronous, and a
  // packet must neither overtake an earlier one nor be missed by a count taken while it lands.
  let tail: Promise<unknown> = Promise.resolve()
  const wrapped = overriding(p, {
    outgoingEnqueueCombi: (subs: Array<{ clientId: string }>, packet: unknown) => {
      const done = tail.then(() => enqueue(subs, packet))
      tail = done.catch(() => {}) // the caller gets the error; the next enqueue still runs
      return done
    },
  })
  return {
    persistence: wrapped,
    storage: {
      cleanSubscriptions: (client) => p.cleanSubscriptions(client),
      dropQueue: async (clientId) => {
        waiting.delete(clientId)
        const packets: Array<{ messageId?: number }> = []
        for await (const packet of p.outgoingStream({ id: clientId })) packets.push(packet)
        for (const packet of packets)
          await p.outgoingClearMessageId({ id: clientId }, { messageId: packet.messageId })
      },
      trimQueues: async () => {}, // bounded at enqueue time
    },
  }
}

/**
 * Aedes 1.2 + aedes-persistence-redis: a SUBSCRIBE with several topics from a persistent session
 * calls `addSubscriptions(client, allTopics)` once per topic, concurrently. The broadcast layer
 * waits for its own `$SYS/sub/add` echo keyed by (client, first topic), so the second call
 * replaces the first one's waiter and the SUBSCRIBE never completes (no SUBACK, measured).
 * The calls carry the same array, so the first call's promise serves them all.
 */
export function oneAddPerSubscribe<T extends object>(persistence: T): T {
  const p = persistence as unknown as { addSubscriptions(client: unknown, subs: object): Promise<unknown> }
  const inFlight = new WeakMap<object, Promise<unknown>>()
  return overriding(persistence, {
    addSubscriptions: (client: unknown, subs: object) => {
      const running = inFlight.get(subs)
      if (running) return running
      const call = p.addSubscriptions(client, subs)
      inFlight.set(subs, call)
      return call
    },
  })
}
