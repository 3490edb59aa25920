/**
 * connect: N clients as fast as possible and at fixed rates. Connects/s, CONNACK latency, and
 * for Herald the delay from CONNACK until the presence document says online (the store has
 * the connection and watchers were told).
 */
import { newHistogram, recordMs, summary } from '../histogram.js'
import { WorkerPool } from '../pool.js'
import type { Target } from '../targets.js'
import {
  CpuMeter,
  PresenceObserver,
  type Row,
  round,
  type ScenarioOptions,
  type ScenarioResult,
  specsFor,
} from './common.js'

export async function connectScenario(targets: Target[], opts: ScenarioOptions): Promise<ScenarioResult> {
  const rows: Row[] = []
  const modes: Array<number> = [0, ...opts.rates]
  for (const target of targets) {
    for (const [m, rate] of modes.entries()) {
      const prefix = `c${m}x`
      const specs = await specsFor(target, prefix, opts.n)
      const observer =
        target.kind === 'herald'
          ? await PresenceObserver.start(
              target,
              specs.map((s) => s.userId),
            )
          : undefined
      const pool = WorkerPool.start(opts.workers)
      try {
        const cpu = CpuMeter.start(target)
        const opened = await pool.open(target.url, specs, { concurrency: rate === 0 ? 200 : 50, rate })
        const ok = opts.n - opened.failed
        const connack = summary(opened.connack)
        const row: Row = {
          target: target.name,
          rate: rate === 0 ? 'max' : rate,
          connected: ok,
          connectsPerSec: round(ok / (opened.elapsedMs / 1000)),
          connackP50: connack.p50,
          connackP99: connack.p99,
          presenceP50: null,
          presenceP99: null,
        }
        if (observer) {
          await observer.until(() => observer.onlineAt.size >= ok, 15_000)
          const delay = newHistogram()
          for (const [clientId, at] of opened.connackAt) {
            const seen = observer.onlineAt.get(clientId.split('/')[0]!)
            if (seen !== undefined) recordMs(delay, Math.max(0, seen - at))
          }
          const d = summary(delay)
          row.presenceP50 = d.p50
          row.presenceP99 = d.p99
          row.presenceSeen = d.count
        }
        // after presence caught up: Herald's cost includes recording every connection
        Object.assign(row, cpu.perOp(ok))
        rows.push(row)
        await pool.closeClients()
      } finally {
        pool.stop()
        observer?.close()
      }
    }
  }
  return {
    scenario: 'connect',
    params: { n: opts.n, rates: modes, workers: opts.workers },
    rows,
    notes: [
      'presence: CONNACK -> retained presence/<user> online document at a service watcher (Herald only)',
      'cpuUsPerOp: server + its redis-server CPU per connect (µs), until presence caught up; cpuVsAedes = Aedes cost / Herald cost',
      'gcUsPerOp: main-thread GC pause time of the Node server process(es) per connect (µs); gcMaxMs: the longest pause in the row (ms)',
    ],
  }
}
