/**
 * churn: N clients connect, log out and drop at random for a while. The generator's
 * operations per second against each system, and for Herald the presence events the presence
 * service applied per second (from /metrics) and whether it kept up.
 */
import { WorkerPool } from '../pool.js'
import type { Target } from '../targets.js'
import { metric, type Row, round, type ScenarioOptions, type ScenarioResult, specsFor } from './common.js'

const APPLIED = 'herald_presence_events_applied_total'

export async function churnScenario(targets: Target[], opts: ScenarioOptions): Promise<ScenarioResult> {
  const rows: Row[] = []
  for (const target of targets) {
    const specs = await specsFor(target, 'ch', opts.n)
    const pool = WorkerPool.start(opts.workers)
    try {
      await pool.open(target.url, specs.slice(0, Math.floor(opts.n / 2)), { concurrency: 100 })
      const before = await metric(target, APPLIED)
      const done = await pool.churn(target.url, opts.durationMs, 7)
      const secs = done.elapsedMs / 1000
      const ops = done.connects + done.disconnects + done.drops
      const row: Row = {
        target: target.name,
        opsPerSec: round(ops / secs),
        connectsPerSec: round(done.connects / secs),
        failed: done.failed,
        eventsAppliedPerSec: null,
        caughtUp: null,
      }
      if (target.kind === 'herald') {
        const during = (await metric(target, APPLIED)) - before
        // each connect and each end is one event; the service has caught up when all are applied
        const expected = ops
        const deadline = Date.now() + 15_000
        let applied = during
        while (applied < expected && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100))
          applied = (await metric(target, APPLIED)) - before
        }
        row.eventsAppliedPerSec = round(during / secs)
        row.caughtUp = applied >= expected ? 'yes' : `no (${applied}/${expected})`
      }
      rows.push(row)
      await pool.closeClients()
    } finally {
      pool.stop()
    }
  }
  return {
    scenario: 'churn',
    params: { clients: opts.n, durationMs: opts.durationMs, workers: opts.workers },
    rows,
    notes: [
      'opsPerSec: connects + logouts + drops the generator completed; eventsAppliedPerSec: Herald /metrics',
    ],
  }
}
