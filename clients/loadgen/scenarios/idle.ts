/**
 * idle: N idle connections on one server; its resident memory per connection. Spread over
 * loopback source addresses and worker processes.
 */
import { FD_LIMIT, fdLimitNote, WorkerPool } from '../pool.js'
import type { Target } from '../targets.js'
import { type Row, round, type ScenarioOptions, type ScenarioResult, specsFor } from './common.js'

export async function idleScenario(targets: Target[], opts: ScenarioOptions): Promise<ScenarioResult> {
  const rows: Row[] = []
  const notes: string[] = []
  const fd = fdLimitNote(FD_LIMIT)
  if (fd) notes.push(fd)
  for (const target of targets) {
    const specs = await specsFor(target, 'idle', opts.n)
    const pool = WorkerPool.start(opts.workers)
    try {
      await new Promise((r) => setTimeout(r, 500)) // let the server settle before measuring
      const before = target.rssKiB()
      const opened = await pool.open(target.url, specs, { concurrency: 200, keepalive: 600 })
      await new Promise((r) => setTimeout(r, 2000)) // memory after the burst settles
      const after = target.rssKiB()
      const held = opts.n - opened.failed
      rows.push({
        target: target.name,
        connections: held,
        failed: opened.failed,
        rssBeforeMiB: round(before / 1024),
        rssAfterMiB: round(after / 1024),
        kibPerConnection: held > 0 ? round((after - before) / held, 2) : null,
        connectSeconds: round(opened.elapsedMs / 1000),
      })
      await pool.closeClients()
    } finally {
      pool.stop()
    }
  }
  return { scenario: 'idle', params: { n: opts.n, workers: opts.workers }, rows, notes }
}
