/**
 * The bus Aedes routes through (mqemitter in one process, mqemitter-redis across nodes),
 * wrapped so that packets re-routed to the void topic (refused or duplicate publishes, which
 * are acknowledged but must reach nobody) stop here instead of crossing the cluster.
 */
import mqemitter from 'mqemitter'
import { topics } from '../services/core/topics.js'
import type { MQEmitter } from './node.js'

export function voidingEmitter(inner: MQEmitter | undefined): MQEmitter {
  // [MQTT-4.7.1-3] empty levels match, as Aedes's default emitter does
  const mq: MQEmitter =
    inner ?? (mqemitter({ concurrency: 100, matchEmptyLevels: true }) as unknown as MQEmitter)
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
      const value = Reflect.get(target, prop, receiver) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
