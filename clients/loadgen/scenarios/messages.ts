/**
 * messages: QoS 0 and QoS 1 to users/<id>/inbox at several fixed rates (and as fast as
 * possible): delivered throughput and end-to-end latency (publish -> subscriber), plus the
 * PUBACK latency for QoS 1 (for Herald that includes recording the message).
 */
import { newHistogram, summary } from '../histogram.js'
import { WorkerPool } from '../pool.js'
import type { Target } from '../targets.js'
import { CpuMeter, type Row, round, type ScenarioOptions, type ScenarioResult, specsFor } from './common.js'

const WARM_UP_MS = 2000

/** Waits until nothing arrives for 500 ms (bounded), dropping what arrives. */
async function drain(subs: WorkerPool, boundMs: number): Promise<void> {
  const deadline = Date.now() + boundMs
  let quietSince = Date.now()
  while (Date.now() - quietSince < 500 && Date.now() < deadline) {
    if ((await subs.collect()).received > 0) quietSince = Date.now()
    await new Promise((r) => setTimeout(r, 100))
  }
}

export async function messagesScenario(targets: Target[], opts: ScenarioOptions): Promise<ScenarioResult> {
  const rows: Row[] = []
  const users = Math.max(1, Math.min(opts.n, 200))
  const rates = [...opts.rates, 1_000_000] // the last one: as fast as the system takes it
  for (const target of targets) {
    const subscribers = await specsFor(target, 'inbox', users, 'sub')
    const publishers = await specsFor(target, 'sender', Math.max(1, Math.ceil(users / 4)), 'pub')
    const subs = WorkerPool.start(1)
    const pubs = WorkerPool.start(opts.workers)
    try {
      await subs.open(target.url, subscribers, { concurrency: 50, subscribeInbox: true, clean: true })
      await pubs.open(target.url, publishers, { concurrency: 50 })
      const targetsIds = subscribers.map((s) => s.userId)
      // warm-up, not measured: JIT, first-use allocations and the servers' caches settle
      // before the first row (it otherwise carries a start-up stall in its p99)
      await pubs.publish(Math.min(opts.rates[0] ?? 1000, 2000), WARM_UP_MS, 1, targetsIds)
      await drain(subs, 5000)

      // QoS 1 first: a QoS 0 flood at "max" leaves deliveries queued in the servers and
      // sockets for seconds after the publishers stop, and must not spill into other rows
      for (const qos of opts.qos ?? ([1, 0] as const)) {
        for (const rate of rates) {
          await subs.collect() // reset
          const cpu = CpuMeter.start(target)
          const started = Date.now()
          const sent = await pubs.publish(rate, opts.durationMs, qos, targetsIds)
          // let in-flight messages land: until all arrived or nothing arrived for a second
          // (bounded), so a backlog never spills into the next phase's numbers
          const deadline = Date.now() + 60_000
          const latency = newHistogram()
          let received = 0
          let lastArrival = Date.now()
          for (;;) {
            const got = await subs.collect()
            received += got.received
            latency.add(got.e2e)
            if (got.received > 0) lastArrival = Date.now()
            if (received >= sent.acked || Date.now() - lastArrival > 1000 || Date.now() > deadline) break
            await new Promise((r) => setTimeout(r, 100))
          }
          // delivered throughput over the time deliveries took, not only the publishing time
          const deliveringMs = Math.max(sent.elapsedMs, lastArrival - started)
          const e2e = summary(latency)
          const ack = summary(sent.ack)
          rows.push({
            target: target.name,
            qos,
            rate: rate >= 1_000_000 ? 'max' : rate,
            sentPerSec: round(sent.sent / (sent.elapsedMs / 1000)),
            deliveredPerSec: round(received / (deliveringMs / 1000)),
            delivered: received,
            sent: sent.sent,
            e2eP50: e2e.p50,
            e2eP99: e2e.p99,
            pubackP99: qos === 1 ? ack.p99 : null,
            // acknowledged, never delivered: the system was overloaded (or lost them)
            undelivered: qos === 1 ? Math.max(0, sent.acked - received) : null,
            ...cpu.perOp(received),
          })
        }
      }
      await subs.closeClients()
      await pubs.closeClients()
    } finally {
      subs.stop()
      pubs.stop()
    }
  }
  return {
    scenario: 'messages',
    params: { subscribers: users, rates, durationMs: opts.durationMs, workers: opts.workers },
    rows,
    notes: [
      'e2e: publish call -> subscriber receipt (same machine clock); rate "max" = offered 1e6/s',
      'cpuUsPerOp: server + its redis-server CPU per delivered message (µs); cpuVsAedes = Aedes cost / Herald cost',
      'gcUsPerOp: main-thread GC pause time of the Node server process(es) per delivered message (µs); gcMaxMs: the longest pause in the row (ms)',
      `each system first gets ${WARM_UP_MS / 1000} s of QoS 1 traffic that is not measured (warm-up)`,
      'undelivered: QoS 1 messages acknowledged (PUBACK) but not received within 1 s of the last arrival; a row with any is no steady state and no ratio is taken from it',
    ],
  }
}
