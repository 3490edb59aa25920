/**
 * Wills, owned by Herald (DESIGN.md: Aedes's own will handling publishes duplicates, loses
 * takeovers' wills and can crash the broker).The access node strips the will at CONNECT, validates it
 * and sends it with the connection's event, so it is stored before any end of that connection
 * is seen; the presence service keeps it here under the fence token and publishes it at most
 * once when the connection ends without a DISCONNECT (or its node dies), and drops it on
 * logout, takeover and graceful shutdown. A due will is read, published, and only then
 * dropped: a service killed in between leaves it for the next one, which publishes it again
 * under the same id — a repeat the message store de-duplicates — so it is never lost.
 */
import type { Redis } from 'ioredis'
import { parseFenceToken, type StoredWill } from '../presence/types.js'

export type { StoredWill }

export interface WillStore {
  put(nodeId: string, token: string, will: StoredWill): Promise<void>
  /**
   * The wills kept for these connections, left in place: the caller publishes them and only
   * then drops them, so a caller that dies in between leaves them for its successor (a will
   * published twice is the same message, de-duplicated by its id), never lost.
   */
  peek(nodeId: string, tokens: string[]): Promise<KeptWill[]>
  /** Every will kept for a node's connections whose epoch is below `belowEpoch`, left in place. */
  peekNode(nodeId: string, belowEpoch: number): Promise<KeptWill[]>
  drop(nodeId: string, tokens: string[]): Promise<void>
  /** The tokens of every will kept for a node's connections. */
  tokens(nodeId: string): Promise<string[]>
}

/** A will and the fence token of the connection it belongs to. */
export interface KeptWill {
  token: string
  will: StoredWill
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
  async peek(nodeId: string, tokens: string[]) {
    const wills = this.byNode.get(nodeId)
    const out: KeptWill[] = []
    for (const token of tokens) {
      const will = wills?.get(token)
      if (will) out.push({ token, will })
    }
    return out
  }
  async peekNode(nodeId: string, belowEpoch: number) {
    const tokens = [...(this.byNode.get(nodeId)?.keys() ?? [])].filter(
      (t) => (parseFenceToken(t)?.epoch ?? 0) < belowEpoch,
    )
    return this.peek(nodeId, tokens)
  }
  async drop(nodeId: string, tokens: string[]) {
    const wills = this.byNode.get(nodeId)
    for (const t of tokens) wills?.delete(t)
  }
  async tokens(nodeId: string) {
    return [...(this.byNode.get(nodeId)?.keys() ?? [])]
  }
}

/** Keys: `wills:{<nodeId>}` hash token -> json. */
export class RedisWillStore implements WillStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}
  private key = (nodeId: string) => `${this.prefix}wills:{${nodeId}}`
  async put(nodeId: string, token: string, will: StoredWill) {
    await this.redis.hset(this.key(nodeId), token, JSON.stringify(will))
  }
  async peek(nodeId: string, tokens: string[]) {
    if (tokens.length === 0) return []
    const values = await this.redis.hmget(this.key(nodeId), ...tokens)
    const out: KeptWill[] = []
    values.forEach((json, i) => {
      if (json) out.push({ token: tokens[i]!, will: JSON.parse(json) as StoredWill })
    })
    return out
  }
  async tokens(nodeId: string) {
    return this.redis.hkeys(this.key(nodeId))
  }
  async peekNode(nodeId: string, belowEpoch: number) {
    const tokens = (await this.tokens(nodeId)).filter((t) => (parseFenceToken(t)?.epoch ?? 0) < belowEpoch)
    return this.peek(nodeId, tokens)
  }
  async drop(nodeId: string, tokens: string[]) {
    if (tokens.length > 0) await this.redis.hdel(this.key(nodeId), ...tokens)
  }
}
