/**
 * idle --virtual: N idle connections on one server over in-memory streams (virtual.ts), for N
 * past the open-files limit that caps TCP on this machine. Each server runs in its own
 * process with its clients' stubs: Herald (`--mode memory`: everything in one process;
 * `redis`: the access node and the presence service in one process over Redis), bare Aedes
 * (the same plugins), and the stubs alone, whose cost per connection is subtracted from the
 * others. Resident memory is read after a full GC, before and after connecting.
 */
import { HeraldChild, openBoundMs, SECRET, startRedis } from './children.js'
import { type Row, round, type ScenarioOptions, type ScenarioResult } from './common.js'

type Server = 'herald' | 'aedes' | 'none'

export async function idleVirtualScenario(
  _targets: unknown[],
  opts: ScenarioOptions,
): Promise<ScenarioResult> {
  const mode = opts.mode ?? 'memory'
  const rows: Row[] = []
  const servers: Server[] = ['none', 'herald', 'aedes'].filter(
    (s) => s === 'none' || !opts.only || opts.only.includes(s),
  ) as Server[]
  let stubKiB = 0
  let stubHeapKiB = 0
  for (const server of servers) {
    const redis = mode === 'redis' && server !== 'none' ? await startRedis() : undefined
    const child = HeraldChild.start('virtual', {
      VIRTUAL_SERVER: server,
      VIRTUAL_MODE: 'all',
      VIRTUAL_N: String(opts.n),
      VIRTUAL_PREFIX: 'iv',
      VIRTUAL_SECRET: SECRET,
      HERALD_MQTT_PORT: '0',
      HERALD_WS_PORT: '0',
      HERALD_HTTP_PORT: '0',
      HERALD_LOG_LEVEL: 'warn',
      ...(redis
        ? { HERALD_REDIS_URL: redis.url, HERALD_NODE_ID: 'bench-virtual', BASELINE_REDIS_URL: redis.url }
        : {}),
    })
    try {
      const line = await child.line((l) => l.msg === 'virtual clients connected', openBoundMs(opts.n))
      const connected = Number(line.connected)
      const before = Number(line.rssBeforeKiB)
      const after = Number(line.rssAfterKiB)
      const perConn = connected > 0 ? (after - before) / connected : 0
      const heapPerConn =
        connected > 0 ? (Number(line.heapAfterKiB) - Number(line.heapBeforeKiB)) / connected : 0
      if (server === 'none') {
        stubKiB = perConn
        stubHeapKiB = heapPerConn
      }
      rows.push({
        target: server === 'none' ? 'stubs-only' : `${server}-${mode}`,
        connections: connected,
        failed: Number(line.failed),
        rssBeforeMiB: round(before / 1024),
        rssAfterMiB: round(after / 1024),
        rawKibPerConnection: round(perConn, 2),
        kibPerConnection: server === 'none' ? null : round(perConn - stubKiB, 2),
        heapKibPerConnection: server === 'none' ? null : round(heapPerConn - stubHeapKiB, 2),
        extrapolated100kMiB:
          server === 'none' ? null : round((before + 100_000 * (perConn - stubKiB)) / 1024),
        connectSeconds: round(Number(line.ms) / 1000),
      })
    } finally {
      await child.stop()
      await redis?.destroy()
    }
  }
  return {
    scenario: 'idle',
    params: { n: opts.n, virtual: true, mode },
    rows,
    notes: [
      'connections over in-memory stream pairs in the server process (no sockets): the open-files limit caps TCP at ~19,000 here',
      'kibPerConnection = (RSS after - before) / connections, after a full GC, minus the stubs-only cost per connection (the pairs and client stubs)',
      'extrapolated100kMiB = RSS before + 100,000 x kibPerConnection (what 100k would cost the server; kernel socket buffers are not in RSS either way)',
      'heapKibPerConnection: the same for the JS heap in use (live objects only; RSS also holds old-space pages the connect burst left committed)',
    ],
  }
}
