/**
 * Wills, owned by Herald (DESIGN.md: Aedes's own will handling publishes duplicates, loses
 * takeovers' wills and can crash the broker).The access node strips the will at CONNECT, validates it
 * and sends it with the connection's event, so it is stored before any end of that connection
 * is seen; the presence service keeps it here under the fence token and publishes it at most
 * once — *taking* it is atomic — when the connection ends without a DISCONNECT (or its node
 * dies), and drops it on logout, takeover and graceful shutdown.
 */
import type { Redis, Result } from 'ioredis'
import { defineScripts, readScripts, sourceAsset } from '../core/redis.js'
import { parseFenceToken, type StoredWill } from '../presence/types.js'

export type { StoredWill }

export interface WillStore {
  put(nodeId: string, token: string, will: StoredWill): Promise<void>
  /** Takes the wills of these connections (each is returned to exactly one caller). */
  take(nodeId: string, tokens: string[]): Promise<StoredWill[]>
  /** Takes every will of a node's connections whose epoch is below `belowEpoch`. */
  takeNode(nodeId: string, belowEpoch: number): Promise<StoredWill[]>
  drop(nodeId: string, tokens: string[]): Promise<void>
  /** The tokens of every will kept for a node's connections. */
  tokens(nodeId: string): Promise<string[]>
}

export class MemoryWillStore implements WillStore {
  private readonly byNode = new Map<string, Map<string, StoredWill>>()
  async put(nodeId: string, token: string, will: StoredWill) {
    let wills = this.byNode.get(nodeId)
    if (!wills) {
      wills = new Map()
      this.byNode.set(nodeId, wills)
    }
    wills.set(token, will)
  }
  async take(nodeId: string, tokens: string[]) {
    const wills = this.byNode.get(nodeId)
    const out: StoredWill[] = []
    for (const t of tokens) {
      const w = wills?.get(t)
      if (w && wills?.delete(t)) out.push(w)
    }
    return out
  }
  async takeNode(nodeId: string, belowEpoch: number) {
    const tokens = [...(this.byNode.get(nodeId)?.keys() ?? [])].filter(
      (t) => (parseFenceToken(t)?.epoch ?? 0) < belowEpoch,
    )
    return this.take(nodeId, tokens)
  }
  async drop(nodeId: string, tokens: string[]) {
    const wills = this.byNode.get(nodeId)
    for (const t of tokens) wills?.delete(t)
  }
  async tokens(nodeId: string) {
    return [...(this.byNode.get(nodeId)?.keys() ?? [])]
  }
}

const SCRIPT_VERSION = 1

declare module 'ioredis' {
  interface RedisCommander<Context> {
    heraldTakeV1(wills: string, ...tokens: string[]): Result<string[], Context>
  }
}

/** Keys: `wills:{<nodeId>}` hash token -> json. */
export class RedisWillStore implements WillStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    defineScripts(redis, readScripts(sourceAsset(import.meta.url, './scripts/'), SCRIPT_VERSION, 'herald'))
  }
  private key = (nodeId: string) => `${this.prefix}wills:{${nodeId}}`
  async put(nodeId: string, token: string, will: StoredWill) {
    await this.redis.hset(this.key(nodeId), token, JSON.stringify(will))
  }
  async take(nodeId: string, tokens: string[]) {
    if (tokens.length === 0) return []
    const flat = await this.redis.heraldTakeV1(this.key(nodeId), ...tokens)
    const out: StoredWill[] = []
    for (let i = 1; i < flat.length; i += 2) out.push(JSON.parse(flat[i]!) as StoredWill)
    return out
  }
  async tokens(nodeId: string) {
    return this.redis.hkeys(this.key(nodeId))
  }
  async takeNode(nodeId: string, belowEpoch: number) {
    const tokens = (await this.tokens(nodeId)).filter((t) => (parseFenceToken(t)?.epoch ?? 0) < belowEpoch)
    return this.take(nodeId, tokens)
  }
  async drop(nodeId: string, tokens: string[]) {
    if (tokens.length > 0) await this.redis.hdel(this.key(nodeId), ...tokens)
  }
}
