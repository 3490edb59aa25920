/**
 * Runs a suite against Herald in both backends: memory, and Redis (a redis-server of the suite's
 * own, flushed before each test). `fx.h` is a fresh in-process Herald per test; clients opened
 * through `fx.client()` are closed after it.
 */
import type { MqttClient } from 'mqtt'
import type { HeraldConfig } from '../../services/core/config.js'
import type { PresenceView } from '../../services/presence/types.js'
import { startTestHerald, type TestHerald } from './herald.js'
import { http } from './http.js'
import { connectClient, type TestClientOptions } from './mqtt.js'
import { RedisServer } from './redis.js'
import { eventually } from './wait.js'

export type Mode = 'memory' | 'redis'
export const MODES: readonly Mode[] = ['memory', 'redis']

export interface ModeFixture {
  mode: Mode
  h: TestHerald
  redis: RedisServer | undefined
  client(userId: string, deviceId: string, opts?: TestClientOptions & { url?: string }): Promise<MqttClient>
  /** Presence of a user over HTTP, with a service token. */
  presence(userId: string): Promise<PresenceView>
  /** Restarts Herald (same backend, same Redis), e.g. after a test closed it. */
  restart(overrides?: Partial<HeraldConfig>): Promise<void>
  /**
   * Waits until an offline session's queue holds `n` packets (Redis mode: the PUBACK comes
   * before routing, so a test that counts on the queue waits for it; memory mode: at once).
   */
  queued(clientId: string, n: number): Promise<void>
  /**
   * Ends a client and waits for its user's offline edge — online first, since "offline" of a
   * user the service has not applied yet is no edge (and messages could still reach it live).
   */
  goOffline(c: MqttClient, userId: string): Promise<void>
}

export function withHerald(mode: Mode, overrides: Partial<HeraldConfig> = {}): ModeFixture {
  const clients: MqttClient[] = []
  const config = (): Partial<HeraldConfig> => ({
    connectTimeoutMs: 1000,
    ...(mode === 'redis' ? { redisUrl: fx.redis!.url, nodeId: 'n1' } : {}),
    ...overrides,
  })
  const fx: ModeFixture = {
    mode,
    h: undefined as unknown as TestHerald,
    redis: undefined,
    async client(userId, deviceId, opts = {}) {
      const c = await connectClient(opts.url ?? fx.h.mqttUrl, userId, deviceId, opts)
      clients.push(c)
      return c
    },
    async presence(userId) {
      const res = await http(fx.h.httpUrl, `/v1/presence/${userId}`, {
        token: await fx.h.token('ops', { role: 'service' }),
      })
      if (res.status !== 200) throw new Error(`presence ${res.status}`)
      return res.body as PresenceView
    },
    async restart(more = {}) {
      await fx.h.close()
      fx.h = await startTestHerald({ ...config(), ...more })
    },
    async goOffline(c, userId) {
      await eventually(async () => (await fx.presence(userId)).online, { what: `${userId} online` })
      c.end()
      await eventually(async () => !(await fx.presence(userId)).online, { what: `${userId} offline` })
    },
    async queued(clientId, n) {
      if (!fx.redis) return
      const { Redis } = await import('ioredis')
      const r = new Redis(fx.redis.url)
      try {
        const key = `outgoing:${encodeURIComponent(clientId)}` // aedes-persistence-redis's queue
        await eventually(async () => ((await r.llen(key)) === n ? true : undefined), {
          what: `${n} queued for ${clientId}`,
        })
      } finally {
        r.disconnect()
      }
    },
  }
  before(async () => {
    if (mode === 'redis') fx.redis = await RedisServer.start()
  })
  after(async () => {
    await fx.redis?.destroy()
  })
  beforeEach(async () => {
    if (fx.redis) {
      const { Redis } = await import('ioredis')
      const r = new Redis(fx.redis.url)
      await r.flushall()
      r.disconnect()
    }
    fx.h = await startTestHerald(config())
  })
  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true)
    await fx.h.close()
  })
  return fx
}
