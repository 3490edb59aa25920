/**
 * Bare Aedes as the bench's baseline: no hooks, and with a Redis URL the same mqemitter-redis
 * and aedes-persistence-redis as Herald's Redis mode, on connections set up as Herald sets up
 * its own (auto-pipelining on, except on the subscriber).
 */
import { Aedes } from 'aedes'
import aedesPersistenceRedis from 'aedes-persistence-redis'
import { Redis } from 'ioredis'
import mqemitterRedis from 'mqemitter-redis'

export async function bareAedes(redisUrl: string | undefined): Promise<Aedes> {
  const broker = await Aedes.createBroker(
    redisUrl
      ? {
          mq: mqemitterRedis({
            subConn: new Redis(redisUrl),
            pubConn: new Redis(redisUrl, { enableAutoPipelining: true }),
          }),
          persistence: aedesPersistenceRedis({ conn: new Redis(redisUrl, { enableAutoPipelining: true }) }),
        }
      : {},
  )
  // a baseline that dies on a storage error would measure nothing
  ;(broker as unknown as NodeJS.EventEmitter).on('error', () => {})
  return broker
}
