/**
 * Garbage-collection pauses of the Node systems under test. Each runs with `--import` of
 * gc-probe.js (nodeArgs in targets.ts), which appends one line per collection to
 * gcLogPath(pid): `<kind> <start, ms since the epoch> <main-thread pause, ms>`. A row's meter
 * (CpuMeter) reads the lines of its own time window: how much of the row went to pauses, and the
 * longest one. The tail latencies of a busy node are often one pause long, and the CPU counters
 * cannot tell a pause from work.
 */
import { readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const gcLogPath = (pid: number) => join(tmpdir(), `herald-bench-gc-${pid}.log`)

export interface GcPauses {
  count: number
  totalMs: number
  maxMs: number
}

/** The pauses of these processes that began at or after `sinceMs` (epoch ms). */
export function gcPausesSince(pids: readonly number[], sinceMs: number): GcPauses {
  const sum: GcPauses = { count: 0, totalMs: 0, maxMs: 0 }
  for (const pid of pids) {
    let text: string
    try {
      text = readFileSync(gcLogPath(pid), 'utf8')
    } catch {
      continue // no collection yet, or not a Node process
    }
    for (const line of text.split('\n')) {
      const [, start, pause] = line.split(' ')
      const ms = Number(pause)
      if (!(Number(start) >= sinceMs) || !Number.isFinite(ms)) continue
      sum.count++
      sum.totalMs += ms
      if (ms > sum.maxMs) sum.maxMs = ms
    }
  }
  return sum
}

export function removeGcLog(pid: number | undefined): void {
  if (pid !== undefined) rmSync(gcLogPath(pid), { force: true })
}
