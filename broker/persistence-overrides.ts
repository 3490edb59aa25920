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

/** What each proxy `overriding` made wraps: wrapping one again wraps its target once. */
const layers = new WeakMap<object, { target: object; overrides: Map<PropertyKey, Method> }>()

export function overriding<T extends object>(persistence: T, overrides: Record<string, Method>): T {
  // A proxy over a proxy pays both traps on every read (three layers: ~440 ns per method read,
  // several reads per QoS 1 message); the outer overrides over the inner ones are the same
  // object in one layer. An inner override still calls what it captured.
  const inner = layers.get(persistence)
  const target = inner?.target ?? persistence
  const own = new Map<PropertyKey, Method>(inner?.overrides)
  for (const [name, fn] of Object.entries(overrides)) own.set(name, fn)
  // each method bound once: Aedes reads one per packet (QoS 1: enqueue, clear on PUBACK)
  const bound = new Map<PropertyKey, { of: unknown; fn: unknown }>()
  const proxy = new Proxy(target, {
    get(target, prop, receiver) {
      const override = own.get(prop)
      if (override !== undefined) return override
      const value = Reflect.get(target, prop, receiver) as unknown
      if (typeof value !== 'function') return value
      const hit = bound.get(prop)
      if (hit?.of === value) return hit.fn
      const fn = value.bind(target)
      bound.set(prop, { of: value, fn })
      return fn
    },
  })
  layers.set(proxy, { target, overrides: own })
  return proxy as T
}
