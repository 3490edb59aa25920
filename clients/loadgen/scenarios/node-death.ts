/**
 * node-death (Herald only, Redis): one access node holding N connections is SIGKILLed; the
 * presence service in its own process must declare it dead from its missing heartbeats and
 * take its connections offline (a SIGKILLed process's Redis connection goes with it: dead after
 * 1.5 heartbeats, not 3). Times, from the kill: the service's `node is dead` line, the
 * store counting no connection, and every user offline. The goal
 * (DESIGN.md): dead within 3 heartbeats + 1 s. Run twice: the node alone, and with a second
 * (empty) node left alive, as in a cluster.
 */
import { SplitHerald, storeStats, until } from './children.js'
import { type Row, round, type ScenarioOptions, type ScenarioResult } from './common.js'

export async function nodeDeathScenario(_targets: unknown[], opts: ScenarioOptions): Promise<ScenarioResult> {
  const rows: Row[] = []
  const boundMs = 3 * SplitHerald.HEARTBEAT_MS + 1000
  // alone: nothing can hold a reconnection, the sweep takes everyone offline; with a live node
  // left (a cluster): the sweep waits until that node's log is read past the death
  for (const survivors of [0, 1]) {
    const split = await SplitHerald.start(opts.n, opts.workers, 'nd', opts.virtual)
    try {
      if (survivors > 0) await split.startSpareNode()
      const dead = split.presence.line((l) => l.msg === 'node is dead; its connections go offline', 60_000)
      const killedAt = Date.now()
      await split.node.kill()
      const declared = await dead
      const declaredMs = Number(declared.time) - killedAt
      let storeEmptyMs = -1
      const allOffline = await until(async () => {
        const s = await storeStats(split.httpUrl, split.service)
        if (!s) return false
        if (s.connections === 0 && storeEmptyMs < 0) storeEmptyMs = Date.now() - killedAt
        return s.connections === 0 && s.onlineUsers === 0
      }, 60_000)
      const allOfflineMs = Date.now() - killedAt
      rows.push({
        target: 'herald-redis',
        liveNodesLeft: survivors,
        connections: split.online,
        heartbeatMs: SplitHerald.HEARTBEAT_MS,
        boundMs,
        declaredDeadMs: round(declaredMs),
        // the node's silence when the service declared it, and by which rule: its log connection
        // gone from Redis (after 1.5 heartbeats) or 3 heartbeats of silence
        silentMs: round(Number(declared.silentMs)),
        cause: String(declared.cause),
        storeEmptyMs: round(storeEmptyMs),
        allOfflineMs: allOffline ? round(allOfflineMs) : -1,
        // the goal is about the users (offline with node-lost), not only the declaration
        withinBound: allOffline && allOfflineMs <= boundMs ? 'yes' : 'no',
        allOffline: allOffline ? 'yes' : 'no',
      })
      await split.pool.closeClients()
    } finally {
      await split.stop()
    }
  }
  return {
    scenario: 'node-death',
    params: {
      connections: opts.n,
      virtual: opts.virtual ?? false,
      workers: opts.workers,
      heartbeatMs: SplitHerald.HEARTBEAT_MS,
    },
    rows,
    notes: [
      'from SIGKILL of the access node: declaredDead = the service logs "node is dead"; storeEmpty = the store counts 0 connections; allOffline = and 0 online users',
      'silentMs, cause: the silence the service logged when it declared the node dead, and why (connection-gone: its log connection left Redis, after 1.5 heartbeats; silent: 3 heartbeats)',
      "liveNodesLeft 1: a second node without clients stays up, so the dead node's users go offline once its log is read past the death (the cluster path)",
      `bound (DESIGN.md): 3 heartbeats + 1 s = ${boundMs} ms; withinBound: every user offline within it`,
    ],
  }
}
