/**
 * resync (Herald only, Redis): one access node holding N connections, and the presence service
 * in its own process. The service is SIGKILLed and restarted — warm (Redis kept its data) and
 * cold (Redis flushed first, so every record is gone) — and we time the re-sync of the node's
 * whole online set: from the restart until the service logs `node re-synced` and the store
 * counts all N again.
 */
import { Redis } from 'ioredis'
import { now } from '../histogram.js'
import { connections, SplitHerald, until } from './children.js'
import { type Row, round, type ScenarioOptions, type ScenarioResult } from './common.js'

export async function resyncScenario(_targets: unknown[], opts: ScenarioOptions): Promise<ScenarioResult> {
  const rows: Row[] = []
  const split = await SplitHerald.start(opts.n, opts.workers, 'rs', opts.virtual)
  try {
    for (const kind of ['warm', 'cold'] as const) {
      await split.presence.kill()
      if (kind === 'cold') {
        const r = new Redis(split.redis.url)
        await r.flushall()
        r.disconnect()
      }
      const t0 = now()
      const { readyAt, picked } = await split.startPresence(
        (l) => l.msg === 'node re-synced' && l.nodeId === 'bench-n1',
      )
      const line = await picked!
      const resyncedAt = now()
      const complete = await until(
        async () => (await connections(split.httpUrl, split.service)) === split.online,
        60_000,
      )
      rows.push({
        target: 'herald-redis',
        case: kind,
        connections: split.online,
        restartToResyncedMs: round(resyncedAt - t0),
        upToResyncedMs: round(resyncedAt - readyAt),
        snapshotMs: Number(line.ms ?? 0),
        storeMs: Number(line.storeMs ?? 0),
        publishMs: Number(line.publishMs ?? 0),
        shortcut: typeof line.shortcut === 'string' ? line.shortcut : 'none',
        storeComplete: complete ? 'yes' : 'no',
      })
    }
    await split.pool.closeClients()
  } finally {
    await split.stop()
  }
  return {
    scenario: 'resync',
    params: { connections: opts.n, virtual: opts.virtual ?? false, workers: opts.workers },
    rows,
    notes: [
      'restartToResynced: SIGKILLed presence service restarted -> "node re-synced" (includes process start)',
      'upToResynced: the new service ready -> "node re-synced"; snapshotMs: the service\'s check or replacement (snapshot begin -> done), of which storeMs writing the store and publishMs publishing the edges',
      "shortcut digest: the store already held exactly the node's set (count and digest agree), nothing replaced",
      'warm: Redis kept its data; cold: Redis flushed before the restart (every record rebuilt)',
    ],
  }
}
