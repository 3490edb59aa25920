/**
 * Aedes persistence with some of its methods replaced: Herald's wrappers (bounded memory
 * queues, one addSubscriptions per SUBSCRIBE, presence documents from the store) are each a
 * few methods over the persistence Aedes is given. Every other property is the persistence's
 * own, its methods bound to it.
 */
/** Any method: each replacement keeps the signature Aedes calls it with. */
type Method = (...args: never[]) => unknown

export function overriding<T extends object>(persistence: T, overrides: Record<string, Method>): T {
  return new Proxy(persistence, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && Object.hasOwn(overrides, prop)) return overrides[prop]
      const value = Reflect.get(target, prop, receiver) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
