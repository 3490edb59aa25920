/**
 * Aedes persistence with some of its methods replaced: Herald's wrappers (bounded memory
 * queues, one addSubscriptions per SUBSCRIBE, presence documents from the store) are each a
 * few methods over the persistence Aedes is given. Every other property is the persistence's
 * own, its methods bound to it.
 */
/** Any method: each replacement keeps the signature Aedes calls it with. */
type Method = (...args: never[]) => unknown

/**
 * Herald owns wills (DESIGN.md): preConnect takes the will off every CONNECT, so Aedes never
 * stores one and its will storage stays empty. Aedes still deletes "the" stored will of every
 * client that connects — with aedes-persistence-redis three Redis commands per connect (`LREM`
 * on the list of every will, `GET`, `DEL`), under a key named after `client.brokerId`, which
 * Aedes's clients do not have. Here that deletion finds what there is: nothing.
 */
export function withoutWills<T extends object>(persistence: T): T {
  return overriding(persistence, { delWill: async () => null })
}

export function overriding<T extends object>(persistence: T, overrides: Record<string, Method>): T {
  // each method bound once: Aedes reads one per packet (QoS 1: enqueue, clear on PUBACK)
  const bound = new Map<PropertyKey, { of: unknown; fn: unknown }>()
  return new Proxy(persistence, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && Object.hasOwn(overrides, prop)) return overrides[prop]
      const value = Reflect.get(target, prop, receiver) as unknown
      if (typeof value !== 'function') return value
      const hit = bound.get(prop)
      if (hit?.of === value) return hit.fn
      const fn = value.bind(target)
      bound.set(prop, { of: value, fn })
      return fn
    },
  })
}
