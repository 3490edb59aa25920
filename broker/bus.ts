/**
 * The bus Aedes routes through (mqemitter in one process, mqemitter-redis across nodes), wrapped:
 * - packets re-routed to the void topic (refused or duplicate publishes, acknowledged but meant
 *   for nobody) stop here instead of crossing the cluster;
 * - Aedes's own cross-node takeover listener (`closeSameClients` on `$SYS/+/new/clients`) is
 *   dropped, and its topic not subscribed: it closes whichever local client hears another
 *   node's announcement, so two CONNECTs racing on two nodes can both be closed. Herald orders
 *   them by claim instead (services/cluster/claims.ts, AccessNode).
 * - every subscription and its end are reported to `watch` (the node's lifecycle-event demand,
 *   broker/lifecycle.ts): Aedes subscribes each client's filter here, restored sessions too.
 */
import mqemitter from 'mqemitter'
import { topics } from '../services/core/topics.js'
import type { MQEmitter } from './node.js'

/** Told of every subscription made through the bus and of its end. */
export interface SubscriptionWatch {
  subscribed(topic: string, listener: unknown): void
  unsubscribed(listener: unknown): void
}

export function voidingEmitter(inner: MQEmitter | undefined, watch?: SubscriptionWatch): MQEmitter {
  // [MQTT-4.7.1-3] empty levels match, as Aedes's default emitter does. No concurrency limit
  // (mqemitter-redis has none either): with one, a burst queues messages, and mqemitter drains
  // its queue recursively — each queued message whose listeners answer at once (or that has
  // none, like most $SYS mirrors) adds stack frames — until `Maximum call stack size
  // exceeded` kills the process (measured: 5,000 connects at full speed; mqemitter PR #204).
  const mq: MQEmitter =
    inner ?? (mqemitter({ concurrency: 0, matchEmptyLevels: true }) as unknown as MQEmitter)
  return new Proxy(mq, {
    get(target, prop, receiver) {
      if (prop === 'emit') {
        return (packet: { topic?: string }, cb?: (err?: Error) => void) => {
          if (packet.topic === topics.void) {
            cb?.()
            return
          }
          return target.emit(packet, cb)
        }
      }
      if (prop === 'on') {
        return (topic: string, listener: { name?: string }, done?: () => void) => {
          if (topic === '$SYS/+/new/clients' && listener.name === 'closeSameClients') {
            // not subscribed at all: a no-op listener still had every process on the bus
            // receive and decode every connect's announcement from every node
            if (done) process.nextTick(done)
            return receiver
          }
          watch?.subscribed(topic, listener)
          return target.on(topic, listener as Parameters<MQEmitter['on']>[1], done)
        }
      }
      if (prop === 'removeListener' && watch) {
        return (topic: string, listener: unknown, done?: () => void) => {
          watch.unsubscribed(listener)
          return target.removeListener(topic, listener, done)
        }
      }
      const value = Reflect.get(target, prop, receiver) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
