// aedes-persistence-redis ships no types: the part Herald uses.
declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis'

  interface AedesPersistenceRedisOptions {
    conn?: Redis
    /** Offline messages delivered on CONNECT (default 1000). */
    maxSessionDelivery?: number
    /** Seconds an offline message lives (0 = forever). */
    packetTTL?: (packet: unknown) => number
  }
  function aedesPersistenceRedis(opts?: AedesPersistenceRedisOptions): unknown
  export default aedesPersistenceRedis
}
